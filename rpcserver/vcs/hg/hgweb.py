"""Mercurial's own HTTP server, hgweb, run as a CGI program for one wire-protocol request
(``hgweb_cgi.py``), as git's requests run ``git http-backend``.

Why hgweb and not our own protocol code: capabilities, batch, bundle2, compression and
streaming clones are Mercurial's, kept up to date by Mercurial; we only decide who may do
what (``web.hg_http``) and pass the request on. Running hgweb in a child also keeps Mercurial
out of the worker processes: they never import it.

Here is what is Mercurial's: which wire commands read and which push (``classify``), the CGI
variables hgweb reads (``HgCgiRequest``: never ``Authorization`` or ``Cookie``), and hgweb's
configuration for one request: push allowed only when the server decided so (so hgweb itself
refuses a push too), no archives, no SSL demand (we authenticate), no hooks but the server's.
Running, streaming and killing are ``vcs.cgi``'s.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import parse_qsl

from rpcserver.vcs import cgi
from rpcserver.vcs.hg.command import Hg
from rpcserver.vcs.process import die_with_parent

SCRIPT = Path(__file__).with_name("hgweb_cgi.py")
#: Wire-protocol commands that change the repository (Mercurial 7.2, wireprotov1server).
PUSH_COMMANDS = frozenset({"unbundle", "pushkey"})
#: Those that only read; with ``PUSH_COMMANDS``, every command hgweb's wire protocol has.
READ_COMMANDS = frozenset({
    "batch", "between", "branchmap", "branches", "capabilities", "changegroup",
    "changegroupsubset", "clonebundles", "clonebundles_manifest", "debugwireargs",
    "get_cached_bundle_inline", "getbundle", "heads", "hello", "known", "listkeys", "lookup",
    "protocaps", "stream_out",
})
#: Request headers hgweb reads, passed on as ``HTTP_*`` (arguments and protocol options in
#: numbered pieces, what the client accepts); nothing else of the request reaches it.
_FORWARDED = re.compile(r"X-HgArg-\d{1,4}|X-HgProto-\d{1,4}|Accept|User-Agent", re.I)


class UnknownCommand(ValueError):
    """Not a wire-protocol command (an hgweb page, or nothing hg knows)."""


def classify(query: str, headers: Iterable[tuple[str, str]]) -> str:
    """``"push"`` or ``"pull"`` for the wire-protocol request with this query string and
    these headers; ``UnknownCommand`` otherwise. A ``batch`` pushes when one of its
    commands does (its ``cmds`` argument, from the query or the ``X-HgArg-*`` headers, read
    as hgweb reads them)."""
    params = parse_qsl(query, keep_blank_values=True)
    commands = [v for k, v in params if k == "cmd"]
    if len(commands) != 1:
        raise UnknownCommand("no single cmd")
    command = commands[0]
    if command in PUSH_COMMANDS:
        return "push"
    if command not in READ_COMMANDS:
        raise UnknownCommand(command)
    if command != "batch":
        return "pull"
    pieces = {k.lower(): v for k, v in headers if re.fullmatch(r"X-HgArg-\d{1,4}", k, re.I)}
    joined, number = [], 1
    while f"x-hgarg-{number}" in pieces:  # as hgweb joins them: from 1 to the first gap
        joined.append(pieces[f"x-hgarg-{number}"])
        number += 1
    header_args = parse_qsl("".join(joined), keep_blank_values=True)
    kind = "pull"
    for key, value in [*params, *header_args]:
        if key != "cmds":
            continue
        for pair in value.split(";"):
            op = pair.split(" ", 1)[0]
            if op in PUSH_COMMANDS:
                kind = "push"
            elif op not in READ_COMMANDS or op == "batch":
                raise UnknownCommand(f"batch of {op}")
    return kind


@dataclass(frozen=True)
class HgCgiRequest:
    """The parts of an HTTP request hgweb reads (RFC 3875 variables)."""

    method: str
    #: ``/<repository name>``: hgweb serves its wire protocol at the repository's root.
    script_name: str
    query: str
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str | None = None
    content_length: int | None = None
    #: The authenticated user (None: anonymous).
    remote_user: str | None = None
    remote_addr: str | None = None
    server_name: str = "localhost"
    server_port: str = "80"
    url_scheme: str = "http"

    def environment(self) -> dict[str, str]:
        env = {
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "SERVER_NAME": self.server_name,
            "SERVER_PORT": self.server_port,
            "REQUEST_METHOD": self.method,
            "SCRIPT_NAME": self.script_name,
            "PATH_INFO": "",
            "QUERY_STRING": self.query,
            "REMOTE_ADDR": self.remote_addr or "",
            "HTTPS": "on" if self.url_scheme == "https" else "off",
        }
        if self.remote_user:
            env["REMOTE_USER"] = self.remote_user
        if self.content_type:
            env["CONTENT_TYPE"] = self.content_type
        if self.content_length is not None:
            env["CONTENT_LENGTH"] = str(self.content_length)
        for name, value in self.headers:
            if _FORWARDED.fullmatch(name) and "\0" not in value:
                env["HTTP_" + name.upper().replace("-", "_")] = value
        return env


def config_for(*, push: bool) -> list[tuple[str, str]]:
    """hgweb's configuration for one request: pushing only when ``push`` (the server's
    decision), no archives, no SSL demand, arguments in headers only, and a publishing
    repository (pushed changesets become public, as on any hg server by default)."""
    return [("web.allow-push", "*" if push else ""), ("web.deny_push", ""),
            ("web.allow-pull", "true"), ("web.push_ssl", "false"),
            ("web.allow_archive", ""), ("web.allow-archive", ""),
            ("experimental.httppostargs", "false"), ("phases.publish", "true")]


def run(hg: Hg, path: Path, request: HgCgiRequest, body: BinaryIO | None, *, push: bool,
        env: Mapping[str, str] = {}, stall: float) -> cgi.CgiAnswer:
    """Start hgweb for ``request`` on the repository at ``path``, feed it ``body`` and read
    its CGI headers; the body follows as the answer is iterated. ``env``: more environment
    (the push rules and record of a push, which install the server's push hooks)."""
    argv = [*die_with_parent(), sys.executable, "-I", str(SCRIPT), str(path),
            *(f"{key}={value}" for key, value in config_for(push=push))]
    environment = hg.environment()
    environment.update(env)
    environment.update(request.environment())
    return cgi.start(argv, environment, body, request.content_length, stall=stall,
                     program="hgweb", cwd=hg.hgrc.parent)
