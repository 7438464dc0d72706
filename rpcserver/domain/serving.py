"""Serving repositories to git clients: who may clone or push what, and what follows a push
(docs/serving.md).

The rules are the API's (``domain.access``: owner, grants, user groups, ``default``,
private), limited by the key's or token's scopes (``Scopes.reaches_repository``). A
repository the caller may not read is answered exactly like one that does not exist, so git
clients learn nothing about names they cannot see.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from rpcserver.core.config import Config
from rpcserver.db.database import Database
from rpcserver.db.models import Level, Repository, User
from rpcserver.domain import access
from rpcserver.domain.context import Actor
from rpcserver.domain.grants import DEFAULT_USER_ID, REPO
from rpcserver.domain.lookup import as_id
from rpcserver.domain.repositories import last_changeset, reader
from rpcserver.domain.scopes import Scopes
from rpcserver.vcs.model import VcsError
from rpcserver.vcs.store import name_problem

log = logging.getLogger(__name__)


class Outcome(enum.Enum):
    ALLOWED = "allowed"
    #: Absent, or not readable by the caller (the same answer, on purpose).
    HIDDEN = "hidden"
    #: Readable, but the caller may not push.
    READ_ONLY = "read-only"


@dataclass(frozen=True)
class RepoRef:
    """The repository a git request is for (plain data)."""

    id: int
    name: str
    repo_type: str


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    repo: RepoRef | None = None


_DEFAULT = select(User.id, User.username, User.firstname, User.lastname, User.email,
                  User.active, User.admin).where(User.id == DEFAULT_USER_ID)


def anonymous(conn: Connection) -> Actor | None:
    """The ``default`` user, as whom anonymous clients read; None when it is inactive."""
    row = conn.execute(_DEFAULT).first()
    if row is None or not row.active:
        return None
    return Actor(*row)


def decide(conn: Connection, user: Actor | None, scopes: Scopes | None, name: str, *,
           push: bool) -> Decision:
    """May ``user`` (None: anonymous, not allowed) clone or fetch (``push`` False) or push
    repository ``name``? ``scopes`` are those of the key or token used (None: a password)."""
    if user is None or name_problem(name) is not None or as_id(name) is not None:
        return Decision(Outcome.HIDDEN)
    found = access.resolve(conn, user, REPO, name)
    if found is None:
        return Decision(Outcome.HIDDEN)
    row, level = found
    if level < Level.READ or (scopes is not None
                              and not scopes.reaches_repository(name, push=False)):
        return Decision(Outcome.HIDDEN)
    repo = RepoRef(id=row.id, name=row.name, repo_type=row.repo_type)
    if push and (level < Level.WRITE or user.id == DEFAULT_USER_ID
                 or (scopes is not None and not scopes.reaches_repository(name, push=True))):
        return Decision(Outcome.READ_ONLY, repo)
    return Decision(Outcome.ALLOWED, repo)


def push_environment(config: Config, repo: RepoRef, user: Actor) -> dict[str, str]:
    """Extra environment for the ``git receive-pack`` of a push ``user`` was allowed to make
    to ``repo``. Git configuration goes in as ``GIT_CONFIG_COUNT`` / ``GIT_CONFIG_KEY_<n>`` /
    ``GIT_CONFIG_VALUE_<n>``: it is applied after the server's own (``core.hooksPath`` is
    ``/dev/null`` until then), so it wins."""
    # seam: hooks (issue 15 items 3 and 4: hooks and push rules plug in here)
    return {}


def after_push(config: Config, db: Database, repo: RepoRef, returncode: int | None) -> None:
    """A ``git receive-pack`` into ``repo`` has exited (``returncode``; refs may have moved
    even when it failed): the cached ``last_changeset`` is read from disk again, as
    ``invalidate_cache`` does. Runs under the repository's lock."""
    # seam: hooks (what follows a push: the cache now, more with items 3 and 4)
    refresh_changeset_cache(config, db, repo)


def refresh_changeset_cache(config: Config, db: Database, repo: RepoRef) -> None:
    try:
        cache: dict[str, Any] = last_changeset(reader(config, repo), refresh=True)
    except (VcsError, OSError) as exc:
        log.warning("after a push to %s: could not read its last changeset: %s",
                    repo.name, exc)
        return
    with db.transaction(write=True) as session:
        row = session.get(Repository, repo.id)
        if row is not None and row.name == repo.name:
            row.changeset_cache = cache
