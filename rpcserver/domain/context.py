"""What a method handler is given: the call's context, and how it answers slow work.

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
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from sqlalchemy.orm import Session

from rpcserver.core.config import Config
from rpcserver.core.credentials import Credential
from rpcserver.core.registry import Registry
from rpcserver.db.models import User

log = logging.getLogger(__name__)


@dataclass
class CallContext:
    """What a handler may use: the transaction's session, the caller, the server's settings."""

    session: Session
    user: User
    config: Config
    client_ip: str | None
    registry: Registry
    #: The id of the API key that authenticated the call (None outside a call, e.g. the CLI):
    #: a ``Deferred``'s finish checks it again.
    key_id: int | None = None
    #: How the caller proved who it is (None outside a call: tests that build a context).
    credential: Credential | None = None
    #: Objects a permission check already loaded, by argument name (``"repoid"`` -> the
    #: Repository), so that the handler does not look them up a second time.
    resolved: dict[str, Any] = field(default_factory=dict)
    _on_commit: list[Callable[[], None]] = field(default_factory=list, repr=False)
    _on_rollback: list[Callable[[], None]] = field(default_factory=list, repr=False)

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
    with a fresh ``ctx`` and gives the result. ``work``'s exit runs last, after commit or
    rollback hooks, whatever happened. A Deferred method is registered with
    ``writes=False``: its first transaction only reads.
    """

    work: Work
    finish: Callable[[CallContext, Any], Any]
