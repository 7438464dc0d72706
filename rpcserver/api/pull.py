"""Keeping repositories in step with disk and remotes: pull (also RhodeCode 1.2's),
rescan_repos, invalidate_cache.

A pull runs in three steps (``dispatch.Deferred``): the call's own read transaction checks the
caller, the repository and the clone_uri (host names are resolved now, on every pull); then,
with no transaction open, it takes the repository's lock (one pull of a repository at a time,
across worker processes; other repositories are not blocked) and fetches atomically
(``repo_work.PullRepo``, through the repository's backend); then a short write transaction
stores the new ``last_changeset``. If that transaction fails, the fetch is undone, so disk and
database never disagree.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from sqlalchemy import Row, select

from rpcserver.core import schemas
from rpcserver.core.errors import ApiError, NotFound
from rpcserver.core.registry import PUSH, RHODECODE, Registry
from rpcserver.db.models import Level, RepoGroup, Repository
from rpcserver.domain import clone_uri_at_rest, rows
from rpcserver.domain.access import resolve
from rpcserver.domain.context import CallContext, Deferred, ReadContext
from rpcserver.domain.grants import REPO
from rpcserver.domain.lookup import IDENT, NAME, REPOSITORY
from rpcserver.domain.permissions import ADMIN, OnRepo
from rpcserver.domain.repo_work import (
    KnownRepo,
    Pulled,
    PullRepo,
    RefreshCache,
    RescanRepos,
    Scan,
    unable_to_pull,
)
from rpcserver.domain.repositories import (
    FORK_NAMED,
    REPO_NAMED,
    add_repo_group,
    add_repository,
    checked_source,
    name_taken,
    store_for,
    vcs_settings,
)
from rpcserver.vcs.backend import backend_for
from rpcserver.vcs.clone_uri import Source

log = logging.getLogger(__name__)
registry = Registry()

REPOID = schemas.id_or_name()


def _plan(ctx: ReadContext, repo: Row[Any], clone_uri: str | None) -> PullRepo:
    """The pull of ``repo`` (its row): its source checked now (host names resolved on every
    pull)."""
    store = store_for(ctx.config)
    try:
        uri = clone_uri or clone_uri_at_rest.for_git(
            ctx.config, repo.clone_uri, ctx.conn.scalar(_ENCRYPTED, {"ident": repo.id}))
    except clone_uri_at_rest.Unavailable as exc:
        log.error("pull %s: its stored clone_uri cannot be decrypted: %s", repo.name, exc)
        raise unable_to_pull(repo.name) from None
    if uri:
        source = checked_source(ctx.config, uri, admin=ctx.caller.admin,
                                repo_type=repo.repo_type)
    elif repo.fork_of_name is not None:
        # A fork without a clone_uri pulls from its parent: our own repository, on disk.
        parent = store.path(repo.fork_of_name)
        source = Source(url=str(parent), scheme="file", protocols=("file",))
    else:
        log.info("pull %s: no clone_uri, and not a fork", repo.name)
        raise unable_to_pull(repo.name)
    return PullRepo(repo_id=repo.id, name=repo.name, repo_type=repo.repo_type, source=source,
                    cache=repo.changeset_cache, fetcher=(ctx.caller.id, ctx.caller.username))


#: The encrypted clone_uri, read only by a pull (it is no column of the repository's row).
_ENCRYPTED = select(Repository.clone_uri_encrypted).where(Repository.id == IDENT)


_NAMED = rows.select_of(REPO).where(Repository.name == NAME)


def _store_pull(plan: PullRepo, ctx: CallContext, pulled: Pulled) -> Repository:
    repo = ctx.session.get(Repository, plan.repo_id)
    if repo is None or repo.name != plan.name:
        log.warning("pull of %s: the repository was renamed or deleted meanwhile", plan.name)
        raise unable_to_pull(plan.name)
    if pulled.cache is not None:
        repo.changeset_cache = pulled.cache
    ctx.on_commit(partial(setattr, pulled, "committed", True))
    return repo


def _finish(plan: PullRepo, ctx: CallContext, pulled: Pulled) -> dict[str, Any]:
    repo = _store_pull(plan, ctx, pulled)
    return {"msg": f"Pulled from `{repo.name}`", "repository": repo.name}


def _finish_rhodecode(plan: PullRepo, ctx: CallContext, pulled: Pulled) -> str:
    repo = _store_pull(plan, ctx, pulled)
    return f"Pulled from {repo.name}"


@registry.method("pull",
                 schema=schemas.obj(required=("repoid",), repoid=REPOID,
                                    clone_uri=schemas.nullable(schemas.string(2048))),
                 permission=ADMIN, changes=True, repository_arg="repoid",
                 repository_right=PUSH)
def pull(ctx: ReadContext, repoid: Any, clone_uri: str | None = None) -> Deferred:
    """Fetch every branch and tag from the repository's ``clone_uri`` (or from the
    ``clone_uri`` given, for this pull only; a fork without one pulls from its parent).
    Branches and tags the remote no longer has are removed; a failure changes nothing."""
    found = resolve(ctx.conn, ctx.caller, REPO, repoid)  # an admin's: any repository
    if found is None:
        raise NotFound(REPOSITORY, repoid)
    plan = _plan(ctx, found[0], clone_uri)
    return Deferred(work=plan, finish=partial(_finish, plan))


@registry.method("pull", dialect=RHODECODE,
                 schema=schemas.obj(required=("repo",), repo=schemas.string(min_length=1)),
                 permission=ADMIN, changes=True, repository_arg="repo", repository_right=PUSH)
def pull_rhodecode(ctx: ReadContext, repo: str) -> Deferred:
    """RhodeCode 1.2's pull: ``repo`` is the repository's name; answers a string."""
    found = ctx.conn.execute(_NAMED, {"name": repo}).first()
    if found is None:
        raise NotFound(REPOSITORY, repo)
    plan = _plan(ctx, found, None)
    return Deferred(work=plan, finish=partial(_finish_rhodecode, plan))


# -- invalidate_cache ---------------------------------------------------------------------


def _finish_invalidate(plan: RefreshCache, ctx: CallContext,
                       fresh: Pulled) -> dict[str, Any]:
    repo = ctx.session.get(Repository, plan.repo_id)
    if repo is None:
        raise ApiError("Error occurred during cache invalidation action")
    repo.changeset_cache = fresh.cache
    return {"msg": f"Cache for repository `{repo.name}` was invalidated",
            "repository": repo.name}


@registry.method("invalidate_cache",
                 schema=schemas.obj(required=("repoid",), repoid=REPOID),
                 permission=OnRepo("repoid", Level.WRITE), changes=True,
                 repository_arg="repoid", repository_right=PUSH)
def invalidate_cache(ctx: ReadContext, repoid: Any) -> Deferred:
    """Re-read what the server caches about a repository (its ``last_changeset``) from
    disk, e.g. after it was changed outside the server."""
    repo = ctx.resolved["repoid"]
    plan = RefreshCache(repo_id=repo.id, name=repo.name, repo_type=repo.repo_type)
    return Deferred(work=plan, finish=partial(_finish_invalidate, plan))


# -- rescan_repos -------------------------------------------------------------------------


def _group_for(ctx: CallContext, name: str) -> RepoGroup | None:
    """The group ``name`` (a repository's parent path) lives in, creating missing ones."""
    parent = name.rpartition("/")[0]
    if not parent:
        return None
    group = None
    path = ""
    for part in parent.split("/"):
        path = f"{path}/{part}" if path else part
        found = ctx.session.scalars(select(RepoGroup).where(RepoGroup.name == path)).first()
        if found is None:
            found = add_repo_group(ctx, name=path, parent=group, owner=ctx.user,
                                   description="", copy_permissions=False)
        group = found
    return group


def _finish_rescan(plan: RescanRepos, remove_obsolete: bool, ctx: CallContext,
                   scan: Scan) -> dict[str, Any]:
    added: list[str] = []
    removed: list[str] = []
    refreshed = _store_changed(plan, ctx, scan)
    settings = vcs_settings(ctx.config)
    store = settings.store
    for name, (repo_type, cache) in sorted(scan.new.items()):
        parts = name.split("/")
        clash = any(name_taken(ctx, "/".join(parts[:i])) in (REPO_NAMED, FORK_NAMED)
                    for i in range(1, len(parts)))
        if name_taken(ctx, name) is not None or clash:
            continue
        add_repository(ctx, name=name, group=_group_for(ctx, name), owner=ctx.user,
                       private=False, description="", clone_uri_value=None,
                       landing_rev="rev:tip", enable_statistics=False, enable_downloads=False,
                       cache=cache, repo_type=repo_type)
        added.append(name)
    if remove_obsolete:
        for repo in ctx.session.scalars(select(Repository).order_by(Repository.name)).all():
            if backend_for(repo.repo_type, settings).is_repository(store.path(repo.name)):
                continue
            for fork in ctx.session.scalars(
                    select(Repository).where(Repository.fork_of_id == repo.id)):
                fork.fork_of = None
            ctx.session.flush()
            ctx.session.delete(repo)
            ctx.session.flush()
            removed.append(repo.name)
    log.info("rescan by user id %s: added %s, removed %s, refreshed %s", ctx.caller.id, added,
             removed, refreshed)
    return {"added": added, "removed": removed}


def _store_changed(plan: RescanRepos, ctx: CallContext, scan: Scan) -> list[str]:
    """Store the ``last_changeset``s that changed on disk, unless the cache changed in the
    database meanwhile too (a pull or push stored a newer one)."""
    seen = {known.repo_id: known.cache for known in plan.existing}
    refreshed = []
    for repo_id, cache in sorted(scan.changed.items()):
        repo = ctx.session.get(Repository, repo_id)
        if repo is not None and repo.changeset_cache == seen.get(repo_id):
            repo.changeset_cache = cache
            refreshed.append(repo.name)
    return refreshed


@registry.method("rescan_repos",
                 schema=schemas.obj(remove_obsolete=schemas.boolean()),
                 permission=ADMIN, changes=True)
def rescan_repos(ctx: ReadContext, remove_obsolete: bool = False) -> Deferred:
    """Adopt the bare git repositories found under the repository root that the database
    does not know (their groups too; owned by the caller), and re-read the ``last_changeset``
    of those it knows (changed by a push made around the server); with ``remove_obsolete``,
    forget the repositories whose directory is gone."""
    existing = tuple(KnownRepo(*row) for row in ctx.conn.execute(_EXISTING))
    plan = RescanRepos(known=frozenset(k.name for k in existing), existing=existing)
    return Deferred(work=plan, finish=partial(_finish_rescan, plan, remove_obsolete))


_EXISTING = select(Repository.id, Repository.name, Repository.repo_type,
                   Repository.changeset_cache).order_by(Repository.id)
