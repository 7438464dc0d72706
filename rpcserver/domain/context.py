"""What a method handler is given: the call's context, and how it answers slow work.

Reads and writes are two contracts. A method registered as a read gets a ``ReadContext``: a
Core connection, on which it runs prebuilt statements and builds its answer from rows. Only a
writing method (and a ``Deferred``'s finish) gets a ``CallContext`` with an ORM session. Both
carry the caller as plain data (``Actor``), never an ORM object.

Two hooks let a method that also changes the disk (repositories) keep disk and database
together: ``ctx.on_commit``/``ctx.on_rollback`` run after the transaction ends, and a handler
may answer a ``Deferred`` whose slow part (a network fetch) runs with no transaction open,
followed by a short write transaction (``rpc.dispatch`` runs both). The slow part is a
``Work``: named, with plain-data parameters (``domain.work``), so that it could be queued.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Protocol, TypeVar

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from rpcserver.core.config import Config
from rpcserver.core.credentials import Credential
from rpcserver.core.registry import Registry
from rpcserver.db.models import User
from rpcserver.domain.scopes import FULL, Scopes

log = logging.getLogger(__name__)
M = TypeVar("M")


@dataclass(frozen=True)
class Actor:
    """The caller as plain data: who it is, as its key's row said when the call began.

    Public columns only (no password hash): ``serialize.user`` can answer it as it is, and it
    outlives the transaction it was read in (a ``Deferred``'s finish checks it again)."""

    id: int
    username: str
    firstname: str
    lastname: str
    email: str
    active: bool
    admin: bool

    @classmethod
    def of(cls, user: Any) -> Actor:
        """The actor of an ORM ``User`` (or of any row with a user's public columns)."""
        return cls(id=user.id, username=user.username, firstname=user.firstname,
                   lastname=user.lastname, email=user.email, active=user.active,
                   admin=user.admin)


#: The attributes ``Actor`` has, in order: the user columns a key look-up selects.
ACTOR_FIELDS = tuple(f.name for f in fields(Actor))


@dataclass(kw_only=True)
class Context:
    """What every handler and requirement may use: the caller, the server's settings, and
    ``conn``, a Core connection in the call's transaction (prebuilt statements run on it and
    answer rows)."""

    caller: Actor
    config: Config
    client_ip: str | None
    registry: Registry
    #: The id of the API key that authenticated the call (None for a ``local-cli`` call): a
    #: ``Deferred``'s finish checks it again.
    key_id: int | None = None
    #: How the caller proved who it is (None: tests that build a context).
    credential: Credential | None = None
    #: What the key may do below the user's own rights (``domain.scopes``); everything for
    #: a call without a key (``local-cli``).
    scopes: Scopes = FULL
    #: Rows a permission check already read, by argument name (``"repoid"`` -> the
    #: repository's row, ``domain.rows``), so that the handler does not read them again.
    resolved: dict[str, Any] = field(default_factory=dict)

    @property
    def conn(self) -> Connection:
        raise NotImplementedError


@dataclass(kw_only=True)
class ReadContext(Context):
    """A read method's context: a connection and rows, no ORM session (nothing to flush,
    no objects to build), so a read costs its statements and little else."""

    connection: Connection

    @property
    def conn(self) -> Connection:
        return self.connection


@dataclass(kw_only=True)
class CallContext(Context):
    """A writing method's context (and a ``Deferred``'s finish): the transaction's ORM
    session, and hooks that run when it ends."""

    session: Session
    _user: User | None = field(default=None, repr=False)
    _on_commit: list[Callable[[], None]] = field(default_factory=list, repr=False)
    _on_rollback: list[Callable[[], None]] = field(default_factory=list, repr=False)

    @property
    def conn(self) -> Connection:
        """The session's connection, with the session's pending changes flushed first, so a
        statement run on it sees them (as the session's own queries would)."""
        self.session.flush()
        return self.session.connection()

    @property
    def user(self) -> User:
        """The caller as an ORM object of this session, for a write that links to it (an
        owner, a follower); loaded on first use."""
        if self._user is None:
            self._user = self.session.get_one(User, self.caller.id)
        return self._user

    def object_of(self, arg: str, model: type[M]) -> M:
        """The ORM object of the row a requirement resolved for ``arg``, to change it."""
        return self.session.get_one(model, self.resolved[arg].id)

    def on_commit(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` once this call's transaction has committed (e.g. empty the trash)."""
        self._on_commit.append(hook)

    def on_rollback(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` if the transaction does not commit (undo a disk change); the last
        registered runs first."""
        self._on_rollback.append(hook)

    def finished(self, *, committed: bool) -> None:
        """Run the hooks for how the transaction ended; a failing hook is logged, not raised
        (the answer is already decided by the transaction)."""
        hooks = self._on_commit if committed else list(reversed(self._on_rollback))
        self._on_commit, self._on_rollback = [], []
        for hook in hooks:
            try:
                hook()
            except Exception:
                log.exception("%s hook %r failed", "commit" if committed else "rollback", hook)


class Work(Protocol):
    """The slow part of a call: a frozen dataclass of ids, names and values (no ORM objects,
    no session) whose ``kind`` names it in ``domain.work.WORK_KINDS``.

    ``run(config)`` is entered with no transaction open; what it yields is the outcome a
    ``Deferred``'s finish stores; its exit cleans up or undoes, whatever happened."""

    kind: ClassVar[str]

    def run(self, config: Config) -> AbstractContextManager[Any]: ...


@dataclass(frozen=True)
class Deferred:
    """A handler's answer when its slow part must run outside any transaction.

    The handler runs (checks, lookups) in the call's transaction, which then ends. Then
    ``work.run(config)`` is entered with no transaction open (it may hold a lock and fetch
    over the network); inside it, ``finish(ctx, outcome)`` runs in a new write transaction
    with a fresh ``CallContext`` and gives the result. ``work``'s exit runs last, after commit or
    rollback hooks, whatever happened. A Deferred method is registered with
    ``writes=False``: its first transaction only reads.
    """

    work: Work
    finish: Callable[[CallContext, Any], Any]
