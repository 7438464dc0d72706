"""Mercurial's wire protocol over HTTP at Kallithea's clone URLs: ``<base>/<repository full
name>?cmd=<command>`` (docs/serving.md).

Only wire-protocol commands are served, never hgweb's pages; which ones read and which push
is ``vcs.hg.hgweb.classify`` (an unknown ``cmd`` is answered 400). The client is
authenticated and authorized as git's are (``web.vcs_http.Gate``: the same credentials,
permissions, scopes and answers); hgweb itself then answers, in a child process
(``vcs.hg.hgweb``), its body streamed both ways. A push runs under the repository's lock with
the server's push hooks (``vcs.hg.push_hook``), then the cache and the push log follow.

hg shows an HTTP error to its user as ``HTTP Error <code>: <reason>``, so each refusal's text
is its reason phrase as well as its body. A server without Mercurial answers every hg request
``503`` saying what to install.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from werkzeug.wrappers import Request, Response

from rpcserver.core.config import Config
from rpcserver.domain.repositories import store_for, vcs_settings
from rpcserver.vcs.cgi import CgiError
from rpcserver.vcs.hg import hgweb, push_hook
from rpcserver.vcs.hg.backend import HgBackend
from rpcserver.vcs.hg.command import Hg, HgMissing
from rpcserver.vcs.model import PushRules
from rpcserver.web.git_http import ADMIN_PREFIX
from rpcserver.web.vcs_http import Admitted, Gate, Streamed, VcsApp
from rpcserver.web.vcs_http import text as plain_text

if TYPE_CHECKING:
    from pathlib import Path


log = logging.getLogger(__name__)


def hg_route(path: str, query: str) -> str | None:
    """The repository name of a request that asks for an hg wire-protocol command (a
    ``cmd`` in its query), else None. Nothing under ``/_admin`` is a repository."""
    if path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/"):
        return None
    if not re.search(r"(?:^|[&;])cmd=", query):
        return None
    name = path.strip("/")
    return name if name and path.startswith("/") else None


def text(status: int, body: str, **headers: str) -> Response:
    """A plain-text answer whose reason phrase is its first line too (hg shows only that)."""
    response = plain_text(status, body, **headers)
    reason = re.sub(r"[^\x20-\x7e]", "", body.strip().splitlines()[0] if body.strip() else "")
    if reason:
        response.status = f"{status} {reason[:200]}"
    return response


class HgHttp(VcsApp):
    """The WSGI app of hg's wire-protocol requests."""

    kind = "hg"

    def __init__(self, config: Config, gate: Gate,
                 find_hg: Callable[[], Hg] | None = None) -> None:
        super().__init__(config, gate)
        self.find_hg = find_hg or (lambda: HgBackend(vcs_settings(config)).hg)

    def text(self, status: int, body: str) -> Response:
        return text(status, body)

    def respond(self, request: Request) -> Response | Streamed:
        query = request.query_string.decode("latin-1")
        name = hg_route(request.path, query)
        if name is None:
            return text(404, "Repository not found\n")
        try:
            kind = hgweb.classify(query, request.headers.items())
        except hgweb.UnknownCommand:
            return text(400, "Only Mercurial's wire protocol is served: unknown command\n")
        push = kind == "push"
        admitted = self.gate.admit(request, name, push=push, answer=text)
        if isinstance(admitted, Response):
            return admitted
        repo = admitted.repo
        if repo.repo_type != "hg":
            return text(404, f"`{repo.name}` is a {repo.repo_type} repository, not hg\n")
        try:
            hg = self.find_hg()
        except HgMissing as exc:
            return text(503, f"{exc}\n")
        length = request.content_length if request.method == "POST" else None
        if length is not None and length > self.config.max_push_bytes:
            return text(413, f"Request body too large (at most {self.config.max_push_bytes} "
                             "bytes)\n")
        caller = admitted.caller
        cgi = hgweb.HgCgiRequest(
            method=request.method, script_name=f"/{repo.name}", query=query,
            headers=tuple(request.headers.items()),
            content_type=request.headers.get("Content-Type"), content_length=length,
            remote_user=caller.actor.username if caller is not None else None,
            remote_addr=request.remote_addr,
            server_name=request.environ.get("SERVER_NAME", "localhost"),
            server_port=str(request.environ.get("SERVER_PORT", "80")),
            url_scheme=request.scheme)
        if push:
            return self._push(request, hg, cgi, admitted)
        return self._run(request, hg, cgi, push=False)

    def _run(self, request: Request, hg: Hg, cgi: hgweb.HgCgiRequest, *, push: bool,
             env: dict[str, str] | None = None) -> Response | Streamed:
        path = store_for(self.config).path(cgi.script_name[1:])
        try:
            answer = hgweb.run(hg, path, cgi,
                               request.environ["wsgi.input"] if cgi.method == "POST" else None,
                               push=push, env=env or {}, stall=self.config.git_timeout)
        except (CgiError, OSError) as exc:
            log.error("hgweb for %s failed: %s", cgi.script_name, exc)
            return text(500, "hg failed\n")
        return Streamed(answer)

    def _push(self, request: Request, hg: Hg, cgi: hgweb.HgCgiRequest,
              admitted: Admitted) -> Response | Streamed:
        """hgweb with push allowed, under the repository's lock (``Gate.push``), with the
        server's push hooks and the caller's push rules (docs/push-rules.md)."""

        def run(rules: PushRules, record: Path) -> Response | Streamed:
            env = {push_hook.RULES_ENV: json.dumps(dataclasses.asdict(rules)),
                   push_hook.RECORD_ENV: str(record)}
            return self._run(request, hg, cgi, push=True, env=env)

        return self.gate.push(admitted, run, answer=text)
