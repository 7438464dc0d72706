"""The pure core: ``Dispatcher.handle(body) -> answer dict``, which never raises.

It runs API.md §1's checks in order, then the method inside one transaction that commits on
success and rolls back on any error, so a failed call changes nothing.

It runs the hooks of the handler's ``CallContext`` after the transaction ends, and a
``Deferred``'s slow part with no transaction open, then its short write transaction —
holding SQLite's write lock for a fetch would stall every other writer for its whole
duration (``domain.context``).

A transaction whose database connection died before its COMMIT was sent changed nothing and
runs once more (``_once_more``); if it fails again, or died during COMMIT, or the database
cannot be reached, the call answers ``Database unavailable, try again`` (db.py decides which
errors those are), never ``Internal server error`` and never ``Invalid API key``.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar, cast

from sqlalchemy import Connection, update
from sqlalchemy.exc import DBAPIError

from rpcserver.core.config import Config
from rpcserver.core.credentials import API_KEY, BASIC, BEARER, ApiRequest, Credential
from rpcserver.core.errors import (
    ApiError,
    DatabaseUnavailable,
    InternalError,
    InvalidApiKey,
    MethodNotAllowed,
    NoSuchMethod,
)
from rpcserver.core.registry import KALLITHEA, RHODECODE, Method, Registry
from rpcserver.db.database import Database, connection_lost, unavailable
from rpcserver.db.models import ApiKey, User, utcnow
from rpcserver.domain.auth import Caller, FoundKey, KeyLookup, authenticate, caller_of, needs_touch
from rpcserver.domain.context import Actor, CallContext, Context, Deferred, ReadContext
from rpcserver.domain.login_failures import LoginFailures
from rpcserver.domain.permissions import check_scope
from rpcserver.domain.scopes import FULL
from rpcserver.rpc import protocol
from rpcserver.rpc.protocol import ProtocolError

log = logging.getLogger(__name__)
T = TypeVar("T")
#: How long a call waits before its second attempt when no connection could be made: a
#: restarting server refuses connections for a few tenths of a second.
RECONNECT_PAUSE = 0.3


class Dispatcher:
    def __init__(self, config: Config, db: Database, registry: Registry) -> None:
        self.config = config
        self.db = db
        self.registry = registry
        self.keys = KeyLookup(db.read_engine or db.engine)
        self.failures = LoginFailures(config.max_failed_logins, config.failed_login_window)

    def handle(self, request: ApiRequest) -> dict[str, Any]:
        """Answer one HTTP request's envelope; never raises."""
        outside = request.outside_body()
        in_header = [c for c in outside if c.kind in (BEARER, BASIC)]
        try:
            envelope = protocol.decode(request.body, key_in_header=bool(in_header))
        except ProtocolError as exc:
            return protocol.answer(exc.id, None, exc.text, has_id=exc.has_id)
        # Without a key in the body, the header's authenticates; every other key the request
        # presents must then be one of the same user's (docs/authentication.md).
        secret = envelope.api_key if envelope.api_key is not None or not in_header \
            else in_header[0].secret
        credential = Credential(API_KEY, secret=secret)
        method = self._find(envelope)
        try:
            result = self._run(envelope.method, method, credential, request.client_ip,
                               partial(self._run_method, envelope, method),
                               outside=outside)
        except ApiError as exc:
            return protocol.answer(envelope.id, None, exc.text, has_id=envelope.has_id)
        except DBAPIError as exc:
            if not unavailable(exc):
                _log_internal_error(envelope.method, exc)
                return protocol.answer(envelope.id, None, InternalError.text,
                                       has_id=envelope.has_id)
            log.warning("database unavailable for %s: %s", _loggable(envelope.method),
                        _primary(exc))
            return protocol.answer(envelope.id, None, DatabaseUnavailable.text,
                                   has_id=envelope.has_id)
        except Exception as exc:
            _log_internal_error(envelope.method, exc)
            return protocol.answer(envelope.id, None, InternalError.text,
                                   has_id=envelope.has_id)
        return protocol.answer(envelope.id, result, None, has_id=envelope.has_id)

    def call(self, credential: Credential, name: str, args: dict[str, Any]) -> Any:
        """Call a method as the API does (the admin command's way in); raises the
        ``ApiError`` the API would answer."""
        envelope = protocol.Envelope(id=None, has_id=True, api_key=None, method=name,
                                     args=args)
        method = self._find(envelope)
        return self._run(name, method, credential, None,
                         partial(self._run_method, envelope, method))

    def run(self, credential: Credential, name: str, work: Callable[[CallContext], T], *,
            client_ip: str | None = None, outside: tuple[Credential, ...] = ()) -> T:
        """Run ``work`` as a writing call that is no API method (the admin command's
        ``create-api-key``, a token exchange): authenticated, in one transaction, with the
        call's hooks."""
        # A write: ``_run`` hands ``work`` a ``CallContext``.
        return cast(T, self._run(name, None, credential, client_ip,
                                 cast(Callable[[Context], Any], work), write=True,
                                 outside=outside))

    def _find(self, envelope: protocol.Envelope) -> Method | None:
        name = envelope.method
        if not isinstance(name, str) or name.startswith("_"):
            return None
        return self.registry.lookup(name, dialect=KALLITHEA if envelope.has_id else RHODECODE)

    def _run(self, name: Any, method: Method | None, credential: Credential,
             client_ip: str | None, work: Callable[[Context], Any], *,
             write: bool | None = None, outside: tuple[Credential, ...] = ()) -> Any:
        """Every call's one path: the credential (and the keys ``outside`` the body, each of
        which must be a valid key of the same user), the first transaction (run once more if
        its connection died), a ``Deferred``'s slow part and finish, the log line."""
        started = time.perf_counter()
        if write is None:
            write = method is not None and method.writes
        subjects = _failure_subjects(client_ip, outside)
        self.failures.check(subjects)
        try:
            try:
                found = self.keys.find(credential, outside)
            except InvalidApiKey as exc:
                _log_refusal(client_ip, exc)
                raise
            ctx, result = _once_more(name, partial(
                self._first_transaction, credential, found, client_ip, work, write=write,
                outside=outside))
        except InvalidApiKey:
            self.failures.record(subjects)
            raise
        if isinstance(result, Deferred):
            result = self._finish(name, ctx, result)
        log.debug("%s by user id %s (%s) in %.1f ms", _loggable(name), ctx.caller.id,
                  credential.kind, (time.perf_counter() - started) * 1000)
        return result

    def _run_method(self, envelope: protocol.Envelope, method: Method | None,
                    ctx: Context) -> Any:
        """API.md §1's checks after the key's, then the method."""
        name = envelope.method
        if not isinstance(name, str):
            raise ApiError("Incorrect JSON query: 'method' must be a string")
        if name.startswith("_"):
            raise MethodNotAllowed()
        if method is None:
            raise NoSuchMethod(name)
        args = method.check_args(envelope.args)
        method.permission.check(ctx, args)
        check_scope(ctx, method, args, name)
        return method.handler(ctx, **args)

    def _first_transaction(self, credential: Credential, found: FoundKey | None,
                           client_ip: str | None, work: Callable[[Context], Any], *,
                           write: bool, outside: tuple[Credential, ...] = ()
                           ) -> tuple[Context, Any]:
        """Authenticate and run ``work`` in one transaction; a write's hooks after it.

        ``found`` is the key ``KeyLookup`` found, or None when it could not ask the database
        (or the credential is no API key): ``authenticate`` then checks it and the keys
        ``outside`` the body. A read runs on a connection (``ReadContext``), a write on an
        ORM session (``CallContext``).
        """
        touch: int | None = None
        try:
            if not write:
                with self.db.reading() as conn:
                    caller = self._caller(conn, credential, found, client_ip, outside)
                    touch = _touch_id(caller)
                    ctx: Context = ReadContext(connection=conn, **self._fields(caller,
                                                                               client_ip))
                    return ctx, work(ctx)
            call: CallContext | None = None
            try:
                with self.db.transaction(write=True) as session:
                    caller = self._caller(session.connection(), credential, found, client_ip,
                                          outside)
                    touch = _touch_id(caller)
                    call = CallContext(session=session, **self._fields(caller, client_ip))
                    result = work(call)
                    session.flush()
            except BaseException:
                if call is not None:
                    call.finished(committed=False)
                raise
            call = cast(CallContext, call)  # set: every path that leaves it None raised
            call.finished(committed=True)
            return call, result
        finally:
            if touch is not None:
                self._touch_key(touch)

    def _caller(self, conn: Connection, credential: Credential, found: FoundKey | None,
                client_ip: str | None, outside: tuple[Credential, ...]) -> Caller:
        try:
            return (authenticate(conn, credential, client_ip, outside) if found is None
                    else caller_of(conn, found, credential, client_ip))
        except InvalidApiKey as exc:
            _log_refusal(client_ip, exc)
            raise

    def _fields(self, caller: Caller, client_ip: str | None) -> dict[str, Any]:
        """What every context of a call carries."""
        return {"caller": caller.actor, "config": self.config, "client_ip": client_ip,
                "registry": self.registry, "credential": caller.credential,
                "key_id": caller.key.id if caller.key is not None else None,
                "scopes": caller.key.scopes if caller.key is not None else FULL}

    def _finish(self, name: Any, first: Context, deferred: Deferred) -> Any:
        """Run a ``Deferred``: its work outside any transaction, its finish in a write one
        (run once more, as the first, when its connection died before COMMIT)."""
        with deferred.work.run(self.config) as outcome:
            return _once_more(name, partial(self._finish_transaction, first, deferred,
                                            outcome))

    def _finish_transaction(self, first: Context, deferred: Deferred, outcome: Any) -> Any:
        """The finish, after the caller and its key are checked again: either may have been
        deactivated, revoked or expired while the slow part ran."""
        ctx: CallContext | None = None
        try:
            with self.db.transaction(write=True) as session:
                user = session.get(User, first.caller.id)
                if user is None or not user.active:
                    raise InvalidApiKey("the caller was deleted or deactivated mid-call")
                if first.key_id is not None:
                    _check_key_still_valid(session.get(ApiKey, first.key_id), user.id)
                ctx = CallContext(session=session, caller=Actor.of(user), config=first.config,
                                  client_ip=first.client_ip, registry=first.registry,
                                  key_id=first.key_id, credential=first.credential,
                                  scopes=first.scopes, _user=user)
                result = deferred.finish(ctx, outcome)
                session.flush()
        except BaseException:
            if ctx is not None:
                ctx.finished(committed=False)
            raise
        ctx.finished(committed=True)
        return result

    def _touch_key(self, key_id: int) -> None:
        """Record that a key was used; a separate write so that read calls stay reads."""
        try:
            with self.db.transaction(write=True) as session:
                session.execute(update(ApiKey).where(ApiKey.id == key_id)
                                .values(last_used_on=utcnow()))
        except Exception:
            log.exception("could not record the use of API key id %s", key_id)


def _failure_subjects(client_ip: str | None,
                      outside: tuple[Credential, ...]) -> list[str]:
    """Who a failed authentication counts against: the address (none for the admin command
    on the server's machine) and any username HTTP Basic named."""
    subjects = [f"address {client_ip}"] if client_ip is not None else []
    subjects += [f"user {c.username}" for c in outside if c.kind == BASIC and c.username]
    return subjects


def _touch_id(caller: Caller) -> int | None:
    """The key whose ``last_used_on`` is due for a touch after the call."""
    return caller.key.id if caller.key is not None and needs_touch(caller.key) else None


def _once_more(name: Any, attempt: Callable[[], T]) -> T:
    """``attempt()``, and once more if its database connection died before its transaction
    committed (``db.CommitUnknown``, a failed COMMIT, is not a ``DBAPIError``: never run again).

    A restarted database server breaks every pooled connection; the pool has dropped them, and
    the second attempt gets a new one at once. When no connection could be made at all (the
    server is restarting), the second attempt waits ``RECONNECT_PAUSE`` first. A second
    failure is the caller's answer.
    """
    try:
        return attempt()
    except DBAPIError as exc:
        if not connection_lost(exc):
            raise
        log.warning("retrying %s once: its database connection was lost (%s)",
                    _loggable(name), _primary(exc))
        if not exc.connection_invalidated:
            time.sleep(RECONNECT_PAUSE)
    return attempt()


def _check_key_still_valid(key: ApiKey | None, user_id: int) -> None:
    if key is None or key.user_id != user_id:
        raise InvalidApiKey("the caller's key was deleted mid-call")
    if key.revoked_on is not None:
        raise InvalidApiKey(f"key id {key.id} of user id {user_id} was revoked mid-call")
    if key.expires_on is not None and key.expires_on <= utcnow():
        raise InvalidApiKey(f"key id {key.id} of user id {user_id} expired mid-call")


def _primary(exc: DBAPIError) -> str:
    """The driver error's class and first line: no parameters, no quoted row."""
    text = str(exc.orig)
    return f"{type(exc.orig).__name__}: {text.splitlines()[0] if text else ''}"


def _log_refusal(client_ip: str | None, exc: InvalidApiKey) -> None:
    log.warning("refused API call from %s: %s", client_ip, exc.reason)


def _log_internal_error(method: Any, exc: Exception) -> None:
    """Log a bug once, with its traceback; a database error without its driver's details.

    The driver's message may quote the failing row (PostgreSQL's ``DETAIL: Failing row
    contains (...)``, with a password hash or a clone_uri credential in it); its first line
    names the constraint or the fault, which is what an admin needs.
    """
    if not isinstance(exc, DBAPIError):
        log.exception("internal error in method %s", _loggable(method))
        return
    stack = "".join(traceback.format_tb(exc.__traceback__))
    log.error("database error in method %s: %s\nTraceback (most recent call last):\n%s",
              _loggable(method), _primary(exc), stack)


def _loggable(name: Any) -> str:
    text = name if isinstance(name, str) else type(name).__name__
    return repr(text[:100])
