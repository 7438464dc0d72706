"""Repository groups: get_repo_group(s), create_repo_group, update_repo_group,
delete_repo_group (admin only, API.md §5).

A group is a directory under ``repos_root`` named by its full path. Renaming or moving a group
renames one directory and rewrites the full name of every group and repository inside, in one
transaction; the rename is undone if the transaction rolls back. A group is deleted only when
empty (API.md §7).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Row, bindparam, exists, select

from rpcserver.core import schemas
from rpcserver.core.errors import ApiError, InvalidArg, NotFound
from rpcserver.core.registry import Registry
from rpcserver.db.models import RepoGroup, Repository
from rpcserver.domain import paging, rows, serialize
from rpcserver.domain.access import readable, resolve
from rpcserver.domain.context import CallContext, Context, ReadContext
from rpcserver.domain.grants import REPO_GROUP
from rpcserver.domain.lookup import REPO_GROUP as REPO_GROUP_LABEL
from rpcserver.domain.lookup import get_repo_group
from rpcserver.domain.lookup import get_user as find_user
from rpcserver.domain.permissions import ADMIN
from rpcserver.domain.renames import rename
from rpcserver.domain.repositories import (
    GROUP_NAMED,
    add_repo_group,
    check_name,
    disk_changes,
    members,
    name_taken,
    repository_type_at,
    store_for,
)
from rpcserver.vcs.store import UnsafePath

log = logging.getLogger(__name__)
registry = Registry()


REPOGROUPID = schemas.id_or_name()
GROUP_NAME = schemas.string(min_length=1)
OWNER = schemas.nullable(schemas.id_or_name())
#: ``parent`` of update_repo_group: a group's id or full path; ``""`` moves to the top level.
PARENT_OR_TOP = schemas.nullable({"anyOf": [
    {"type": "integer", "minimum": 0, "maximum": schemas.MAX_ID},
    {"type": "string", "minLength": 0, "maxLength": schemas.NAME_MAX}]})


def _serialize(ctx: Context, groups: Sequence[Row[Any]]) -> list[dict[str, Any]]:
    """Groups from their rows (``rows.select_of(REPO_GROUP)``) with the names of the
    repositories directly inside; one query for all."""
    inside: dict[int, list[str]] = {g.id: [] for g in groups}
    if groups:
        found = ctx.conn.execute(_INSIDE, {"group_ids": list(inside)})
        for group_id, name in found:
            inside[cast(int, group_id)].append(name)  # not None: the WHERE named it
    return [serialize.repo_group(g, inside[g.id]) for g in groups]


_INSIDE = (select(Repository.group_id, Repository.name)
           .where(Repository.group_id.in_(bindparam("group_ids", expanding=True)))
           .order_by(Repository.name))


def _answer(ctx: CallContext, group: RepoGroup) -> dict[str, Any]:
    """A write's answer: the group's row read back, as a read would answer it."""
    return _serialize(ctx, [rows.by_id(ctx.conn, REPO_GROUP, group.id)])[0]


def _load(ctx: CallContext, repogroupid: Any, *, lock: bool = False) -> RepoGroup:
    group = get_repo_group(ctx.session, repogroupid)
    if lock:
        # PostgreSQL: a create_repo finishing in this group waits for us, or we for it.
        ctx.session.execute(select(RepoGroup.id).where(RepoGroup.id == group.id)
                            .with_for_update())
    return group


@registry.method("get_repo_group",
                 schema=schemas.obj(required=("repogroupid",), repogroupid=REPOGROUPID),
                 permission=ADMIN)
def get_repo_group_method(ctx: ReadContext, repogroupid: Any) -> dict[str, Any]:
    """A repository group, the repositories directly inside and its members."""
    found = resolve(ctx.conn, ctx.caller, REPO_GROUP, repogroupid)  # an admin's: any group
    if found is None:
        raise NotFound(REPO_GROUP_LABEL, repogroupid)
    group = found[0]
    data = _serialize(ctx, [group])[0]
    data["members"] = members(ctx.conn, REPO_GROUP, group.id)
    return data


@registry.method("get_repo_groups",
                 schema=schemas.obj(limit=paging.LIMIT, offset=paging.OFFSET, n=paging.N,
                                    last=paging.LAST),
                 permission=ADMIN)
def get_repo_groups(ctx: ReadContext, limit: int | None = None,
                    offset: int | None = None, n: int | None = None,
                    last: str | None = None) -> list[dict[str, Any]]:
    """Every repository group, by id (Kallithea's order); with ``n`` and ``last``, the ``n``
    next after ``last`` by full path. Without ``n``, more than ``max_list_items`` (10,000)
    are refused: page. The older ``limit`` and ``offset``: by id, at most ``limit`` from
    ``offset``."""
    groups = paging.rows(ctx.conn, _GROUPS, "get_repo_groups", ctx.config.max_list_items, {},
                         n=n, last=last, limit=limit, offset=offset)
    return _serialize(ctx, groups)


# Admin only: every group, no permission filter.
_GROUPS = paging.Pages.of(readable(rows.select_of(REPO_GROUP), REPO_GROUP, admin=True),
                          key=RepoGroup.name, whole_order=RepoGroup.id, ident=RepoGroup.id)


def _parent_named(ctx: CallContext, path: str | None) -> RepoGroup | None:
    if not path:
        return None
    found = ctx.session.scalars(
        select(RepoGroup).where(RepoGroup.name == path).with_for_update()).first()
    if found is None:
        raise NotFound(REPO_GROUP_LABEL, path)
    return found


@registry.method("create_repo_group",
                 schema=schemas.obj(required=("group_name",), group_name=GROUP_NAME,
                                    description=schemas.text(), owner=OWNER,
                                    parent=schemas.nullable(REPOGROUPID),
                                    copy_permissions=schemas.boolean()),
                 permission=ADMIN, writes=True)
def create_repo_group(ctx: CallContext, group_name: str, description: str = "",
                      owner: Any = None, parent: Any = None,
                      copy_permissions: bool = False) -> dict[str, Any]:
    """Create a repository group (a directory) called ``group_name`` (one name, no ``/``),
    at the top level or inside ``parent``. ``copy_permissions`` copies the parent's grants;
    otherwise ``default`` gets ``group.read``."""
    check_name("group_name", group_name)
    if "/" in group_name:
        # As Kallithea: a nested group is made with ``parent``, not with a path.
        log.info("create_repo_group: %r is a path; nested groups are made with parent",
                 group_name[:200])
        raise ApiError(f"failed to create repo group `{group_name}`")
    full = f"{_load(ctx, parent).name}/{group_name}" if parent is not None else group_name
    check_name("group_name", full)
    parent_group = _parent_named(ctx, full.rpartition("/")[0])
    failed = ApiError(f"failed to create repo group `{full}`")
    taken = name_taken(ctx, full)
    if taken == GROUP_NAMED:
        raise ApiError(f"repo group `{full}` already exist")
    if taken is not None:
        log.info("create_repo_group: a repository is called %s", full)
        raise failed
    owner_user = ctx.user if owner is None else find_user(ctx.session, owner)
    group = add_repo_group(ctx, name=full, parent=parent_group, owner=owner_user,
                           description=description, copy_permissions=copy_permissions)
    try:
        path = store_for(ctx.config).path(full)
    except UnsafePath as exc:
        log.warning("create_repo_group: %s", exc)
        raise failed from None
    if (repository_type_at(ctx.config, path) is not None
            or (path.exists() and not path.is_dir())):
        log.warning("create_repo_group: %s is a repository or file on disk", path)
        raise failed
    if not path.exists():
        changes = disk_changes(ctx)
        try:
            path.mkdir(parents=True)
        except OSError as exc:
            log.warning("create_repo_group %s: %s", full, exc)
            raise failed from None
        changes.created(path)
    log.info("repository group %s (id %s) created by user id %s", full, group.id,
             ctx.caller.id)
    return {"msg": f"created new repo group `{group_name}`", "repo_group": _answer(ctx, group)}


def _new_path(ctx: CallContext, group: RepoGroup, group_name: str | None,
              parent: Any) -> tuple[str, RepoGroup | None]:
    """The full path and parent update_repo_group's ``group_name`` and ``parent`` ask for."""
    base = group.name.rpartition("/")[2]
    if group_name is not None and "/" in group_name:
        if parent is not None:
            raise InvalidArg("group_name", "must be a single name (no `/`) when `parent` is "
                             "given")
        check_name("group_name", group_name)
        return group_name, _parent_named(ctx, group_name.rpartition("/")[0])
    if group_name is not None:
        check_name("group_name", group_name)
        base = group_name
    if parent is None:
        new_parent = group.parent
    elif parent == "":
        new_parent = None
    else:
        new_parent = _load(ctx, parent, lock=True)
    return (f"{new_parent.name}/{base}" if new_parent else base), new_parent


@registry.method("update_repo_group",
                 schema=schemas.obj(required=("repogroupid",), repogroupid=REPOGROUPID,
                                    group_name=GROUP_NAME, description=schemas.text(),
                                    owner=OWNER, parent=PARENT_OR_TOP),
                 permission=ADMIN, writes=True)
def update_repo_group(ctx: CallContext, repogroupid: Any, group_name: str | None = None,
                      description: str | None = None, owner: Any = None,
                      parent: Any = None) -> dict[str, Any]:
    """Change the given fields. ``group_name`` renames (a full path moves too), ``parent``
    moves (``""``: to the top level); the directory moves, and every group and repository
    inside is renamed with it."""
    session = ctx.session
    group = _load(ctx, repogroupid, lock=True)
    failed = ApiError(f"failed to update repository group `{repogroupid}`")
    new_name, new_parent = _new_path(ctx, group, group_name, parent)
    if new_name != group.name:
        check_name("group_name", new_name)
        if new_name.startswith(group.name + "/"):
            log.info("update_repo_group %s: cannot move into itself (%s)", group.id, new_name)
            raise failed
        rename(ctx, group, new_name, new_parent, failed=failed,
               arg="group_name" if group_name is not None else "parent")
    if owner is not None:
        group.owner = find_user(session, owner)
    if description is not None:
        group.description = description
    session.flush()
    return {"msg": f"updated repository group ID:{group.id} {group.name}",
            "repo_group": _answer(ctx, group)}


@registry.method("delete_repo_group",
                 schema=schemas.obj(required=("repogroupid",), repogroupid=REPOGROUPID),
                 permission=ADMIN, writes=True)
def delete_repo_group(ctx: CallContext, repogroupid: Any) -> dict[str, Any]:
    """Delete an empty repository group and its directory; a group that still holds
    repositories or groups is refused."""
    session = ctx.session
    group = _load(ctx, repogroupid, lock=True)
    not_empty = ApiError(f"repository group `{group.name}` is not empty")
    holds = (session.scalar(select(exists().where(Repository.group_id == group.id)))
             or session.scalar(select(exists().where(RepoGroup.parent_id == group.id))))
    if holds:
        raise not_empty
    path = store_for(ctx.config).path(group.name)
    if path.is_dir():
        if any(path.iterdir()):
            log.info("delete_repo_group %s: %s holds files the database does not know",
                     group.id, path)
            raise not_empty
        disk_changes(ctx).discard(path)
    msg = f"deleted repo group ID:{group.id} {group.name}"
    session.delete(group)
    session.flush()
    return {"msg": msg, "repo_group": None}
