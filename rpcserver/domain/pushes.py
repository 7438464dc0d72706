"""A push, around ``git receive-pack``: the rules for the caller, the repository's lock while
git writes, and afterwards the cache and the push log.

The serving code calls, in this order::

    rules = push_rules(config, actor, level)                     # level: the caller's own
    with push_lock(config, repo_id):                             # RepositoryBusy: 503
        confirm_repository(db, repo_id, name)                    # RepositoryGone: 404
        env = hooks.push_environment(store, rules, record, base=...)
        ... git receive-pack / http-backend ...
        after_push(config, db, repo_id, hooks.read_record(record), actor)

The lock is the one pulls, renames and deletes hold while they change the repository on disk,
so a push never runs under them; ``after_push`` runs under it too, so that what it reads from
disk is what the push left.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select

from rpcserver.core.config import Config
from rpcserver.db.database import Database
from rpcserver.db.models import Level, Repository
from rpcserver.domain.context import Actor
from rpcserver.domain.repositories import last_changeset, reader, store_for
from rpcserver.vcs.model import PushRules, RefUpdate, VcsError
from rpcserver.vcs.store import Busy, RepoLock

log = logging.getLogger("rpcserver.push")

#: How long a push waits for the repository's lock: renames and deletes hold it for a
#: transaction, a pull for up to ``git_timeout``; a waiting push holds a worker thread.
PUSH_LOCK_WAIT = 30.0


class PushRefused(Exception):
    """The push cannot run now; ``text`` is what to tell the pusher."""

    text = "push refused"

    def __init__(self, name: str | int) -> None:
        super().__init__(f"{self.text} ({name})")
        self.name = name


class RepositoryBusy(PushRefused):
    """Its lock stayed taken for the whole wait (HTTP: 503)."""

    text = "repository is busy (being pulled, renamed or deleted), try again"


class RepositoryGone(PushRefused):
    """It was renamed or deleted while the push waited for its lock (HTTP: 404)."""

    text = "repository was renamed or deleted meanwhile"


def push_rules(config: Config, caller: Actor, level: Level) -> PushRules:
    """The rules of a push by ``caller``, whose own level on the repository is ``level``
    (``domain.access``)."""
    return PushRules(may_rewrite_default=level >= Level.ADMIN,
                     max_push_bytes=config.max_push_bytes, caller=caller.username)


def take_push_lock(config: Config, repo_id: int, *,
                   timeout: float = PUSH_LOCK_WAIT) -> RepoLock:
    """Repository ``repo_id``'s lock, taken, waiting at most ``timeout`` seconds for it;
    ``RepositoryBusy`` when it stays taken. The caller releases it (an HTTP push: when its
    answer has been sent)."""
    lock = store_for(config).lock(repo_id)
    try:
        lock.acquire(timeout)
    except Busy:
        log.info("push to repository id %s: its lock stayed taken for %g s", repo_id,
                 timeout)
        raise RepositoryBusy(repo_id) from None
    return lock


@contextlib.contextmanager
def push_lock(config: Config, repo_id: int, *,
              timeout: float = PUSH_LOCK_WAIT) -> Iterator[None]:
    """``take_push_lock`` for a block."""
    lock = take_push_lock(config, repo_id, timeout=timeout)
    try:
        yield
    finally:
        lock.release()


def confirm_repository(db: Database, repo_id: int, name: str) -> None:
    """``RepositoryGone`` unless repository ``repo_id`` is still called ``name``: run under
    ``push_lock``, after a rename or delete that held the lock has committed."""
    with db.reading() as conn:
        now = conn.scalar(select(Repository.name).where(Repository.id == repo_id))
    if now != name:
        log.info("push to %s: it was renamed or deleted meanwhile (now %s)", name, now)
        raise RepositoryGone(name)


@dataclass(frozen=True)
class PushEvent:
    """One accepted push, as the push log (and later the audit log) records it."""

    caller: str
    caller_id: int | None
    repository: str
    repo_id: int
    updates: tuple[RefUpdate, ...]

    def to_data(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        refs = ", ".join(f"{u.ref} {u.old[:12]}..{u.new[:12]}" for u in self.updates)
        return refs or "no ref changed"


def after_push(config: Config, db: Database, repo_id: int, updates: list[RefUpdate],
               caller: Actor | str) -> PushEvent | None:
    """Log the push, then store repository ``repo_id``'s ``last_changeset`` as read from
    disk now (as ``invalidate_cache`` does). Run under ``push_lock``. None when the
    repository is gone. A repository git cannot read keeps its old cache (logged);
    ``rpcserver refresh-repo`` mends it later."""
    with db.reading() as conn:
        repo = conn.execute(select(Repository.name, Repository.repo_type)
                            .where(Repository.id == repo_id)).first()
    if repo is None:
        log.warning("push to repository id %s: it is gone; nothing to refresh", repo_id)
        return None
    username, user_id = ((caller.username, caller.id) if isinstance(caller, Actor)
                         else (caller, None))
    event = PushEvent(caller=username, caller_id=user_id, repository=repo.name,
                      repo_id=repo_id, updates=tuple(updates))
    log.info("push to %s by %s: %s", repo.name, username, event.summary(),
             extra={"push": event.to_data()})
    try:
        cache = last_changeset(reader(config, repo), refresh=True)
    except VcsError as exc:
        log.warning("push to %s: cannot read its last changeset: %s", repo.name, exc)
        return event
    with db.transaction(write=True) as session:
        stored = session.get(Repository, repo_id)
        if stored is not None:
            stored.changeset_cache = cache
    return event
