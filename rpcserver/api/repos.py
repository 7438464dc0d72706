"""Repositories: get_repo(s), update_repo, delete_repo (create_repo and fork_repo:
``repo_create``).

Every repository is a directory under ``repos_root`` at its full name, kept by the backend of
its ``repo_type`` (``vcs.backend``; git: a bare repository). Renames, moves and deletes are
directory renames inside the transaction, undone if it rolls back (``repositories``).
"""

from __future__ import annotations

import logging
from functools import cache
from typing import Any

from sqlalchemy import Integer, bindparam, select

from rpcserver.core import schemas
from rpcserver.core.errors import AccessDenied, ApiError, InvalidArg, NotFound
from rpcserver.core.registry import Registry
from rpcserver.db.models import Level, RepoFollower, Repository, User
from rpcserver.db.savepoint import flushed_or
from rpcserver.domain import clone_uri_at_rest, paging, rows, serialize
from rpcserver.domain.access import USER_PARAM, level_on, readable, resolve
from rpcserver.domain.context import CallContext, ReadContext
from rpcserver.domain.grants import (
    DEFAULT_USER_ID,
    REPO,
    REPO_GROUP,
    set_grant,
)
from rpcserver.domain.lookup import REPO_GROUP as REPO_GROUP_LABEL
from rpcserver.domain.lookup import user_or_none
from rpcserver.domain.permissions import ANYONE, OnRepo
from rpcserver.domain.renames import rename
from rpcserver.domain.repositories import (
    OWNER_ONLY_FOR_ADMIN,
    check_name,
    checked_source,
    destination_group,
    disk_changes,
    hold_locks,
    lock_group_row,
    members,
    reader,
    store_for,
)
from rpcserver.vcs.store import parent_of

log = logging.getLogger(__name__)
registry = Registry()

#: get_repo's ``with_revision_names`` lists at most this many branches and tags together.
MAX_REVISION_NAMES = 10_000

REPOID = schemas.id_or_name()
REPO_NAME = schemas.string(min_length=1)
DESCRIPTION = schemas.text()
OWNER = schemas.nullable(schemas.id_or_name())
CLONE_URI = schemas.nullable(schemas.string(2048))
#: ``<kind>:<revision>``, e.g. ``rev:tip`` or ``branch:main`` (answered as a list).
LANDING_REV = schemas.string(min_length=3,
                             pattern=r"^(?:rev|branch|tag|book):[^\x00-\x20\x7f]+(?![\s\S])")


def _serialize_one(ctx: CallContext, repo: Repository) -> dict[str, Any]:
    """A write's answer: the repository's row read back, as a read would answer it."""
    return serialize.repository(rows.by_id(ctx.conn, REPO, repo.id))


@registry.method("get_repo",
                 schema=schemas.obj(required=("repoid",), repoid=REPOID,
                                    with_revision_names=schemas.boolean(),
                                    with_pullrequests=schemas.boolean()),
                 permission=OnRepo("repoid", Level.READ), repository_arg="repoid")
def get_repo(ctx: ReadContext, repoid: Any, with_revision_names: bool = False,
             with_pullrequests: bool = False) -> dict[str, Any]:
    """A repository with its members and followers; ``with_revision_names`` adds its
    branches, tags and bookmarks (read from disk; a repository with more than 10,000 branches
    and tags together is refused), ``with_pullrequests`` its pull requests."""
    repo = ctx.resolved["repoid"]  # the permission check read its row
    data = serialize.repository(repo)
    if with_revision_names:
        refs = reader(ctx.config, repo).refs(at_most=MAX_REVISION_NAMES + 1)
        if len(refs.raw) > MAX_REVISION_NAMES:
            raise ApiError(f"repository `{repo.name}` has more than {MAX_REVISION_NAMES:,} "
                           "branches and tags: too many to list")
        # Kallithea's order (git and hg): branches by name, tags and bookmarks backwards
        data.update(tags=_backwards(refs.tags), branches=refs.branches,
                    bookmarks=_backwards(refs.bookmarks))
    if with_pullrequests:
        data["pull_requests"] = []  # this server has no pull requests (yet)
    data["members"] = members(ctx.conn, REPO, repo.id)
    followers = ctx.conn.execute(_FOLLOWERS, {"repo_id": repo.id})
    data["followers"] = serialize.users_from_rows(followers.all())
    return data


def _backwards(names: dict[str, str]) -> dict[str, str]:
    return dict(sorted(names.items(), reverse=True))


_FOLLOWERS = (select(*rows.USER_COLUMNS)
              .join(RepoFollower, RepoFollower.user_id == User.id)
              .where(RepoFollower.repo_id == bindparam("repo_id", type_=Integer))
              .order_by(RepoFollower.id))


@registry.method("get_repos",
                 schema=schemas.obj(limit=paging.LIMIT, offset=paging.OFFSET, n=paging.N,
                                    last=paging.LAST),
                 permission=ANYONE)
def get_repos(ctx: ReadContext, limit: int | None = None,
              offset: int | None = None, n: int | None = None,
              last: str | None = None) -> list[dict[str, Any]]:
    """The repositories the caller can read (an admin: all): an admin's by id, anyone
    else's by full name (Kallithea's orders); with ``n`` and ``last``, the ``n`` next after
    ``last`` by full name. Without ``n``, more than ``max_list_items`` (10,000) are refused:
    page. The older ``limit`` and ``offset``: by id, at most ``limit`` from ``offset``.
    Never runs git: ``last_changeset`` is cached."""
    found = paging.rows(ctx.conn, _repositories_pages(ctx.caller.admin), "get_repos",
                        ctx.config.max_list_items, {USER_PARAM: ctx.caller.id},
                        n=n, last=last, limit=limit, offset=offset)
    return serialize.repositories_from_rows(found)


@cache
def _repositories_pages(admin: bool) -> paging.Pages:
    # Kallithea 0.7 lists an admin's repositories with no ORDER BY (the table's order, by
    # id) and anyone else's as ``repo_name IN (<the readable names>)``, which SQLite answers
    # through the name's unique index: by name. Scripts see these orders (tests/differential).
    return paging.Pages.of(readable(rows.select_of(REPO), REPO, admin), key=Repository.name,
                           whole_order=Repository.id if admin else Repository.name,
                           ident=Repository.id)


# -- update and delete --------------------------------------------------------------------

#: ``group`` of update_repo: a group's id or full path; ``""`` moves to the top level.
GROUP_OR_TOP = {"anyOf": [{"type": "integer", "minimum": 0, "maximum": schemas.MAX_ID},
                          {"type": "string", "minLength": 0, "maxLength": schemas.NAME_MAX}]}


def _new_name(ctx: CallContext, repo: Repository, name: str | None, group: Any) -> str:
    """The full name update_repo's ``name`` and ``group`` ask for."""
    current_parent = parent_of(repo.name)
    base = repo.name.rpartition("/")[2]
    if name is not None and "/" in name:
        if group is not None:
            raise InvalidArg("name", "must be a single name (no `/`) when `group` is given")
        check_name("name", name)
        return name
    if name is not None:
        check_name("name", name)
        base = name
    if group is None:
        return f"{current_parent}/{base}" if current_parent else base
    if group == "":
        return base
    found = resolve(ctx.conn, ctx.caller, REPO_GROUP, group)
    if found is None or found[1] < Level.READ:
        raise NotFound(REPO_GROUP_LABEL, group)
    return f"{found[0].name}/{base}"


@registry.method("update_repo",
                 schema=schemas.obj(required=("repoid",), repoid=REPOID, name=REPO_NAME,
                                    owner=OWNER, group=GROUP_OR_TOP, description=DESCRIPTION,
                                    private=schemas.boolean(), clone_uri=CLONE_URI,
                                    landing_rev=LANDING_REV,
                                    enable_statistics=schemas.boolean(),
                                    enable_downloads=schemas.boolean()),
                 permission=OnRepo("repoid", Level.ADMIN), writes=True,
                 repository_arg="repoid")
def update_repo(ctx: CallContext, repoid: Any, name: str | None = None, owner: Any = None,
                group: Any = None, description: str | None = None,
                private: bool | None = None, clone_uri: str | None = None,
                landing_rev: str | None = None, enable_statistics: bool | None = None,
                enable_downloads: bool | None = None) -> dict[str, Any]:
    """Change the given fields. ``name`` renames (a full path moves too), ``group`` moves
    into another group (``""``: to the top level) — the directory moves with it; ``clone_uri``
    ``""`` clears it. Only an admin may change ``owner``."""
    session = ctx.session
    repo = ctx.object_of("repoid", Repository)
    failed = ApiError(f"failed to update repo `{repoid}`")
    if owner is not None and not ctx.caller.admin:
        raise ApiError(OWNER_ONLY_FOR_ADMIN)
    new_name = _new_name(ctx, repo, name, group)
    if new_name != repo.name:
        check_name("name" if name is not None else "group", new_name)
        found = destination_group(ctx, new_name)  # before the name, as create_repo
        destination = lock_group_row(ctx, found.id if found is not None else None)
        rename(ctx, repo, new_name, destination, failed=failed,
               arg="name" if name is not None else "group")
    if owner is not None:
        new_owner = user_or_none(session, owner)
        if new_owner is None:
            log.info("update_repo %s: no user %r to own it", repo.id, str(owner)[:100])
            raise failed
        repo.owner = new_owner
    if clone_uri is not None:
        if clone_uri:
            checked_source(ctx.config, clone_uri, admin=ctx.caller.admin,
                           repo_type=repo.repo_type)
        try:
            clone_uri_at_rest.store(ctx.config, repo, clone_uri)
        except clone_uri_at_rest.Unavailable as exc:
            log.error("update_repo %s: cannot encrypt its clone_uri: %s", repo.id, exc)
            raise failed from None
    if private and not repo.private:
        # As Kallithea: making a repository private takes the default grant away (it stays
        # away when it is made public again).
        set_grant(session, session.get_one(User, DEFAULT_USER_ID), repo, Level.NONE)
    for field, value in (("description", description), ("private", private),
                         ("landing_rev", landing_rev), ("enable_statistics", enable_statistics),
                         ("enable_downloads", enable_downloads)):
        if value is not None:
            setattr(repo, field, value)
    with flushed_or(session, failed,
                    why=f"update_repo {repo.id}: lost a race for the name {new_name}"):
        pass
    return {"msg": f"updated repo ID:{repo.id} {repo.name}",
            "repository": _serialize_one(ctx, repo)}


def _forks(ctx: CallContext, repo: Repository) -> list[Repository]:
    return list(ctx.session.scalars(
        select(Repository).where(Repository.fork_of_id == repo.id).order_by(Repository.id)))


@registry.method("delete_repo",
                 schema=schemas.obj(required=("repoid",), repoid=REPOID,
                                    forks=schemas.one_of_values("", "detach", "delete")),
                 permission=OnRepo("repoid", Level.ADMIN), writes=True,
                 repository_arg="repoid")
def delete_repo(ctx: CallContext, repoid: Any, forks: str = "") -> dict[str, Any]:
    """Delete a repository and its directory. A repository with forks needs ``forks``:
    ``detach`` keeps them as independent repositories, ``delete`` deletes them too (and their
    forks; a non-admin needs admin on each)."""
    session = ctx.session
    repo = ctx.object_of("repoid", Repository)
    direct = _forks(ctx, repo)
    if direct and not forks:
        raise ApiError(f"Cannot delete `{repo.name}` it still contains attached forks")
    doomed = [repo]
    if forks == "delete":
        queue = list(direct)
        while queue:
            fork = queue.pop(0)
            if (not ctx.caller.admin
                    and level_on(ctx.conn, ctx.caller, REPO, fork) < Level.ADMIN):
                raise AccessDenied()
            doomed.append(fork)
            queue.extend(_forks(ctx, fork))
    elif forks == "detach":
        for fork in direct:
            fork.fork_of = None
    failed = ApiError(f"failed to delete repository `{repo.name}`")
    store = store_for(ctx.config)
    changes = disk_changes(ctx)
    hold_locks(ctx, changes, [r.id for r in doomed], failed)
    name = repo.name
    for victim in reversed(doomed):  # forks before what they were forked from
        path = store.path(victim.name)
        if path.exists():
            changes.discard(path)
        else:
            log.warning("delete_repo: %s had no directory at %s", victim.name, path)
        session.delete(victim)
        session.flush()
    msg = f"Deleted repository `{name}`"
    if forks == "detach":
        msg += f" Detached {len(direct)} forks"
    elif forks == "delete":
        msg += f" Deleted {len(direct)} forks"
    log.info("%s (by user id %s)", msg, ctx.caller.id)
    return {"msg": msg, "success": True}
