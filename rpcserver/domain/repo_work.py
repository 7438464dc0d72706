"""The slow parts of the repository methods, as named work with plain-data parameters.

Each kind is a frozen dataclass of ids, names and values (a checked clone_uri as a
``vcs.clone_uri.Source``; no ORM objects, no session) whose ``run(config)`` does the slow
part with no transaction open, yields what the method's finish stores, and undoes or cleans up
on exit (``context.Deferred``). Today the dispatcher runs them in-process; because they are
plain data, a job queue could carry them later (``domain.work``: the kinds by name).

Locks are taken here, in ``run``: a repository's own lock for a pull (one at a time, across
worker processes), one of the caller's fetch slots for anything that fetches over the network.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from rpcserver.core.config import Config
from rpcserver.core.errors import ApiError
from rpcserver.domain.lookup import as_id
from rpcserver.domain.repositories import (
    backend,
    fetch_slot,
    last_changeset,
    store_for,
    vcs_settings,
)
from rpcserver.vcs.backend import Settings, backend_for, repo_type_at
from rpcserver.vcs.clone_uri import Source
from rpcserver.vcs.model import VcsError
from rpcserver.vcs.store import INTERNAL, Busy, name_problem

log = logging.getLogger(__name__)


# -- create_repo and fork_repo: a new repository, built in scratch space -------------------


@dataclass(frozen=True)
class Built:
    """A new repository in its scratch directory (removed at the end unless moved away)."""

    path: Path
    cache: dict[str, Any]


@dataclass(frozen=True)
class CreateRepo:
    """Build repository ``name`` of ``repo_type``: empty, or cloned from ``source`` (taking
    one of ``fetcher``'s (user id, name) fetch slots first)."""

    kind: ClassVar[str] = "create_repo"
    name: str
    repo_type: str
    #: the answer when building fails
    failed_text: str
    source: Source | None = None
    fetcher: tuple[int, str] | None = None

    def run(self, config: Config) -> contextlib.AbstractContextManager[Built]:
        return _build(config, self.name, self.repo_type, self.failed_text,
                      source=self.source, fetcher=self.fetcher)


@dataclass(frozen=True)
class ForkRepo:
    """Build repository ``name`` as a copy of our own repository ``parent_name``."""

    kind: ClassVar[str] = "fork_repo"
    name: str
    repo_type: str
    parent_name: str
    failed_text: str

    def run(self, config: Config) -> contextlib.AbstractContextManager[Built]:
        parent = store_for(config).path(self.parent_name)
        return _build(config, self.name, self.repo_type, self.failed_text, fork_from=parent)


@contextlib.contextmanager
def _build(config: Config, name: str, repo_type: str, failed_text: str, *,
           source: Source | None = None, fork_from: Path | None = None,
           fetcher: tuple[int, str] | None = None) -> Iterator[Built]:
    """Build the repository in a scratch directory; whatever was not moved into place is
    removed at the end."""
    store = store_for(config)
    vcs = backend(config, repo_type)
    with fetch_slot(config, fetcher, source):
        store.sweep()
        with store.scratch("new") as scratch:
            try:
                if fork_from is not None:
                    vcs.fork(fork_from, scratch)
                elif source is not None:
                    vcs.clone(scratch, source)
                else:
                    vcs.create_empty(scratch)
                cache = last_changeset(vcs.open(scratch))
            except (VcsError, OSError) as exc:
                what = f" from {source.masked}" if source is not None else ""
                log.warning("building %s%s failed: %s", name, what, exc)
                raise ApiError(failed_text) from None
            yield Built(scratch, cache)


# -- pull and invalidate_cache: an existing repository, under its lock ----------------------


@dataclass
class Pulled:
    """What a pull or a cache refresh read; ``committed`` is set once the finish's
    transaction has committed (a pull not committed is undone)."""

    #: the new ``last_changeset``; None: unchanged, keep the cached one
    cache: dict[str, Any] | None
    committed: bool = False


def unable_to_pull(name: str) -> ApiError:
    return ApiError(f"Unable to pull changes from `{name}`")


@dataclass(frozen=True)
class PullRepo:
    """Bring repository ``repo_id`` (``name``) in line with ``source``, all or nothing."""

    kind: ClassVar[str] = "pull_repo"
    repo_id: int
    name: str
    repo_type: str
    source: Source
    #: ``last_changeset`` as cached when the pull was asked for (None: not yet known)
    cache: dict[str, Any] | None = None
    #: who asked (user id, name): a network pull takes one of their fetch slots
    fetcher: tuple[int, str] | None = None

    @contextlib.contextmanager
    def run(self, config: Config) -> Iterator[Pulled]:
        """Yields the new ``last_changeset``; the fetch is undone on exit unless the finish
        committed (``Pulled.committed``)."""
        vcs = backend(config, self.repo_type)
        store = store_for(config)
        path = store.path(self.name)
        masked = self.source.masked
        with (fetch_slot(config, self.fetcher, self.source),
              _locked(config, self.repo_id, self.name)):
            store.sweep()
            try:
                if not vcs.is_repository(path):
                    raise VcsError(f"fetch: no repository at {path}")
                result = vcs.pull(path, self.source)
                # Nothing changed: the cached last_changeset stays (read again only if absent).
                cache = (None if not result.changed and self.cache is not None
                         else last_changeset(vcs.open(path), refresh=result.changed))
            except (VcsError, OSError) as exc:
                log.warning("pull of %s from %s failed: %s", self.name, masked, exc)
                raise unable_to_pull(self.name) from None
            pulled = Pulled(cache)
            try:
                yield pulled
            finally:
                if result.changed and not pulled.committed:
                    log.warning("pull of %s: the database half failed; undoing the fetch",
                                self.name)
                    result.undo()
            log.info("pulled %s from %s: %d refs changed", self.name, masked,
                     len(result.changes))


@dataclass(frozen=True)
class RefreshCache:
    """Read repository ``repo_id``'s ``last_changeset`` from disk again, under its lock."""

    kind: ClassVar[str] = "refresh_cache"
    repo_id: int
    name: str
    repo_type: str

    @contextlib.contextmanager
    def run(self, config: Config) -> Iterator[Pulled]:
        path = store_for(config).path(self.name)
        with _locked(config, self.repo_id, self.name):
            try:
                cache = last_changeset(backend(config, self.repo_type).open(path))
            except VcsError as exc:
                log.warning("invalidate_cache %s: %s", self.name, exc)
                raise ApiError("Error occurred during cache invalidation action") from None
            yield Pulled(cache)


@contextlib.contextmanager
def _locked(config: Config, repo_id: int, name: str) -> Iterator[None]:
    """The repository's lock, waiting at most ``git_timeout`` for a running pull."""
    lock = store_for(config).lock(repo_id)
    try:
        lock.acquire(config.git_timeout)
    except Busy:
        log.warning("pull %s: another pull held the lock for %s s", name, config.git_timeout)
        raise unable_to_pull(name) from None
    try:
        yield
    finally:
        lock.release()


# -- rescan_repos: every repository on disk ------------------------------------------------


@dataclass(frozen=True)
class KnownRepo:
    """A repository the database holds, with its cached ``last_changeset`` as the scan
    found it (None: never read)."""

    repo_id: int
    name: str
    repo_type: str
    cache: dict[str, Any] | None


@dataclass
class Scan:
    #: repositories on disk the database does not know: name -> (repo_type, last_changeset)
    new: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    #: known repositories whose ``last_changeset`` on disk differs from their cache (pushed
    #: to around the server): repo id -> the one on disk
    changed: dict[int, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class RescanRepos:
    """Find the repositories under the root whose names are not in ``known``, and read the
    ``last_changeset`` of the ``existing`` ones again."""

    kind: ClassVar[str] = "rescan_repos"
    known: frozenset[str]
    existing: tuple[KnownRepo, ...] = ()

    @contextlib.contextmanager
    def run(self, config: Config) -> Iterator[Scan]:
        settings = vcs_settings(config)
        store = settings.store
        store.sweep()
        scan = Scan()
        for name, repo_type in _walk(settings):
            if name in self.known:
                continue
            try:
                repo = backend_for(repo_type, settings).open(store.path(name))
                scan.new[name] = (repo_type, last_changeset(repo))
            except VcsError as exc:
                log.warning("rescan: cannot read %s, skipping it: %s", name, exc)
        for known in self.existing:
            cache = _reread(settings, known)
            if cache is not None and cache != known.cache:
                scan.changed[known.repo_id] = cache
        yield scan


def _reread(settings: Settings, known: KnownRepo) -> dict[str, Any] | None:
    """``known``'s ``last_changeset`` on disk; None when it is missing, unreadable or busy
    (a pull or push holds its lock, and stores its own when done)."""
    store = settings.store
    try:
        path = store.path(known.name)
        vcs = backend_for(known.repo_type, settings)
        if not vcs.is_repository(path):
            return None
        lock = store.lock(known.repo_id)
        lock.acquire(0)
    except (Busy, OSError, VcsError):
        return None
    try:
        return last_changeset(vcs.open(path))
    except VcsError as exc:
        log.warning("rescan: cannot read %s: %s", known.name, exc)
        return None
    finally:
        lock.release()


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
