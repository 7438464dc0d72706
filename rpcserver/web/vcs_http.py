"""What serving git (``web.git_http``) and Mercurial (``web.hg_http``) over HTTP share: the
credentials of a request, who the client is and what it may do (``Gate.admit``: the failure
limit, the login, the decision, and the answers when it may not), a push under the
repository's lock with the cache and the push log after it (``Gate.push``), and a CGI
program's answer streamed to the client (``Streamed``).

Answers: ``401`` with ``WWW-Authenticate: Basic`` when no credentials were given and
anonymous access is not enough (the client then asks for them), or when they are wrong;
``404`` for a repository that does not exist or that the caller may not read (the same
body); ``403`` for a push by a caller who may only read; ``429`` after too many failed
logins; ``503`` while another change holds the repository for the whole wait.
"""

from __future__ import annotations

import binascii
import logging
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from sqlalchemy.exc import DBAPIError
from werkzeug.wrappers import Request, Response

from rpcserver.core.config import Config
from rpcserver.core.errors import InvalidApiKey, TooManyFailures
from rpcserver.db.database import Database
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
from rpcserver.domain.serving import Decision, Outcome, RepoRef, anonymous, decide
from rpcserver.vcs.cgi import CgiAnswer
from rpcserver.vcs.model import PushRules
from rpcserver.vcs.push_record import read_record

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

log = logging.getLogger(__name__)

#: The one body of every 404: a repository that is absent and one that is hidden look alike.
NOT_FOUND = "Repository not found\n"
AUTH_REQUIRED = "Authentication required\n"
#: Headers of a CGI program's answer the HTTP server sets itself.
_HOP_BY_HOP = frozenset({"connection", "transfer-encoding", "keep-alive"})


@dataclass(frozen=True)
class Admitted:
    """A request that may go on: who sent it (None: anonymous) and the decision, whose
    repository is set."""

    caller: GitCaller | None
    decision: Decision
    repo: RepoRef


#: Builds an answer: (status, body, headers) -> Response; git's and hg's differ in wording.
Answer = Callable[..., Response]


class Gate:
    """Who a client is and what it may do, for git and hg alike (one failure count with the
    API: a guesser gets no second budget; one password cache)."""

    def __init__(self, config: Config, db: Database, failures: LoginFailures,
                 keys: KeyLookup) -> None:
        self.config = config
        self.db = db
        self.failures = failures
        self.login = GitLogin(db, keys, config.password_cache_seconds)

    def admit(self, request: Request, name: str, *, push: bool,
              answer: Answer | None = None) -> Response | Admitted:
        """The caller and the decision for ``name``, or the answer that refuses it."""
        reply = answer or text
        username, secret = credentials(request)
        subjects = [f"address {request.remote_addr}"]
        if username:
            subjects.append(f"user {username}")
        try:
            self.failures.check(subjects)
        except TooManyFailures as exc:
            return reply(429, exc.text + "\n",
                         **{"Retry-After": exc.text.split(" in ")[1].removesuffix(" s")})
        caller: GitCaller | None = None
        if secret is not None:
            try:
                caller = self.login.authenticate(username, secret, request.remote_addr)
            except InvalidApiKey as exc:
                self.failures.record(subjects)
                log.warning("refused request for %s from %s: %s", name, request.remote_addr,
                            exc.reason)
                return unauthorized("Invalid credentials\n", reply)
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
                return unauthorized(AUTH_REQUIRED, reply)
            if decision.outcome is Outcome.HIDDEN:
                return reply(404, NOT_FOUND)
            return reply(403, f"You may not push to `{name}`\n")
        if decision.repo is None:  # an allowed decision always names its repository
            return reply(404, NOT_FOUND)
        return Admitted(caller, decision, decision.repo)

    def push(self, admitted: Admitted, run: Callable[[PushRules, Path], Response | Streamed],
             answer: Answer | None = None) -> Response | Streamed:
        """``run(rules, record)`` under the repository's lock, so that a push waits for a
        running pull, rename or delete, with the caller's push rules (``domain.pushes``,
        docs/push-rules.md) and a file for the server's hook to record the push in; the
        cache and the push log follow when the answer has been sent."""
        reply = answer or text
        repo, caller = admitted.repo, admitted.caller
        if caller is None:  # a push is never anonymous (``decide``)
            return unauthorized(AUTH_REQUIRED, reply)
        try:
            lock = take_push_lock(self.config, repo.id)
        except RepositoryBusy as exc:
            log.warning("push to %s: %s", repo.name, exc.text)
            return reply(503, f"{exc.text}\n")
        store = store_for(self.config)
        store.ensure()
        scratch = Path(tempfile.mkdtemp(prefix="push-", dir=store.internal / "tmp"))
        record = scratch / "record"

        def done() -> None:
            shutil.rmtree(scratch, ignore_errors=True)
            lock.release()

        try:
            confirm_repository(self.db, repo.id, repo.name)
            result = run(push_rules(self.config, caller.actor, admitted.decision.level),
                         record)
        except RepositoryGone:
            done()
            return reply(404, NOT_FOUND)
        except BaseException:
            done()
            raise
        if not isinstance(result, Streamed):
            done()
            return result
        actor = caller.actor

        def finished(returncode: int | None) -> None:
            try:
                after_push(self.config, self.db, repo.id, read_record(record), actor)
            except Exception:
                log.exception("after the push to %s", repo.name)
            finally:
                done()

        result.on_close = finished
        return result


class VcsApp:
    """What the git and hg WSGI apps share: the request handed to ``respond``, and a database
    that fails meanwhile answered 503 (``web.app`` routes each kind to its app)."""

    #: The kind of client, for the log.
    kind: ClassVar[str]

    def __init__(self, config: Config, gate: Gate) -> None:
        self.config = config
        self.gate = gate

    def __call__(self, environ: WSGIEnvironment,
                 start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        try:
            response = self.respond(request)
        except DBAPIError:
            log.exception("%s request %s failed on the database", self.kind, request.path)
            response = self.text(503, "Database unavailable, try again\n")
        if isinstance(response, Response):
            return response(environ, start_response)
        return response(start_response)

    def respond(self, request: Request) -> Response | Streamed:
        raise NotImplementedError

    def text(self, status: int, body: str) -> Response:
        """A plain-text answer as this kind of client reads one."""
        return text(status, body)


class Streamed:
    """A CGI program's answer as a WSGI iterable: read from it as the server sends it."""

    def __init__(self, answer: CgiAnswer) -> None:
        self.answer = answer
        self.on_close: object = None

    def __call__(self, start_response: StartResponse) -> Iterable[bytes]:
        headers = [(k, v) for k, v in self.answer.headers if k.lower() not in _HOP_BY_HOP]
        start_response(self.answer.status, headers)
        return _Body(self)


class _Body:
    def __init__(self, streamed: Streamed) -> None:
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


def credentials(request: Request) -> tuple[str | None, str | None]:
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


def unauthorized(body: str, answer: Answer | None = None) -> Response:
    return (answer or text)(401, body, **{"WWW-Authenticate": 'Basic realm="rpcserver"'})


def text(status: int, body: str, **headers: str) -> Response:
    response = Response(body, status=status, mimetype="text/plain")
    for key, value in headers.items():
        response.headers[key] = value
    return response
