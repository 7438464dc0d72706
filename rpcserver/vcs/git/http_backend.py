"""git's own smart HTTP server, ``git http-backend``, run as a CGI program for one request.

Why git's program and not our own protocol code: pkt-lines, capabilities, protocol v2,
shallow and partial clones, gzip request bodies and the pack checks are git's, kept up to date
by git; we only decide who may do what (``web.git_http``) and pass the request on.

Running it, streaming both ways and killing it are ``vcs.cgi``'s (shared with hgweb); here is
what is git's: the CGI variables git reads and the environment it runs in
(``command.Git.environment``: no system or user config, hooks off, prompts off).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from rpcserver.vcs import cgi
from rpcserver.vcs.cgi import CgiError, parse_cgi_headers, split_headers
from rpcserver.vcs.git.command import Git
from rpcserver.vcs.process import die_with_parent

__all__ = ["BackendAnswer", "CgiError", "CgiRequest", "merged_config_env", "parse_cgi_headers",
           "run", "split_headers"]

#: What git answered (``vcs.cgi.CgiAnswer``).
BackendAnswer = cgi.CgiAnswer
#: What a client's ``Git-Protocol`` header may hold (``version=2``, ``key=value:...``).
_GIT_PROTOCOL = re.compile(r"[A-Za-z0-9=:._-]{1,256}")


@dataclass(frozen=True)
class CgiRequest:
    """The parts of an HTTP request ``git http-backend`` reads (RFC 3875 variables)."""

    method: str
    #: ``/<repository path>/info/refs`` etc., relative to ``project_root``.
    path_info: str
    query: str = ""
    content_type: str | None = None
    content_length: int | None = None
    content_encoding: str | None = None
    git_protocol: str | None = None
    #: The authenticated user (None: anonymous).
    remote_user: str | None = None
    remote_addr: str | None = None

    def environment(self, project_root: str) -> dict[str, str]:
        env = {
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "GIT_PROJECT_ROOT": project_root,
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": self.path_info,
            "REQUEST_METHOD": self.method,
            "QUERY_STRING": self.query,
            "REMOTE_ADDR": self.remote_addr or "",
        }
        if self.remote_user:
            env["REMOTE_USER"] = self.remote_user
        if self.content_type:
            env["CONTENT_TYPE"] = self.content_type
        if self.content_length is not None:
            env["CONTENT_LENGTH"] = str(self.content_length)
        if self.content_encoding:
            env["HTTP_CONTENT_ENCODING"] = self.content_encoding
        if self.git_protocol and _GIT_PROTOCOL.fullmatch(self.git_protocol):
            env["HTTP_GIT_PROTOCOL"] = self.git_protocol
        return env


def merged_config_env(pairs: Sequence[tuple[str, str]],
                      extra: Mapping[str, str]) -> dict[str, str]:
    """``extra`` environment on top of ours; git configuration in ``extra``
    (``GIT_CONFIG_COUNT``/``KEY_n``/``VALUE_n``) is appended after ``pairs``, so it wins."""
    env = {k: v for k, v in extra.items() if not k.startswith("GIT_CONFIG_")}
    all_pairs = list(pairs)
    count = int(extra.get("GIT_CONFIG_COUNT", "0") or 0)
    for i in range(count):
        all_pairs.append((extra[f"GIT_CONFIG_KEY_{i}"], extra.get(f"GIT_CONFIG_VALUE_{i}", "")))
    env["GIT_CONFIG_COUNT"] = str(len(all_pairs))
    for i, (key, value) in enumerate(all_pairs):
        env[f"GIT_CONFIG_KEY_{i}"] = key
        env[f"GIT_CONFIG_VALUE_{i}"] = value
    return env


def run(git: Git, project_root: str, request: CgiRequest, body: BinaryIO | None, *,
        config: Sequence[tuple[str, str]] = (), env: Mapping[str, str] = {},
        stall: float) -> BackendAnswer:
    """Start ``git http-backend`` for ``request``, feed it ``body`` (``content_length``
    bytes of it) and read its CGI headers; the body follows as the answer is iterated.

    ``config`` is git configuration for this request only (``http.receivepack``), ``env``
    more environment (see ``merged_config_env``). ``CgiError`` when git answers no headers.
    """
    base = git.environment()
    environment = {k: v for k, v in base.items() if not k.startswith("GIT_CONFIG_")}
    environment.update(merged_config_env([*_pairs_of(base), *config], env))
    environment.update(request.environment(project_root))
    return cgi.start([*die_with_parent(), git.executable, "http-backend"], environment, body,
                     request.content_length, stall=stall, program="git http-backend")


def _pairs_of(env: Mapping[str, str]) -> list[tuple[str, str]]:
    count = int(env.get("GIT_CONFIG_COUNT", "0"))
    return [(env[f"GIT_CONFIG_KEY_{i}"], env[f"GIT_CONFIG_VALUE_{i}"]) for i in range(count)]
