"""Serving repositories to git clients: who may clone or push what (docs/serving.md); what
a push may do and what follows it is ``domain.pushes``.

The rules are the API's (``domain.access``: owner, grants, user groups, ``default``,
private), limited by the key's or token's scopes (``Scopes.reaches_repository``). A
repository the caller may not read is answered exactly like one that does not exist, so git
clients learn nothing about names they cannot see.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass

from sqlalchemy import Connection, select

from rpcserver.db.models import Level, User
from rpcserver.domain import access
from rpcserver.domain.context import Actor
from rpcserver.domain.grants import DEFAULT_USER_ID, REPO
from rpcserver.domain.lookup import as_id
from rpcserver.domain.scopes import Scopes
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
    #: The caller's own level on the repository (the push rules follow it).
    level: Level = Level.NONE


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
        return Decision(Outcome.READ_ONLY, repo, level)
    return Decision(Outcome.ALLOWED, repo, level)
