"""Grants: the kinds of object that carry per-object grants, where each kind's grant rows
live, the wire names of levels, and the built-in global permissions.

Levels are ``models.Level`` (NONE < READ < WRITE < ADMIN), on three kinds of object:
repositories, repository groups and user groups (``KINDS``). Everything that reads or writes a
grant row goes through a ``Kind``, never through a grant table by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from rpcserver.db.models import (
    GlobalPermission,
    Level,
    RepoGroup,
    Repository,
    User,
    UserGroup,
    UserGroupRepoGroupPerm,
    UserGroupRepoPerm,
    UserGroupUserGroupPerm,
    UserRepoGroupPerm,
    UserRepoPerm,
    UserUserGroupPerm,
)
from rpcserver.domain import lookup

DEFAULT_USER_ID = 1

#: Global permissions ``default`` holds out of the box (API.md §3).
DEFAULT_GLOBAL_PERMISSIONS = (
    "hg.create.repository",
    "hg.fork.repository",
    "hg.extern_activate.auto",
    "hg.register.manual_activate",
    "repository.read",
    "group.read",
    "usergroup.read",
)

#: What ``get_user`` lists for an admin, as Kallithea does: the one permission that implies
#: every other.
ADMIN_GLOBAL_PERMISSIONS = ("hg.admin",)

CREATE_REPOSITORY = "hg.create.repository"
FORK_REPOSITORY = "hg.fork.repository"
CREATE_USER_GROUP = "hg.usergroup.create.true"


# --- Kinds of object and the wire names of their levels ------------------------------------


@dataclass(frozen=True)
class Kind:
    """A kind of object that carries per-object grants, and where its grants live."""

    #: The wire prefix: ``repository``, ``group`` or ``usergroup``.
    prefix: str
    #: What "does not exist" calls it: ``repository``, ``repository group``, ``user group``.
    label: str
    model: Any
    #: The grant tables: to a user, and to a user group.
    user_perm: Any
    group_perm: Any
    #: The grant tables' column naming the object.
    target: str
    #: Whether objects of this kind can be private (the default grant is then ignored).
    has_private: bool

    def perm_name(self, level: Level) -> str:
        """``repository.read`` for (REPO, READ)."""
        return f"{self.prefix}.{level.name.lower()}"


REPO = Kind("repository", lookup.REPOSITORY, Repository, UserRepoPerm, UserGroupRepoPerm,
            "repo_id", True)
REPO_GROUP = Kind("group", lookup.REPO_GROUP, RepoGroup, UserRepoGroupPerm,
                  UserGroupRepoGroupPerm, "repo_group_id", False)
USER_GROUP = Kind("usergroup", lookup.USER_GROUP, UserGroup, UserUserGroupPerm,
                  UserGroupUserGroupPerm, "target_group_id", False)
KINDS = (REPO, REPO_GROUP, USER_GROUP)


def perm_name(kind: Kind, level: Level) -> str:
    """The wire name of a level: ``perm_name(REPO_GROUP, Level.WRITE) == "group.write"``."""
    return kind.perm_name(level)


def parse_perm(name: str) -> tuple[Kind, Level] | None:
    """``"usergroup.admin"`` -> (USER_GROUP, Level.ADMIN); None when it names no level.

    The caller decides the error: Kallithea answers ``permission `<perm>` does not exist``
    for an unknown name and ``permission `<perm>` is invalid, should start with group.`` for a
    level of the wrong kind (compare ``kind`` with the one the method expects).
    """
    prefix, dot, level_name = name.partition(".")
    if not dot:
        return None
    kind = next((k for k in KINDS if k.prefix == prefix), None)
    level = Level.__members__.get(level_name.upper()) if level_name.islower() else None
    if kind is None or level is None:
        return None
    return kind, level


def default_grant_for_new(session: Session, kind: Kind) -> Level:
    """The level ``default`` gets on a new object of ``kind``, from its global permissions.

    ``default`` holding ``repository.read`` (the seeded value) means a new public repository
    grants ``default`` read; likewise ``group.*`` for repository groups and ``usergroup.*`` for
    user groups. Insert that grant row when the object is created (not for a private
    repository); later changes of the global value do not touch existing objects.
    """
    names = session.scalars(select(GlobalPermission.name).where(
        GlobalPermission.user_id == DEFAULT_USER_ID,
        GlobalPermission.name.startswith(kind.prefix + ".", autoescape=True))).all()
    found = [parsed[1] for parsed in map(parse_perm, names)
             if parsed is not None and parsed[0] is kind]
    return max(found, default=Level.NONE)


# --- Grant rows ------------------------------------------------------------------------------

#: Who a grant is to: a user, or a user group.
Grantee = User | UserGroup


def kind_of(obj: Any) -> Kind:
    """The kind of a repository, repository group or user group object."""
    for kind in KINDS:
        if isinstance(obj, kind.model):
            return kind
    raise TypeError(f"{type(obj).__name__} carries no grants")


def _row(kind: Kind, who: Grantee, obj_id: int) -> tuple[Any, dict[str, int]]:
    """The grant table for ``who`` on an object of ``kind``, and the columns naming the pair."""
    if isinstance(who, User):
        return kind.user_perm, {"user_id": who.id, kind.target: obj_id}
    return kind.group_perm, {"group_id": who.id, kind.target: obj_id}


def set_grant(session: Session, who: Grantee, obj: Any, level: Level) -> None:
    """Set ``who``'s grant on ``obj``: insert it, or update the row already there (also the
    one a concurrent call inserted first)."""
    model, key = _row(kind_of(obj), who, obj.id)
    where = [getattr(model, column) == value for column, value in key.items()]
    row = session.scalars(select(model).where(*where)).first()
    if row is None:
        try:
            with session.begin_nested():
                session.add(model(**key, level=level))
                session.flush()
            return
        except IntegrityError:
            row = session.scalars(select(model).where(*where)).one()
    row.level = level
    session.flush()


def revoke(session: Session, who: Grantee, obj: Any) -> None:
    model, key = _row(kind_of(obj), who, obj.id)
    session.execute(delete(model).where(
        *(getattr(model, column) == value for column, value in key.items())))


def add_grants(session: Session, kind: Kind, obj_id: int, users: dict[int, Level],
               groups: dict[int, Level]) -> None:
    """The grants of a new object: user id -> level and user group id -> level."""
    session.add_all(kind.user_perm(user_id=uid, **{kind.target: obj_id}, level=level)
                    for uid, level in users.items())
    session.add_all(kind.group_perm(group_id=gid, **{kind.target: obj_id}, level=level)
                    for gid, level in groups.items())


def grants_on(session: Session, obj: Any) -> tuple[dict[int, Level], dict[int, Level]]:
    """(user id -> level, user group id -> level) granted on ``obj``."""
    kind = kind_of(obj)
    users = session.execute(select(kind.user_perm.user_id, kind.user_perm.level)
                            .where(getattr(kind.user_perm, kind.target) == obj.id))
    groups = session.execute(select(kind.group_perm.group_id, kind.group_perm.level)
                             .where(getattr(kind.group_perm, kind.target) == obj.id))
    return ({uid: level for uid, level in users}, {gid: level for gid, level in groups})


def held_by_group(session: Session, group_id: int, at_most: int) -> list[tuple[Kind, str]]:
    """What user group ``group_id`` holds grants on, by kind (``KINDS``' order) then name;
    at most ``at_most`` of each kind."""
    held: list[tuple[Kind, str]] = []
    for kind in KINDS:
        names = session.scalars(
            select(kind.model.name)
            .join(kind.group_perm, getattr(kind.group_perm, kind.target) == kind.model.id)
            .where(kind.group_perm.group_id == group_id).order_by(kind.model.name)
            .limit(at_most)).all()
        held += [(kind, name) for name in names]
    return held


def count_held_by_group(session: Session, group_id: int) -> int:
    return sum(session.scalar(select(func.count()).select_from(kind.group_perm)
                              .where(kind.group_perm.group_id == group_id)) or 0
               for kind in KINDS)
