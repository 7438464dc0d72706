"""git's smart HTTP at Kallithea's clone URLs: ``<base>/<repository full name>``
(docs/serving.md).

``GET <name>/info/refs?service=git-upload-pack|git-receive-pack``, ``POST
<name>/git-upload-pack`` and ``POST <name>/git-receive-pack``; dumb HTTP is not served. Here
the client is authenticated (``domain.git_login``) and authorized (``domain.serving``); git
itself (``vcs.git.http_backend``) then answers, its body streamed both ways.

Answers: ``401`` with ``WWW-Authenticate: Basic`` when no credentials were given and
anonymous access is not enough (git then asks for them), or when they are wrong; ``404`` for
a repository that does not exist or that the caller may not read (the same body); ``403``
for a push by a caller who may only read; ``429`` after too many failed logins; ``503``
while another change holds the repository longer than ``git_timeout``.
"""

from __future__ import annotations

import binascii
import logging
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.exc import DBAPIError
from werkzeug.wrappers import Request, Response

from rpcserver.core.config import Config
from rpcserver.core.errors import InvalidApiKey, TooManyFailures
from rpcserver.db.database import Database
from rpcserver.db.models import Level
from rpcserver.domain.auth import KeyLookup
from rpcserver.domain.context import Actor
from rpcserver.domain.git_login import GitCaller, GitLogin
from rpcserver.domain.login_failures import LoginFailures
from rpcserver.domain.pushes import (
    RepositoryBusy,
    RepositoryGone,
    after_push,
    confirm_repository,
    push_rules,
    take_push_lock,
)
from rpcserver.domain.repositories import store_for
from rpcserver.domain.scopes import Scopes
from rpcserver.domain.serving import Outcome, RepoRef, anonymous, decide
from rpcserver.vcs.git import hooks, http_backend
from rpcserver.vcs.git.command import Git

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

log = logging.getLogger(__name__)

UPLOAD_PACK, RECEIVE_PACK = "git-upload-pack", "git-receive-pack"
INFO_REFS = "info/refs"
_ENDINGS = (INFO_REFS, UPLOAD_PACK, RECEIVE_PACK)
ADMIN_PREFIX = "/_admin"
#: The one body of every 404: a repository that is absent and one that is hidden look alike.
NOT_FOUND = "Repository not found\n"
AUTH_REQUIRED = "Authentication required\n"
#: Headers of git's answer the HTTP server sets itself.
_HOP_BY_HOP = frozenset({"connection", "transfer-encoding", "keep-alive"})


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


class GitHttp:
    """The WSGI app of the smart-HTTP paths (``web.app`` routes them here)."""

    def __init__(self, config: Config, db: Database, failures: LoginFailures,
                 keys: KeyLookup) -> None:
        self.config = config
        self.db = db
        self.failures = failures
        self.login = GitLogin(db, keys, config.password_cache_seconds)

    def __call__(self, environ: WSGIEnvironment,
                 start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        try:
            response = self.respond(request)
        except DBAPIError:
            log.exception("git request %s failed on the database", request.path)
            response = _text(503, "Database unavailable, try again\n")
        if isinstance(response, Response):
            return response(environ, start_response)
        return response(start_response)

    def respond(self, request: Request) -> Response | _Streamed:
        route = git_route(request.path)
        if route is None:
            return _text(404, NOT_FOUND)
        name, ending = route
        if ending == INFO_REFS:
            if request.method != "GET":
                return _text(405, "info/refs takes GET\n", Allow="GET")
            service = request.args.get("service")
            if service not in (UPLOAD_PACK, RECEIVE_PACK):
                return _text(403, "Only git's smart HTTP is served: "
                                  "?service=git-upload-pack or git-receive-pack\n")
        else:
            if request.method != "POST":
                return _text(405, f"{ending} takes POST\n", Allow="POST")
            service = ending
        push = service == RECEIVE_PACK
        username, secret = _credentials(request)
        subjects = [f"address {request.remote_addr}"]
        if username:
            subjects.append(f"user {username}")
        try:
            self.failures.check(subjects)
        except TooManyFailures as exc:
            return _text(429, exc.text + "\n",
                         **{"Retry-After": exc.text.split(" in ")[1].removesuffix(" s")})
        caller: GitCaller | None = None
        if secret is not None:
            try:
                caller = self.login.authenticate(username, secret, request.remote_addr)
            except InvalidApiKey as exc:
                self.failures.record(subjects)
                log.warning("refused git request from %s: %s", request.remote_addr,
                            exc.reason)
                return _unauthorized("Invalid credentials\n")
        with self.db.reading() as conn:
            user: Actor | None = None
            scopes: Scopes | None = None
            if caller is not None:
                user, scopes = caller.actor, caller.scopes
            elif self.config.anonymous_clone:
                user = anonymous(conn)
            decision = decide(conn, user, scopes, name, push=push)
        if decision.outcome is not Outcome.ALLOWED:
            if caller is None:
                return _unauthorized(AUTH_REQUIRED)
            if decision.outcome is Outcome.HIDDEN:
                return _text(404, NOT_FOUND)
            return _text(403, f"You may not push to `{name}`\n")
        repo = decision.repo
        if repo is None:  # an allowed decision always names its repository
            return _text(404, NOT_FOUND)
        length = request.content_length if request.method == "POST" else None
        if length is not None and length > self.config.max_push_bytes:
            return _text(413, f"Request body too large (at most {self.config.max_push_bytes} "
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
            return self._push(request, cgi, repo, decision.level, caller, config)
        return self._run(request, cgi, config)

    def _run(self, request: Request, cgi: http_backend.CgiRequest,
             config: list[tuple[str, str]], env: dict[str, str] | None = None
             ) -> Response | _Streamed:
        try:
            answer = http_backend.run(self._git(), self.config.repos_root, cgi,
                                      request.environ["wsgi.input"] if cgi.method == "POST"
                                      else None,
                                      config=config, env=env or {},
                                      stall=self.config.git_timeout)
        except (http_backend.CgiError, OSError) as exc:
            log.error("git http-backend for %s failed: %s", cgi.path_info, exc)
            return _text(500, "git failed\n")
        return _Streamed(answer)

    def _push(self, request: Request, cgi: http_backend.CgiRequest, repo: RepoRef,
              level: Level, caller: GitCaller,
              config: list[tuple[str, str]]) -> Response | _Streamed:
        """receive-pack under the repository's lock, so that a push waits for a running
        pull, rename or delete, with the server's own hooks and the caller's push rules
        (``domain.pushes``, docs/push-rules.md); the cache and the push log follow."""
        try:
            lock = take_push_lock(self.config, repo.id)
        except RepositoryBusy as exc:
            log.warning("push to %s: %s", repo.name, exc.text)
            return _text(503, f"{exc.text}\n")
        store = store_for(self.config)
        store.ensure()
        scratch = Path(tempfile.mkdtemp(prefix="push-", dir=store.internal / "tmp"))
        record = scratch / "record"

        def done() -> None:
            shutil.rmtree(scratch, ignore_errors=True)
            lock.release()

        try:
            confirm_repository(self.db, repo.id, repo.name)
            rules = push_rules(self.config, caller.actor, level)
            result = self._run(request, cgi, config,
                               hooks.push_environment(store, rules, record))
        except RepositoryGone:
            done()
            return _text(404, NOT_FOUND)
        except BaseException:
            done()
            raise
        if not isinstance(result, _Streamed):
            done()
            return result

        def finished(returncode: int | None) -> None:
            try:
                after_push(self.config, self.db, repo.id, hooks.read_record(record),
                           caller.actor)
            except Exception:
                log.exception("after the push to %s", repo.name)
            finally:
                done()

        result.on_close = finished
        return result

    def _git(self) -> Git:
        return Git.find(self.config.git_timeout, self.config.git_stall_timeout)


class _Streamed:
    """git's answer as a WSGI iterable: read from git as the server sends it."""

    def __init__(self, answer: http_backend.BackendAnswer) -> None:
        self.answer = answer
        self.on_close: object = None

    def __call__(self, start_response: StartResponse) -> Iterable[bytes]:
        headers = [(k, v) for k, v in self.answer.headers if k.lower() not in _HOP_BY_HOP]
        start_response(self.answer.status, headers)
        return _Body(self)


class _Body:
    def __init__(self, streamed: _Streamed) -> None:
        self.streamed = streamed
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.streamed.answer)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        answer = self.streamed.answer
        try:
            answer.close()
        finally:
            callback = self.streamed.on_close
            if callable(callback):
                callback(answer.returncode)


def _credentials(request: Request) -> tuple[str | None, str | None]:
    """(username, secret) of an ``Authorization: Basic`` header, (None, key) of a Bearer
    one, (None, None) without."""
    value = request.headers.get("Authorization", "")
    scheme, _, rest = value.strip().partition(" ")
    rest = rest.strip()
    if scheme.lower() == "bearer" and rest:
        return None, rest
    if scheme.lower() != "basic":
        return None, None
    try:
        decoded = binascii.a2b_base64(rest, strict_mode=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None, ""
    username, _, secret = decoded.partition(":")
    return username, secret


def _unauthorized(body: str) -> Response:
    return _text(401, body, **{"WWW-Authenticate": 'Basic realm="rpcserver"'})


def _text(status: int, body: str, **headers: str) -> Response:
    response = Response(body, status=status, mimetype="text/plain")
    for key, value in headers.items():
        response.headers[key] = value
    return response
