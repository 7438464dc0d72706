"""The rows reads are answered from: one prebuilt SELECT per kind of object.

A read method never builds ORM objects: building one cost more than the rest of a list call
(docs/performance.md). It runs these statements, or the permission model's statements built on
them (``access``), and ``serialize`` turns each row into its answer. A write answers the same
shape by reading the row again after its changes, so there is one definition of each.

Each SELECT names its columns like the model's attributes (``row.name``, ``row.owner_id``),
plus ``owner_name`` and the like for the joined names. Its first columns are in the order the
answer lists them (``serialize`` unpacks them by position, which is faster than by name).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import Connection, Row, Select, select
from sqlalchemy.orm import aliased

from rpcserver.core.errors import NotFound
from rpcserver.db.models import RepoGroup, Repository, User, UserGroup
from rpcserver.domain import lookup
from rpcserver.domain.grants import REPO, REPO_GROUP, USER_GROUP, Kind

#: A user's public columns, in the order of a user answer (``serialize.user``).
USER_COLUMNS = (User.id, User.username, User.firstname, User.lastname, User.email,
                User.active, User.admin)

_owner = aliased(User, name="owner")
_fork_of = aliased(Repository, name="fork_of")
_parent = aliased(RepoGroup, name="parent")

#: How many leading columns of each row ``serialize`` reads by position.
REPOSITORY_ANSWER = 13
REPO_GROUP_ANSWER = 5
USER_GROUP_ANSWER = 5


@cache
def select_of(kind: Kind) -> Select[*tuple[Any, ...]]:
    """SELECT every object of ``kind`` as a row (add a WHERE, or use it as a page)."""
    if kind is REPO:
        return (select(Repository.id, Repository.name, Repository.repo_type,
                       Repository.clone_uri, Repository.private, Repository.created_on,
                       Repository.description, Repository.landing_rev,
                       _owner.username.label("owner_name"), _fork_of.name.label("fork_of_name"),
                       Repository.enable_statistics, Repository.enable_downloads,
                       Repository.changeset_cache,
                       Repository.owner_id, Repository.fork_of_id, Repository.group_id)
                .join(_owner, _owner.id == Repository.owner_id)
                .outerjoin(_fork_of, _fork_of.id == Repository.fork_of_id))
    if kind is REPO_GROUP:
        return (select(RepoGroup.id, RepoGroup.name, RepoGroup.description,
                       _parent.name.label("parent_name"), _owner.username.label("owner_name"),
                       RepoGroup.owner_id, RepoGroup.parent_id)
                .join(_owner, _owner.id == RepoGroup.owner_id)
                .outerjoin(_parent, _parent.id == RepoGroup.parent_id))
    if kind is USER_GROUP:
        return (select(UserGroup.id, UserGroup.name, UserGroup.description, UserGroup.active,
                       _owner.username.label("owner_name"), UserGroup.owner_id)
                .join(_owner, _owner.id == UserGroup.owner_id))
    raise ValueError(f"no rows for {kind!r}")


@cache
def _by_id(kind: Kind) -> Select[*tuple[Any, ...]]:
    return select_of(kind).where(kind.model.id == lookup.IDENT)


def by_id(conn: Connection, kind: Kind, ident: int) -> Row[*tuple[Any, ...]]:
    """The row of the object with id ``ident`` (a write reads its answer back with it)."""
    return conn.execute(_by_id(kind), {"ident": ident}).one()


_USER_BY_ID = select(*USER_COLUMNS).where(User.id == lookup.IDENT)
_USER_BY_NAME = select(*USER_COLUMNS).where(User.username == lookup.NAME)


def user_or_none(conn: Connection, userid: Any) -> Row[*tuple[Any, ...]] | None:
    """The user ``userid`` (an id or a name) names, as a row of ``USER_COLUMNS``."""
    params = lookup.by_id_or_name(userid)
    if params is None:
        return None
    statement = _USER_BY_ID if "ident" in params else _USER_BY_NAME
    return conn.execute(statement, params).first()


def get_user(conn: Connection, userid: Any) -> Row[*tuple[Any, ...]]:
    """``user_or_none``, or ``user `<x>` does not exist``."""
    found = user_or_none(conn, userid)
    if found is None:
        raise NotFound(lookup.USER, userid)
    return found
