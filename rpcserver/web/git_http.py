"""git's smart HTTP at Kallithea's clone URLs: ``<base>/<repository full name>``
(docs/serving.md).

``GET <name>/info/refs?service=git-upload-pack|git-receive-pack``, ``POST
<name>/git-upload-pack`` and ``POST <name>/git-receive-pack``; dumb HTTP is not served. Here
the client is authenticated and authorized (``web.vcs_http.Gate``, shared with hg, over
``domain.git_login`` and ``domain.serving``, whose answers it gives); git itself
(``vcs.git.http_backend``) then answers, its body streamed both ways.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from werkzeug.wrappers import Request, Response

from rpcserver.domain.repositories import store_for
from rpcserver.vcs.git import hooks, http_backend
from rpcserver.vcs.git.command import Git
from rpcserver.vcs.model import PushRules
from rpcserver.web.vcs_http import NOT_FOUND, Admitted, Streamed, VcsApp, text

if TYPE_CHECKING:
    from pathlib import Path


log = logging.getLogger(__name__)

UPLOAD_PACK, RECEIVE_PACK = "git-upload-pack", "git-receive-pack"
INFO_REFS = "info/refs"
_ENDINGS = (INFO_REFS, UPLOAD_PACK, RECEIVE_PACK)
ADMIN_PREFIX = "/_admin"


def git_route(path: str) -> tuple[str, str] | None:
    """(repository name, ``info/refs`` or the service) for a smart-HTTP path, else None.
    Nothing under ``/_admin`` is a repository (names may not begin with ``_``)."""
    if path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/"):
        return None
    for ending in _ENDINGS:
        if path.endswith("/" + ending):
            name = path[1:-len(ending) - 1]
            if name and path.startswith("/"):
                return name, ending
    return None


class GitHttp(VcsApp):
    """The WSGI app of the smart-HTTP paths; who the client is and what it may do is
    ``gate``'s (``web.vcs_http``, shared with hg)."""

    kind = "git"

    def respond(self, request: Request) -> Response | Streamed:
        route = git_route(request.path)
        if route is None:
            return text(404, NOT_FOUND)
        name, ending = route
        if ending == INFO_REFS:
            if request.method != "GET":
                return text(405, "info/refs takes GET\n", Allow="GET")
            service = request.args.get("service")
            if service not in (UPLOAD_PACK, RECEIVE_PACK):
                return text(403, "Only git's smart HTTP is served: "
                                 "?service=git-upload-pack or git-receive-pack\n")
        else:
            if request.method != "POST":
                return text(405, f"{ending} takes POST\n", Allow="POST")
            service = ending
        push = service == RECEIVE_PACK
        admitted = self.gate.admit(request, name, push=push)
        if isinstance(admitted, Response):
            return admitted
        repo, caller = admitted.repo, admitted.caller
        if repo.repo_type != "git":
            return text(404, f"`{repo.name}` is an {repo.repo_type} repository, not git\n")
        length = request.content_length if request.method == "POST" else None
        if length is not None and length > self.config.max_push_bytes:
            return text(413, f"Request body too large (at most {self.config.max_push_bytes} "
                             "bytes)\n")
        cgi = http_backend.CgiRequest(
            method=request.method, path_info=f"/{repo.name}/{ending}",
            query=request.query_string.decode("latin-1"),
            content_type=request.headers.get("Content-Type"), content_length=length,
            content_encoding=request.headers.get("Content-Encoding"),
            git_protocol=request.headers.get("Git-Protocol"),
            remote_user=caller.actor.username if caller is not None else None,
            remote_addr=request.remote_addr)
        config = [("http.getanyfile", "false"), ("http.uploadpack", "true"),
                  ("http.receivepack", "true" if push else "false")]
        if push and ending == RECEIVE_PACK and caller is not None:
            return self._push(request, cgi, admitted, config)
        return self._run(request, cgi, config)

    def _run(self, request: Request, cgi: http_backend.CgiRequest,
             config: list[tuple[str, str]], env: dict[str, str] | None = None
             ) -> Response | Streamed:
        try:
            answer = http_backend.run(self._git(), self.config.repos_root, cgi,
                                      request.environ["wsgi.input"] if cgi.method == "POST"
                                      else None,
                                      config=config, env=env or {},
                                      stall=self.config.git_timeout)
        except (http_backend.CgiError, OSError) as exc:
            log.error("git http-backend for %s failed: %s", cgi.path_info, exc)
            return text(500, "git failed\n")
        return Streamed(answer)

    def _push(self, request: Request, cgi: http_backend.CgiRequest, admitted: Admitted,
              config: list[tuple[str, str]]) -> Response | Streamed:
        """receive-pack under the repository's lock (``Gate.push``), with the server's own
        hooks and the caller's push rules (docs/push-rules.md)."""
        store = store_for(self.config)

        def run(rules: PushRules, record: Path) -> Response | Streamed:
            return self._run(request, cgi, config,
                             hooks.push_environment(store, rules, record))

        return self.gate.push(admitted, run)

    def _git(self) -> Git:
        return Git.find(self.config.git_timeout, self.config.git_stall_timeout)
