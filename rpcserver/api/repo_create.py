"""create_repo and fork_repo: a new repository built with no transaction open, then put in
place.

Creating and forking build the new repository in ``.rpcserver/tmp`` with no transaction open
(cloning can take long; see ``context.Deferred``), then insert the row and rename the
directory into place in one short write transaction — a rollback removes it again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from typing import Any

from rpcserver.api.repos import CLONE_URI, DESCRIPTION, LANDING_REV, OWNER, REPO_NAME, REPOID
from rpcserver.core import schemas
from rpcserver.core.errors import ApiError
from rpcserver.core.registry import Registry
from rpcserver.db.models import Level, RepoGroup, Repository, User
from rpcserver.domain import rows
from rpcserver.domain.context import CallContext, Deferred, ReadContext
from rpcserver.domain.grants import FORK_REPOSITORY
from rpcserver.domain.permissions import ANYONE, AllOf, HasGlobal, OnRepo
from rpcserver.domain.repo_work import Built, CreateRepo, ForkRepo
from rpcserver.domain.repositories import (
    FORK_NAMED,
    OWNER_ONLY_FOR_ADMIN,
    add_repository,
    check_name,
    checked_source,
    destination_group,
    disk_changes,
    lock_group_row,
    name_taken,
    store_for,
)
from rpcserver.vcs.backend import BACKENDS, DEFAULT_REPO_TYPE
from rpcserver.vcs.store import parent_of

log = logging.getLogger(__name__)
registry = Registry()


@dataclass(frozen=True)
class _NewRepo:
    """What phase one decided, carried into the write transaction by ids and values."""

    name: str
    repo_type: str
    group_id: int | None
    owner_id: int
    private: bool
    description: str
    clone_uri: str | None
    landing_rev: str
    enable_statistics: bool
    enable_downloads: bool
    copy_permissions: bool
    fork_of_id: int | None = None
    failed_text: str = ""


def _put_in_place(ctx: CallContext, new: _NewRepo, built: Built,
                  copy_from: Repository | None = None) -> Repository:
    """Phase two: the row and the directory, in the write transaction."""
    session = ctx.session
    owner = session.get(User, new.owner_id)
    group = lock_group_row(ctx, new.group_id)
    parent = parent_of(new.name)
    if new.group_id is not None and group is None:
        raise ApiError(f"repo group `{parent}` not found")
    base = new.name.rpartition("/")[2]
    # The group may have been renamed since phase one: the repository follows it.
    name = f"{group.name}/{base}" if group is not None else new.name
    if owner is None:
        log.info("creating %s: the owner was deleted meanwhile", name)
        raise ApiError(new.failed_text)
    if name_taken(ctx, name) is not None:
        raise ApiError(f"repo `{name}` already exist")
    fork_of = session.get(Repository, new.fork_of_id) if new.fork_of_id is not None else None
    if new.fork_of_id is not None and fork_of is None:
        log.info("forking into %s: the source was deleted meanwhile", name)
        raise ApiError(new.failed_text)
    source_of_grants: Repository | RepoGroup | None = None
    if new.copy_permissions:
        source_of_grants = fork_of if fork_of is not None else group
    repo = add_repository(
        ctx, name=name, group=group, owner=owner, private=new.private,
        description=new.description, clone_uri_value=new.clone_uri,
        landing_rev=new.landing_rev, enable_statistics=new.enable_statistics,
        enable_downloads=new.enable_downloads, cache=built.cache, repo_type=new.repo_type,
        fork_of=fork_of, copy_from=source_of_grants)
    changes = disk_changes(ctx)
    try:
        changes.move(built.path, store_for(ctx.config).path(name))
    except OSError as exc:
        log.warning("creating %s: cannot move it into place: %s", name, exc)
        raise ApiError(new.failed_text) from None
    log.info("repository %s (id %s) created by user id %s", name, repo.id, ctx.caller.id)
    return repo


def _finish_create(new: _NewRepo, ctx: CallContext, built: Built) -> dict[str, Any]:
    repo = _put_in_place(ctx, new, built)
    return {"msg": f"Created new repository `{repo.name}`", "success": True}


def _owner_id(ctx: ReadContext, owner: Any) -> int:
    if owner is not None and not ctx.caller.admin:
        raise ApiError(OWNER_ONLY_FOR_ADMIN)
    return ctx.caller.id if owner is None else rows.get_user(ctx.conn, owner).id


@registry.method("create_repo",
                 schema=schemas.obj(required=("repo_name",), repo_name=REPO_NAME, owner=OWNER,
                                    repo_type=schemas.one_of_values(*BACKENDS),
                                    description=DESCRIPTION, private=schemas.boolean(),
                                    clone_uri=CLONE_URI, landing_rev=LANDING_REV,
                                    enable_statistics=schemas.boolean(),
                                    enable_downloads=schemas.boolean(),
                                    copy_permissions=schemas.boolean()),
                 permission=ANYONE, changes=True)
def create_repo(ctx: ReadContext, repo_name: str, owner: Any = None,
                repo_type: str = DEFAULT_REPO_TYPE,
                description: str = "", private: bool = False, clone_uri: str | None = None,
                landing_rev: str = "rev:tip", enable_statistics: bool = False,
                enable_downloads: bool = False,
                copy_permissions: bool = False) -> Deferred:
    """Create a bare git repository at ``repo_name`` (parent groups must exist); with
    ``clone_uri``, by cloning that remote. Admins, users with ``hg.create.repository`` at the
    top level, users with write on the group inside a group; only an admin names ``owner``."""
    check_name("repo_name", repo_name)
    if owner is not None and not ctx.caller.admin:
        raise ApiError(OWNER_ONLY_FOR_ADMIN)
    # The right to the destination before its name: otherwise a caller who may not create
    # in `grp` could tell a hidden `grp/x` (already exist) from a free one (no permission).
    group = destination_group(ctx, repo_name)
    if name_taken(ctx, repo_name) is not None:
        raise ApiError(f"repo `{repo_name}` already exist")
    owner_id = _owner_id(ctx, owner)
    source = (checked_source(ctx.config, clone_uri, admin=ctx.caller.admin,
                             repo_type=repo_type) if clone_uri
              else None)
    new = _NewRepo(name=repo_name, repo_type=repo_type, group_id=group.id if group else None,
                   owner_id=owner_id, private=private, description=description,
                   clone_uri=clone_uri or None, landing_rev=landing_rev,
                   enable_statistics=enable_statistics, enable_downloads=enable_downloads,
                   copy_permissions=copy_permissions,
                   failed_text=f"failed to create repository `{repo_name}`")
    work = CreateRepo(name=repo_name, repo_type=repo_type, failed_text=new.failed_text,
                      source=source, fetcher=(ctx.caller.id, ctx.caller.username))
    return Deferred(work=work, finish=partial(_finish_create, new))


def _finish_fork(new: _NewRepo, source_name: str, ctx: CallContext,
                 built: Built) -> dict[str, Any]:
    repo = _put_in_place(ctx, new, built)
    return {"msg": f"Created fork of `{source_name}` as `{repo.name}`", "success": True}


@registry.method("fork_repo",
                 schema=schemas.obj(required=("repoid", "fork_name"), repoid=REPOID,
                                    fork_name=REPO_NAME, owner=OWNER, description=DESCRIPTION,
                                    copy_permissions=schemas.boolean(),
                                    private=schemas.boolean(), landing_rev=LANDING_REV),
                 permission=AllOf(OnRepo("repoid", Level.READ), HasGlobal(FORK_REPOSITORY)),
                 changes=True, repository_arg="repoid")
def fork_repo(ctx: ReadContext, repoid: Any, fork_name: str, owner: Any = None,
              description: str = "", copy_permissions: bool = False, private: bool = False,
              landing_rev: str = "rev:tip") -> Deferred:
    """Fork a repository: a real clone at ``fork_name`` whose ``fork_of`` is the source;
    ``copy_permissions`` copies the source's grants."""
    source = ctx.resolved["repoid"]
    check_name("fork_name", fork_name)
    owner_id = _owner_id(ctx, owner)
    group = destination_group(ctx, fork_name, top_level_permission=None)  # before the name
    existing = name_taken(ctx, fork_name)
    if existing is not None:
        kind = "fork" if existing == FORK_NAMED else "repo"
        raise ApiError(f"{kind} `{fork_name}` already exist")
    new = _NewRepo(name=fork_name, repo_type=source.repo_type,
                   group_id=group.id if group else None,
                   owner_id=owner_id, private=private, description=description,
                   clone_uri=None, landing_rev=landing_rev, enable_statistics=False,
                   enable_downloads=False, copy_permissions=copy_permissions,
                   fork_of_id=source.id,
                   failed_text=f"failed to fork repository `{source.name}` as `{fork_name}`")
    work = ForkRepo(name=fork_name, repo_type=new.repo_type, parent_name=source.name,
                    failed_text=new.failed_text)
    return Deferred(work=work, finish=partial(_finish_fork, new, source.name))
