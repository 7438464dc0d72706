"""User groups: get_user_group(s), create/update/delete_user_group, membership, and
``create_users_group`` (RhodeCode 1.2's name, in both envelopes; API.md §6).

Who may do what is declared with each method (see ``permissions``): reading a group needs
``usergroup.read``, changing it ``usergroup.admin``; owners and admins hold admin. A group the
caller cannot read answers ``user group `<x>` does not exist``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import cache
from typing import Any

from sqlalchemy import Row, bindparam, delete, exists, select
from sqlalchemy.exc import IntegrityError

from rpcserver.core import schemas
from rpcserver.core.errors import ApiError, InvalidArg, MissingArg
from rpcserver.core.registry import RHODECODE, Registry
from rpcserver.db.models import (
    Level,
    User,
    UserGroup,
    UserGroupMember,
)
from rpcserver.db.savepoint import flushed_or
from rpcserver.domain import paging, rows, serialize
from rpcserver.domain.access import USER_PARAM, readable
from rpcserver.domain.context import CallContext, Context, ReadContext
from rpcserver.domain.grants import (
    CREATE_USER_GROUP,
    DEFAULT_USER_ID,
    REPO,
    REPO_GROUP,
    USER_GROUP,
    add_grants,
    count_held_by_group,
    default_grant_for_new,
    held_by_group,
)
from rpcserver.domain.lookup import as_id
from rpcserver.domain.lookup import get_user as find_user
from rpcserver.domain.permissions import ADMIN, ANYONE, AllOf, HasGlobal, OnUserGroup

log = logging.getLogger(__name__)
registry = Registry()

#: How many objects the "still holds permissions" error names before "and N more".
MAX_NAMED = 20

#: Any printable text; control characters would corrupt logs and terminals.
GROUP_NAME = schemas.string(min_length=1, pattern=r"^[^\x00-\x1f\x7f]+$")
USERGROUPID = schemas.id_or_name()
OWNER_ONLY_FOR_ADMIN = "Only Kallithea admin can specify `owner` param"


def _members(ctx: Context, group_ids: list[int]) -> dict[int, list[Sequence[Any]]]:
    """Every member of the groups (rows of ``rows.USER_COLUMNS``), in the order they joined;
    one query for all the groups."""
    found: dict[int, list[Sequence[Any]]] = {group_id: [] for group_id in group_ids}
    if not group_ids:
        return found
    for row in ctx.conn.execute(_MEMBERS, {"group_ids": group_ids}).all():
        found[row[0]].append(row[1:])
    return found


# Built once: a statement built per call costs about as much as running it.
_MEMBERS = (select(UserGroupMember.group_id, *rows.USER_COLUMNS)
            .join(User, User.id == UserGroupMember.user_id)
            .where(UserGroupMember.group_id.in_(bindparam("group_ids", expanding=True)))
            .order_by(UserGroupMember.id))


def _serialize(ctx: Context, groups: Sequence[Row[Any]]) -> list[dict[str, Any]]:
    """Groups from their rows (``rows.select_of(USER_GROUP)``), with their members."""
    members = _members(ctx, [g.id for g in groups])
    return [serialize.user_group(g, members[g.id]) for g in groups]


def _one(ctx: Context, group: Row[Any]) -> dict[str, Any]:
    return _serialize(ctx, [group])[0]


def _answer(ctx: CallContext, group: UserGroup) -> dict[str, Any]:
    """A write's answer: the group's row read back, as a read would answer it."""
    return _one(ctx, rows.by_id(ctx.conn, USER_GROUP, group.id))


@registry.method("get_user_group", schema=schemas.obj(required=("usergroupid",),
                                                      usergroupid=USERGROUPID),
                 permission=OnUserGroup("usergroupid", Level.READ))
def get_user_group(ctx: ReadContext, usergroupid: Any) -> dict[str, Any]:
    """A user group and its members."""
    return _one(ctx, ctx.resolved["usergroupid"])


@registry.method("get_user_groups",
                 schema=schemas.obj(limit=paging.LIMIT, offset=paging.OFFSET, n=paging.N,
                                    last=paging.LAST),
                 permission=ANYONE)
def get_user_groups(ctx: ReadContext, limit: int | None = None,
                    offset: int | None = None, n: int | None = None,
                    last: str | None = None) -> list[dict[str, Any]]:
    """The user groups the caller can read (an admin: all), by id (Kallithea's order); with
    ``n`` and ``last``, the ``n`` next after ``last`` by name. Without ``n``, more than
    ``max_list_items`` (10,000) are refused: page. The older ``limit`` and ``offset``: by
    id, at most ``limit`` from ``offset``."""
    groups = paging.rows(ctx.conn, _user_groups_pages(ctx.caller.admin), "get_user_groups",
                         ctx.config.max_list_items, {USER_PARAM: ctx.caller.id},
                         n=n, last=last, limit=limit, offset=offset)
    return _serialize(ctx, groups)


@cache
def _user_groups_pages(admin: bool) -> paging.Pages:
    return paging.Pages.of(readable(rows.select_of(USER_GROUP), USER_GROUP, admin),
                           key=UserGroup.name, whole_order=UserGroup.id, ident=UserGroup.id)


def _check_name(group_name: str, arg: str = "group_name") -> None:
    # A digit-only name could never be found by name: "3" means the group with id 3 (§2).
    if as_id(group_name) is not None:
        raise InvalidArg(arg, "must not be only digits (it would read as an id)")


def _name_taken(ctx: CallContext, group_name: str) -> bool:
    return bool(ctx.session.scalar(select(exists().where(UserGroup.name == group_name))))


def add_user_group(ctx: CallContext, *, group_name: str, description: str, owner: Any,
                   active: bool, name_arg: str = "group_name") -> UserGroup:
    """Create a group owned by ``owner`` (default: the caller), granting ``default`` the
    level its global ``usergroup.*`` permission names (``usergroup.read`` out of the box)."""
    if owner is not None and not ctx.caller.admin:
        raise ApiError(OWNER_ONLY_FOR_ADMIN)
    _check_name(group_name, name_arg)
    taken = ApiError(f"user group `{group_name}` already exist")
    if _name_taken(ctx, group_name):
        raise taken
    owner_user = ctx.user if owner is None else find_user(ctx.session, owner)
    session = ctx.session
    group = UserGroup(name=group_name, description=description, active=active,
                      owner=owner_user)
    default_level = default_grant_for_new(session, USER_GROUP)
    # Another request may create the same name between our check and our insert.
    with flushed_or(session, lambda: taken if _name_taken(ctx, group_name) else None):
        session.add(group)
        session.flush()
        if default_level > Level.NONE:
            add_grants(session, USER_GROUP, group.id, {DEFAULT_USER_ID: default_level}, {})
    log.info("user group %s (%s) created by user id %s", group.id, group_name, ctx.caller.id)
    return group


_DESCRIPTION = schemas.text()
_OWNER = schemas.nullable(schemas.id_or_name())


@registry.method("create_user_group",
                 schema=schemas.obj(required=("group_name",), group_name=GROUP_NAME,
                                    description=_DESCRIPTION, owner=_OWNER,
                                    active=schemas.boolean()),
                 permission=HasGlobal(CREATE_USER_GROUP), writes=True)
def create_user_group(ctx: CallContext, group_name: str, description: str = "",
                      owner: Any = None, active: bool = True) -> dict[str, Any]:
    """Create a user group; its owner (the caller unless an admin names another) administers
    it."""
    group = add_user_group(ctx, group_name=group_name, description=description, owner=owner,
                           active=active)
    return {"msg": f"created new user group `{group.name}`", "user_group": _answer(ctx, group)}


class _GroupNameGiven:
    """``group_name`` or its RhodeCode 1.2 spelling ``name``: missing both is API.md §1 row
    12, so it is checked before the permission (row 15)."""

    description = ""

    def check(self, ctx: CallContext, args: dict[str, Any]) -> None:
        if "group_name" not in args and "name" not in args:
            raise MissingArg("group_name")
        if "group_name" in args and "name" in args and args["group_name"] != args["name"]:
            raise InvalidArg("name", "must not differ from `group_name` (they are one argument)")


@registry.method("create_users_group",
                 schema=schemas.obj(group_name=GROUP_NAME, description=_DESCRIPTION, owner=_OWNER,
                                    active=schemas.boolean(), name=GROUP_NAME),
                 permission=AllOf(_GroupNameGiven(), HasGlobal(CREATE_USER_GROUP)), writes=True)
def create_users_group(ctx: CallContext, group_name: str | None = None, description: str = "",
                       owner: Any = None, active: bool = True,
                       name: str | None = None) -> dict[str, Any]:
    """RhodeCode 1.2's name for create_user_group (``name`` may stand for ``group_name``);
    answers create_user_group's result plus the new ``id``."""
    arg = "group_name" if group_name is not None else "name"
    new_name = group_name if group_name is not None else name or ""  # one is given
    group = add_user_group(ctx, group_name=new_name, description=description, owner=owner,
                           active=active, name_arg=arg)
    return {"msg": f"created new user group `{group.name}`", "user_group": _answer(ctx, group),
            "id": group.id}


@registry.method("create_users_group", dialect=RHODECODE,
                 schema=schemas.obj(required=("name",), name=GROUP_NAME,
                                    active=schemas.boolean()),
                 permission=ADMIN, writes=True)
def create_users_group_rhodecode(ctx: CallContext, name: str,
                                 active: bool = True) -> dict[str, Any]:
    """RhodeCode 1.2's create_users_group: answers the new id."""
    group = add_user_group(ctx, group_name=name, description="", owner=None, active=active,
                           name_arg="name")
    return {"id": group.id, "msg": f"created new users group {group.name}"}


@registry.method("update_user_group",
                 schema=schemas.obj(required=("usergroupid",), usergroupid=USERGROUPID,
                                    group_name=GROUP_NAME, description=_DESCRIPTION,
                                    owner=_OWNER, active=schemas.boolean()),
                 permission=OnUserGroup("usergroupid", Level.ADMIN), writes=True)
def update_user_group(ctx: CallContext, usergroupid: Any, group_name: str | None = None,
                      description: str | None = None, owner: Any = None,
                      active: bool | None = None) -> dict[str, Any]:
    """Change the given fields of a user group; only an admin may give it another owner."""
    group = ctx.object_of("usergroupid", UserGroup)
    if owner is not None and not ctx.caller.admin:
        raise ApiError(OWNER_ONLY_FOR_ADMIN)
    failed = ApiError(f"failed to update user group `{usergroupid}`")
    if group_name is not None and group_name != group.name:
        _check_name(group_name)
        if _name_taken(ctx, group_name):
            log.info("update_user_group %s: name %s is taken", group.id, group_name)
            raise failed
        group.name = group_name
    if owner is not None:
        group.owner = find_user(ctx.session, owner)
    if description is not None:
        group.description = description
    if active is not None:
        group.active = active
    with flushed_or(ctx.session, failed, why=f"update_user_group {group.id}: lost a race for "
                                             f"the name {group_name}"):
        pass
    return {"msg": f"updated user group ID:{group.id} {group.name}",
            "user_group": _answer(ctx, group)}


def _assignments(ctx: CallContext, group: UserGroup) -> list[str]:
    """What the group holds permissions on, by name: its repositories when it has some (what
    Kallithea names and refuses for), else its repository groups and user groups (we refuse
    for those too: docs/compatibility.md)."""
    labels = {REPO: "", REPO_GROUP: "repo group ", USER_GROUP: "user group "}
    held = held_by_group(ctx.session, group.id, MAX_NAMED + 1)
    if any(kind is REPO for kind, _name in held):
        held = [(kind, name) for kind, name in held if kind is REPO]
    return [labels[kind] + name for kind, name in held]


@registry.method("delete_user_group",
                 schema=schemas.obj(required=("usergroupid",), usergroupid=USERGROUPID),
                 permission=OnUserGroup("usergroupid", Level.ADMIN), writes=True)
def delete_user_group(ctx: CallContext, usergroupid: Any) -> dict[str, Any]:
    """Delete a user group that holds no permissions; its memberships go with it."""
    session = ctx.session
    group = ctx.object_of("usergroupid", UserGroup)
    # Lock the row first (PostgreSQL): a grant to this group racing with us then either
    # commits before our check sees it, or fails on its foreign key after we delete.
    session.execute(select(UserGroup.id).where(UserGroup.id == group.id).with_for_update())
    assigned = _assignments(ctx, group)
    if assigned:
        shown = assigned[:MAX_NAMED]
        text = "User Group assigned to " + ", ".join(shown)
        if len(assigned) > MAX_NAMED:
            text += f" and {count_held_by_group(ctx.session, group.id) - MAX_NAMED} more"
        log.info("delete_user_group %s: still holds permissions", group.id)
        raise ApiError(text)
    msg = f"deleted user group ID:{group.id} {group.name}"
    session.delete(group)
    return {"msg": msg, "user_group": None}


_MEMBERSHIP = schemas.obj(required=("usergroupid", "userid"), usergroupid=USERGROUPID,
                          userid=schemas.id_or_name())


@registry.method("add_user_to_user_group", schema=_MEMBERSHIP,
                 permission=OnUserGroup("usergroupid", Level.ADMIN), writes=True)
def add_user_to_user_group(ctx: CallContext, usergroupid: Any, userid: Any) -> dict[str, Any]:
    """Add a user to a user group; ``success`` is false when it already was a member."""
    group = ctx.object_of("usergroupid", UserGroup)
    user = find_user(ctx.session, userid)
    already = {"success": False, "msg": "User is already in that group"}
    is_member = exists().where(UserGroupMember.group_id == group.id,
                               UserGroupMember.user_id == user.id)
    if ctx.session.scalar(select(is_member)):
        return already
    try:
        with ctx.session.begin_nested():
            ctx.session.add(UserGroupMember(group_id=group.id, user_id=user.id))
            ctx.session.flush()
    except IntegrityError:
        # A concurrent call added the same member first.
        return already
    return {"success": True,
            "msg": f"added member `{user.username}` to user group `{group.name}`"}


@registry.method("remove_user_from_user_group", schema=_MEMBERSHIP,
                 permission=OnUserGroup("usergroupid", Level.ADMIN), writes=True)
def remove_user_from_user_group(ctx: CallContext, usergroupid: Any,
                                userid: Any) -> dict[str, Any]:
    """Remove a user from a user group; ``success`` is false when it was not a member."""
    group = ctx.object_of("usergroupid", UserGroup)
    user = find_user(ctx.session, userid)
    removed = ctx.session.execute(
        delete(UserGroupMember).where(UserGroupMember.group_id == group.id,
                                      UserGroupMember.user_id == user.id))
    if not removed.rowcount:  # type: ignore[attr-defined]
        return {"success": False, "msg": "User wasn't in group"}
    return {"success": True,
            "msg": f"removed member `{user.username}` from user group `{group.name}`"}
