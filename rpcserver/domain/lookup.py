"""Finding objects by id or name (API.md §2): an int or a digit-only string is an id.

These look-ups know nothing of permissions: a method that needs an object the caller must be
allowed to see declares a requirement (``permissions.OnRepo`` and friends) and takes the object
from ``ctx.resolved``. Use these for objects the method may name regardless of who asks (the
``owner`` of something an admin creates, the user added to a group, ...).
"""

from __future__ import annotations

import functools
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Integer, Select, String, bindparam, select
from sqlalchemy.orm import Session

from rpcserver.core.errors import NotFound
from rpcserver.core.schemas import MAX_ID
from rpcserver.db.models import RepoGroup, Repository, User, UserGroup

#: What ``NotFound`` calls each kind of object (API.md §2).
USER = "user"
USER_GROUP = "user group"
REPOSITORY = "repository"
REPO_GROUP = "repository group"

Named = TypeVar("Named", Repository, RepoGroup, UserGroup)


def as_id(value: Any) -> int | None:
    """The id ``value`` names, or None when it is a name."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None


#: The bound parameters of a prebuilt look-up: ``by_id_or_name`` gives their values.
IDENT = bindparam("ident", type_=Integer)
NAME = bindparam("name", type_=String)


def by_id_or_name(value: Any) -> dict[str, Any] | None:
    """``{"ident": id}`` or ``{"name": name}`` for a statement built with ``where_named``;
    None when ``value`` is an id no row can have.

    Hot look-ups are built once and given these values, because building a statement per call
    (and SQLAlchemy computing its cache key) cost more than running it.
    """
    ident = as_id(value)
    if ident is not None:
        return {"ident": ident} if ident <= MAX_ID else None
    return {"name": str(value)}


def where_named(model: type[Repository] | type[RepoGroup] | type[UserGroup],
                by_id: bool) -> ColumnElement[bool]:
    """The WHERE clause for the parameters ``by_id_or_name`` gives."""
    return model.id == IDENT if by_id else model.name == NAME


def user_or_none(session: Session, userid: Any) -> User | None:
    ident = as_id(userid)
    if ident is not None:
        return session.get(User, ident) if ident <= MAX_ID else None
    return session.scalars(_USER_BY_NAME, {"name": str(userid)}).first()


_USER_BY_NAME = select(User).where(User.username == NAME)


def get_user(session: Session, userid: Any) -> User:
    found = user_or_none(session, userid)
    if found is None:
        raise NotFound(USER, userid)
    return found


def _named_or_none(session: Session, model: type[Named], value: Any) -> Named | None:
    params = by_id_or_name(value)
    if params is None:
        return None
    return session.scalars(_named(model, "ident" in params), params).first()


@functools.cache
def _named(model: type[Named], by_id: bool) -> Select[Named]:
    return select(model).where(where_named(model, by_id))


def user_group_or_none(session: Session, usergroupid: Any) -> UserGroup | None:
    return _named_or_none(session, UserGroup, usergroupid)


def get_user_group(session: Session, usergroupid: Any) -> UserGroup:
    """The user group, whoever asks; ``user group `<x>` does not exist`` otherwise."""
    found = user_group_or_none(session, usergroupid)
    if found is None:
        raise NotFound(USER_GROUP, usergroupid)
    return found


def repo_or_none(session: Session, repoid: Any) -> Repository | None:
    return _named_or_none(session, Repository, repoid)


def get_repo(session: Session, repoid: Any) -> Repository:
    """The repository (full name or id), whoever asks."""
    found = repo_or_none(session, repoid)
    if found is None:
        raise NotFound(REPOSITORY, repoid)
    return found


def repo_group_or_none(session: Session, repogroupid: Any) -> RepoGroup | None:
    return _named_or_none(session, RepoGroup, repogroupid)


def get_repo_group(session: Session, repogroupid: Any) -> RepoGroup:
    """The repository group (full path or id), whoever asks."""
    found = repo_group_or_none(session, repogroupid)
    if found is None:
        raise NotFound(REPO_GROUP, repogroupid)
    return found
