"""Users: get_user(s), create_user (also RhodeCode 1.2's), update_user, delete_user."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import exists, func, select

from rpcserver.core import schemas
from rpcserver.core.errors import ApiError, InvalidArg
from rpcserver.core.registry import RHODECODE, Registry
from rpcserver.db.models import RepoGroup, Repository, User, UserGroup
from rpcserver.db.savepoint import flushed_or
from rpcserver.domain import paging, rows, serialize
from rpcserver.domain.access import user_permissions
from rpcserver.domain.auth import hash_password
from rpcserver.domain.context import CallContext, ReadContext
from rpcserver.domain.grants import DEFAULT_USER_ID
from rpcserver.domain.lookup import as_id
from rpcserver.domain.lookup import get_user as find_user
from rpcserver.domain.permissions import ADMIN, SelfOrAdmin

log = logging.getLogger(__name__)
registry = Registry()

#: Why a digit-only username is refused (``Invalid `username` arg in JSON DATA: ...``).
DIGITS_ONLY = "must not be only digits (a digit-only string names a user by id)"

_USER_FIELDS = {
    "password": schemas.PASSWORD,
    "firstname": schemas.string(),
    "lastname": schemas.string(),
    "active": schemas.boolean(),
    "admin": schemas.boolean(),
    "extern_type": schemas.string(),
    "extern_name": schemas.string(),
}


@registry.method("get_user",
                 schema=schemas.obj(userid=schemas.nullable(schemas.id_or_name())),
                 permission=SelfOrAdmin("userid"))
def get_user(ctx: ReadContext, userid: Any = None) -> dict[str, Any]:
    """A user and its effective permissions; without ``userid``, the caller."""
    user = ctx.caller if userid is None else ctx.resolved["userid"]
    data = serialize.user(user)
    data["permissions"] = user_permissions(ctx.conn, user)
    return data


@registry.method("get_users",
                 schema=schemas.obj(limit=paging.LIMIT, offset=paging.OFFSET, n=paging.N,
                                    last=paging.LAST),
                 permission=ADMIN)
def get_users(ctx: ReadContext, limit: int | None = None,
              offset: int | None = None, n: int | None = None,
              last: str | None = None) -> list[dict[str, Any]]:
    """Every user but ``default``, by username (Kallithea's order); with ``n`` and ``last``,
    the ``n`` next after username ``last``. Without ``n``, more than ``max_list_items``
    (10,000) users are refused: page. The older ``limit`` and ``offset``: by id, at most
    ``limit`` from ``offset``."""
    found = paging.rows(ctx.conn, _USERS, "get_users", ctx.config.max_list_items, {},
                        n=n, last=last, limit=limit, offset=offset)
    return serialize.users_from_rows(found)


# Built once: a statement built per call costs about as much as running it.
_USERS = paging.Pages.of(select(*rows.USER_COLUMNS).where(User.id != DEFAULT_USER_ID),
                         key=User.username, whole_order=User.username, ident=User.id)


@registry.method("create_user",
                 schema=schemas.obj(required=("username", "email"), username=schemas.USERNAME,
                                    email=schemas.EMAIL, **_USER_FIELDS),
                 permission=ADMIN, writes=True)
def create_user(ctx: CallContext, username: str, email: str, password: str = "",
                firstname: str = "", lastname: str = "", active: bool = True,
                admin: bool = False, extern_type: str = "internal",
                extern_name: str = "") -> dict[str, Any]:
    """Create a user; names and emails are unique regardless of case."""
    user = add_user(ctx, username=username, email=email, password=password,
                    firstname=firstname, lastname=lastname, active=active, admin=admin,
                    extern_type=extern_type, extern_name=extern_name)
    return {"msg": f"created new user `{user.username}`", "user": serialize.user(user)}


@registry.method("create_user", dialect=RHODECODE,
                 schema=schemas.obj(required=("username", "email"),
                                    username=schemas.USERNAME, password=schemas.PASSWORD,
                                    active=schemas.boolean(), admin=schemas.boolean(),
                                    name=schemas.string(), lastname=schemas.string(),
                                    email=schemas.EMAIL),
                 permission=ADMIN, writes=True)
def create_user_rhodecode(ctx: CallContext, username: str, email: str, password: str = "",
                          active: bool = True, admin: bool = False, name: str = "",
                          lastname: str = "") -> dict[str, Any]:
    """RhodeCode 1.2's create_user: ``name`` is the first name; answers the new id."""
    user = add_user(ctx, username=username, email=email, password=password, firstname=name,
                    lastname=lastname, active=active, admin=admin)
    return {"id": user.id, "msg": f"created new user {user.username}"}


def add_user(ctx: CallContext, *, username: str, email: str, password: str,
             **fields: Any) -> User:
    _check_not_an_id(username)
    session = ctx.session
    user = User(username=username, email=email.lower(),
                password_hash=hash_password(password), **fields)
    # Insert first and ask why only when the database refuses: the unique indexes decide
    # anyway (also when two requests race), and a successful create saves two queries.
    with flushed_or(session, lambda: _taken(ctx, username, email)):
        session.add(user)
    return user


def _check_not_an_id(username: str) -> None:
    """Refuse a digit-only username: every look-up reads ``"2"`` as user id 2 (API.md §2, as
    Kallithea does), so such a user could never be named by its name (docs/compatibility.md)."""
    if as_id(username) is not None:
        raise InvalidArg("username", DIGITS_ONLY)


def _taken(ctx: CallContext, username: str, email: str) -> ApiError | None:
    """Why the database refused a new user (None: for no reason we know of); the texts echo
    what was sent, as Kallithea's do."""
    if _name_taken(ctx, username):
        return ApiError(f"user `{username}` already exist")
    if _email_taken(ctx, email.lower()):
        return ApiError(f"email `{email}` already exist")
    return None


@registry.method("update_user",
                 schema=schemas.obj(required=("userid",), userid=schemas.id_or_name(),
                                    username=schemas.USERNAME, email=schemas.EMAIL,
                                    **_USER_FIELDS),
                 permission=ADMIN, writes=True)
def update_user(ctx: CallContext, userid: Any, username: str | None = None,
                email: str | None = None, password: str | None = None,
                firstname: str | None = None, lastname: str | None = None,
                active: bool | None = None, admin: bool | None = None,
                extern_type: str | None = None, extern_name: str | None = None) -> dict[str, Any]:
    """Change the given fields of a user; the others stay as they are."""
    user = find_user(ctx.session, userid)
    if user.id == DEFAULT_USER_ID:
        raise ApiError("editing default user is forbidden")
    if username is not None and username != user.username:
        _check_not_an_id(username)
    failed = ApiError(f"failed to update user `{userid}`")
    if username is not None and username.lower() != user.username.lower() and _name_taken(
            ctx, username):
        log.info("update_user %s: username %s is taken", user.id, username)
        raise failed
    if email is not None:
        email = email.lower()
        if email != user.email and _email_taken(ctx, email):
            log.info("update_user %s: email is taken", user.id)
            raise failed
    if (active is False or admin is False) and user.admin and _is_last_admin(ctx, user):
        log.info("update_user %s: refusing to disable or demote the last admin", user.id)
        raise failed
    changes = {"username": username, "email": email, "firstname": firstname,
               "lastname": lastname, "active": active, "admin": admin,
               "extern_type": extern_type, "extern_name": extern_name}
    for name, value in changes.items():
        if value is not None:
            setattr(user, name, value)
    if password is not None:
        user.password_hash = hash_password(password)
    with flushed_or(ctx.session, failed,
                    why=f"update_user {user.id}: lost a race for a unique name or email"):
        pass
    return {"msg": f"updated user ID:{user.id} {user.username}", "user": serialize.user(user)}


@registry.method("delete_user",
                 schema=schemas.obj(required=("userid",), userid=schemas.id_or_name()),
                 permission=ADMIN, writes=True)
def delete_user(ctx: CallContext, userid: Any) -> dict[str, Any]:
    """Delete a user who owns nothing; its keys, grants and memberships go with it."""
    session = ctx.session
    user = find_user(session, userid)
    failed = ApiError(f"failed to delete user ID:{user.id} {user.username}")
    if user.id == DEFAULT_USER_ID:
        raise failed
    # Lock the row first (PostgreSQL): making the user the owner of something concurrently
    # then either commits before our check sees it, or fails on its foreign key after us.
    # Deleting an admin locks every admin, in id order, so that two admins deleting each
    # other at once cannot both pass the last-admin check.
    locked = User.admin.is_(True) if user.admin else User.id == user.id
    session.execute(select(User.id).where(locked).order_by(User.id).with_for_update())
    for model, what in ((Repository, "repositories"), (RepoGroup, "repository groups"),
                        (UserGroup, "user groups")):
        if session.scalar(select(exists().where(model.owner_id == user.id))):
            log.info("delete_user %s: the user still owns %s", user.id, what)
            raise failed
    if user.admin and _is_last_admin(ctx, user):
        log.info("delete_user %s: refusing to delete the last admin", user.id)
        raise failed
    msg = f"deleted user ID:{user.id} {user.username}"
    with flushed_or(session, failed,
                    why=f"delete_user {user.id}: something still refers to the user"):
        session.delete(user)
    return {"msg": msg, "user": None}


def _name_taken(ctx: CallContext, username: str) -> bool:
    return bool(ctx.session.scalar(
        select(exists().where(func.lower(User.username) == username.lower()))))


def _email_taken(ctx: CallContext, email: str) -> bool:
    return bool(ctx.session.scalar(select(exists().where(User.email == email))))


def _is_last_admin(ctx: CallContext, user: User) -> bool:
    others = ctx.session.scalar(
        select(func.count()).select_from(User)
        .where(User.admin.is_(True), User.active.is_(True), User.id != user.id))
    return not others
