"""Keeping repositories in step with disk and remotes: pull (also RhodeCode 1.2's),
rescan_repos, invalidate_cache.

A pull runs in three steps (``dispatch.Deferred``): the call's own read transaction checks the
caller, the repository and the clone_uri (host names are resolved now, on every pull); then,
with no transaction open, it takes the repository's lock (one pull of a repository at a time,
across worker processes; other repositories are not blocked) and fetches atomically
(``Backend.pull``); then a short write transaction stores the new ``last_changeset``. If that
transaction fails, the fetch is undone, so disk and database never disagree.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import select

from rpcserver.core import schemas
from rpcserver.core.config import Config
from rpcserver.core.errors import ApiError, NotFound
from rpcserver.core.registry import RHODECODE, Registry
from rpcserver.db.models import Level, RepoGroup, Repository
from rpcserver.domain import clone_uri_at_rest
from rpcserver.domain.context import CallContext, Deferred
from rpcserver.domain.lookup import REPOSITORY, as_id, get_repo
from rpcserver.domain.permissions import ADMIN, OnRepo
from rpcserver.domain.repositories import (
    add_repo_group,
    add_repository,
    backend,
    checked_source,
    fetch_slot,
    last_changeset,
    name_taken,
    store_for,
    vcs_settings,
)
from rpcserver.vcs.backend import Settings, backend_for, repo_type_at
from rpcserver.vcs.clone_uri import Source
from rpcserver.vcs.model import VcsError
from rpcserver.vcs.store import INTERNAL, Busy, name_problem

log = logging.getLogger(__name__)
registry = Registry()

REPOID = schemas.id_or_name()


@dataclass(frozen=True)
class _Plan:
    repo_id: int
    name: str
    repo_type: str
    path: Path
    source: Source | None
    #: ``last_changeset`` as cached when the pull was asked for (None: not yet known)
    cache: dict[str, Any] | None = None
    #: who asked (user id, name): a network pull takes one of their fetch slots
    fetcher: tuple[int, str] | None = None

    @property
    def masked(self) -> str:
        return self.source.masked if self.source is not None else "nowhere"

    @property
    def unable(self) -> ApiError:
        return ApiError(f"Unable to pull changes from `{self.name}`")


@dataclass
class _Pulled:
    #: the new ``last_changeset``; None: unchanged, keep the cached one
    cache: dict[str, Any] | None
    committed: bool = False


def _plan(ctx: CallContext, repo: Repository, clone_uri: str | None) -> _Plan:
    store = store_for(ctx.config)
    try:
        uri = clone_uri or clone_uri_at_rest.for_git(ctx.config, repo)
    except clone_uri_at_rest.Unavailable as exc:
        log.error("pull %s: its stored clone_uri cannot be decrypted: %s", repo.name, exc)
        raise ApiError(f"Unable to pull changes from `{repo.name}`") from None
    if uri:
        source = checked_source(ctx.config, uri, admin=ctx.user.admin)
    elif repo.fork_of is not None:
        # A fork without a clone_uri pulls from its parent: our own repository, on disk.
        parent = store.path(repo.fork_of.name)
        source = Source(url=str(parent), scheme="file", protocols=("file",))
    else:
        log.info("pull %s: no clone_uri, and not a fork", repo.name)
        raise ApiError(f"Unable to pull changes from `{repo.name}`")
    return _Plan(repo_id=repo.id, name=repo.name, repo_type=repo.repo_type,
                 path=store.path(repo.name), source=source, cache=repo.changeset_cache,
                 fetcher=(ctx.user.id, ctx.user.username))


@contextlib.contextmanager
def _locked(config: Config, plan: _Plan) -> Iterator[None]:
    """The repository's lock, waiting at most ``git_timeout`` for a running pull."""
    lock = store_for(config).lock(plan.repo_id)
    try:
        lock.acquire(config.git_timeout)
    except Busy:
        log.warning("pull %s: another pull held the lock for %s s", plan.name,
                    config.git_timeout)
        raise plan.unable from None
    try:
        yield
    finally:
        lock.release()


@contextlib.contextmanager
def _fetching(config: Config, plan: _Plan) -> Iterator[_Pulled]:
    vcs = backend(config, plan.repo_type)
    store = store_for(config)
    with fetch_slot(config, plan.fetcher, plan.source), _locked(config, plan):
        store.sweep()
        try:
            if not vcs.is_repository(plan.path):
                raise VcsError(f"fetch: no repository at {plan.path}")
            if plan.source is None:
                raise VcsError("fetch: nothing to pull from")
            result = vcs.pull(plan.path, plan.source)
            # Nothing changed: the cached last_changeset stays (read it again only if absent).
            cache = (None if not result.changed and plan.cache is not None
                     else last_changeset(vcs.open(plan.path), refresh=result.changed))
        except (VcsError, OSError) as exc:
            log.warning("pull of %s from %s failed: %s", plan.name, plan.masked, exc)
            raise plan.unable from None
        pulled = _Pulled(cache)
        try:
            yield pulled
        finally:
            if result.changed and not pulled.committed:
                log.warning("pull of %s: the database half failed; undoing the fetch", plan.name)
                result.undo()
        log.info("pulled %s from %s: %d refs changed", plan.name, plan.masked,
                 len(result.changes))


def _store_pull(plan: _Plan, ctx: CallContext, pulled: _Pulled) -> Repository:
    repo = ctx.session.get(Repository, plan.repo_id)
    if repo is None or repo.name != plan.name:
        log.warning("pull of %s: the repository was renamed or deleted meanwhile", plan.name)
        raise plan.unable
    if pulled.cache is not None:
        repo.changeset_cache = pulled.cache
    ctx.on_commit(partial(setattr, pulled, "committed", True))
    return repo


def _finish(plan: _Plan, ctx: CallContext, pulled: _Pulled) -> dict[str, Any]:
    repo = _store_pull(plan, ctx, pulled)
    return {"msg": f"Pulled from `{repo.name}`", "repository": repo.name}


def _finish_rhodecode(plan: _Plan, ctx: CallContext, pulled: _Pulled) -> str:
    repo = _store_pull(plan, ctx, pulled)
    return f"Pulled from {repo.name}"


@registry.method("pull",
                 schema=schemas.obj(required=("repoid",), repoid=REPOID,
                                    clone_uri=schemas.nullable(schemas.string(2048))),
                 permission=ADMIN)
def pull(ctx: CallContext, repoid: Any, clone_uri: str | None = None) -> Deferred:
    """Fetch every branch and tag from the repository's ``clone_uri`` (or from the
    ``clone_uri`` given, for this pull only; a fork without one pulls from its parent).
    Branches and tags the remote no longer has are removed; a failure changes nothing."""
    plan = _plan(ctx, get_repo(ctx.session, repoid), clone_uri)
    return Deferred(work=partial(_fetching, ctx.config, plan), finish=partial(_finish, plan))


@registry.method("pull", dialect=RHODECODE,
                 schema=schemas.obj(required=("repo",), repo=schemas.string(min_length=1)),
                 permission=ADMIN)
def pull_rhodecode(ctx: CallContext, repo: str) -> Deferred:
    """RhodeCode 1.2's pull: ``repo`` is the repository's name; answers a string."""
    found = ctx.session.scalars(select(Repository).where(Repository.name == repo)).first()
    if found is None:
        raise NotFound(REPOSITORY, repo)
    plan = _plan(ctx, found, None)
    return Deferred(work=partial(_fetching, ctx.config, plan),
                    finish=partial(_finish_rhodecode, plan))


# -- invalidate_cache ---------------------------------------------------------------------


@contextlib.contextmanager
def _recomputing(config: Config, plan: _Plan) -> Iterator[_Pulled]:
    with _locked(config, plan):
        try:
            cache = last_changeset(backend(config, plan.repo_type).open(plan.path))
        except VcsError as exc:
            log.warning("invalidate_cache %s: %s", plan.name, exc)
            raise ApiError("Error occurred during cache invalidation action") from None
        yield _Pulled(cache)


def _finish_invalidate(plan: _Plan, ctx: CallContext, fresh: _Pulled) -> dict[str, Any]:
    repo = ctx.session.get(Repository, plan.repo_id)
    if repo is None:
        raise ApiError("Error occurred during cache invalidation action")
    repo.changeset_cache = fresh.cache
    return {"msg": f"Cache for repository `{repo.name}` was invalidated",
            "repository": repo.name}


@registry.method("invalidate_cache",
                 schema=schemas.obj(required=("repoid",), repoid=REPOID),
                 permission=OnRepo("repoid", Level.WRITE))
def invalidate_cache(ctx: CallContext, repoid: Any) -> Deferred:
    """Re-read what the server caches about a repository (its ``last_changeset``) from
    disk, e.g. after it was changed outside the server."""
    repo: Repository = ctx.resolved["repoid"]
    store = store_for(ctx.config)
    plan = _Plan(repo_id=repo.id, name=repo.name, repo_type=repo.repo_type,
                 path=store.path(repo.name), source=None)
    return Deferred(work=partial(_recomputing, ctx.config, plan),
                    finish=partial(_finish_invalidate, plan))


# -- rescan_repos -------------------------------------------------------------------------


@dataclass
class _Scan:
    #: repositories on disk the database does not know: name -> (repo_type, last_changeset)
    new: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)


def _walk(settings: Settings, relative: str = "",
          depth: int = 0) -> Iterator[tuple[str, str]]:
    """(name, repo_type) of the repositories under the root (not inside other
    repositories), of any type a backend recognises."""
    store = settings.store
    base = store.root / relative if relative else store.root
    if depth > 64:
        return
    try:
        entries = sorted(os.scandir(base), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        if entry.name == INTERNAL or not entry.is_dir(follow_symlinks=False):
            continue
        name = f"{relative}/{entry.name}" if relative else entry.name
        if name_problem(name) is not None or as_id(name) is not None:
            log.info("rescan: skipping %s (not a valid repository name)", name)
            continue
        repo_type = repo_type_at(Path(entry.path), settings)
        if repo_type is not None:
            yield name, repo_type
        else:
            yield from _walk(settings, name, depth + 1)


@contextlib.contextmanager
def _scanning(config: Config, known: frozenset[str]) -> Iterator[_Scan]:
    settings = vcs_settings(config)
    store = settings.store
    store.sweep()
    scan = _Scan()
    for name, repo_type in _walk(settings):
        if name in known:
            continue
        try:
            repo = backend_for(repo_type, settings).open(store.path(name))
            scan.new[name] = (repo_type, last_changeset(repo))
        except VcsError as exc:
            log.warning("rescan: cannot read %s, skipping it: %s", name, exc)
    yield scan


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


def _finish_rescan(remove_obsolete: bool, ctx: CallContext, scan: _Scan) -> dict[str, Any]:
    added: list[str] = []
    removed: list[str] = []
    settings = vcs_settings(ctx.config)
    store = settings.store
    for name, (repo_type, cache) in sorted(scan.new.items()):
        parts = name.split("/")
        clash = any(isinstance(name_taken(ctx, "/".join(parts[:i])), Repository)
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
    log.info("rescan by user id %s: added %s, removed %s", ctx.user.id, added, removed)
    return {"added": added, "removed": removed}


@registry.method("rescan_repos",
                 schema=schemas.obj(remove_obsolete=schemas.boolean()),
                 permission=ADMIN)
def rescan_repos(ctx: CallContext, remove_obsolete: bool = False) -> Deferred:
    """Adopt the bare git repositories found under the repository root that the database
    does not know (their groups too; owned by the caller); with ``remove_obsolete``, forget
    the repositories whose directory is gone."""
    known = frozenset(ctx.session.scalars(select(Repository.name)).all())
    return Deferred(work=partial(_scanning, ctx.config, known),
                    finish=partial(_finish_rescan, remove_obsolete))
