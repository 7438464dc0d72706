"""What the API needs from a version control system, and which one keeps a repository.

Every repository row names its ``repo_type``; ``backend_for(repo_type, settings)`` gives the
``Backend`` that keeps it. The API and domain modules talk only to a ``Backend`` and the
``Reader`` it opens, never to git itself, so a second backend (``hg``) is one more entry in
``BACKENDS`` (docs/architecture.md). What a new repository is made as is decided here too:
create_repo accepts the types in ``BACKENDS`` and makes ``DEFAULT_REPO_TYPE`` when not told.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from rpcserver.vcs.clone_uri import Source
from rpcserver.vcs.git.backend import GitBackend
from rpcserver.vcs.hg.backend import HgBackend
from rpcserver.vcs.model import Commit, Refs, Tree
from rpcserver.vcs.store import Store

#: What create_repo makes when ``repo_type`` is not given.
DEFAULT_REPO_TYPE = "git"


@dataclass(frozen=True)
class Settings:
    """What every backend is configured with (the domain builds it from the ``Config``)."""

    store: Store
    #: The longest one command may take, and how long one that talks to a remote may stay
    #: silent (None: ``timeout``).
    timeout: float
    stall_timeout: float | None
    #: The only ssh host keys a remote may present (``rpcserver known-hosts``).
    known_hosts: Path


class Reader(Protocol):
    """An existing repository, open for reading. Revision numbers are Kallithea's: the
    0-based position of a commit in ``revisions()``, oldest first."""

    @property
    def path(self) -> Path: ...

    def exists(self) -> bool: ...

    def refs(self, *, at_most: int | None = None) -> Refs:
        """Branches and tags (with ``at_most``, only that many)."""
        ...

    def resolve(self, revision: str, refs: Refs | None = None,
                revisions: list[str] | None = None) -> str | None:
        """The commit id ``revision`` names (``tip``, a number, a branch, a tag, an id or a
        prefix of one), or None; ``refs`` and ``revisions`` save reading them again."""
        ...

    def revisions(self) -> list[str]: ...

    def revisions_dated(self) -> list[tuple[str, dt.datetime]]: ...

    def on_branch(self, branch: str) -> set[str]:
        """Every commit reachable from ``branch``."""
        ...

    def tip_and_count(self, *, refresh: bool = False) -> tuple[Commit | None, int]:
        """The newest commit and how many there are; ``refresh``: the repository just
        changed, bring the backend's own caches up to date first."""
        ...

    def commits(self, ids: Iterable[str], *, with_files: bool,
                max_files: int | None = None) -> list[Commit]:
        """Those commits, in that order; ``TooMany`` past ``max_files`` changed files."""
        ...

    def tree(self, commit: str, path: str, *, kinds: str = "all",
             at_most: int | None = None) -> Tree:
        """Directories and files under ``path`` at ``commit``, recursively; ``NoSuchPath``,
        or ``TooMany`` past ``at_most``."""
        ...


class Pulled(Protocol):
    """What a pull changed on disk, and how to put it back."""

    @property
    def changed(self) -> bool: ...

    @property
    def changes(self) -> Sequence[tuple[str, str | None, str | None]]:
        """(ref, old id or None, new id or None) for every ref that changed."""
        ...

    def undo(self) -> None:
        """Put refs and objects back as they were (the database half failed)."""
        ...


class Backend(Protocol):
    """One version control system. Every writing method works on a new, empty directory
    (``Store.scratch``) or atomically (``pull``); ``VcsError`` when its tool fails."""

    @property
    def repo_type(self) -> str: ...

    def create_empty(self, path: Path) -> None: ...

    def refusal(self, source: Source) -> str | None:
        """Why this backend cannot fetch from the checked ``source`` (a scheme its tool does
        not speak), or None; answered as an invalid clone_uri."""
        ...

    def clone(self, path: Path, source: Source) -> None:
        """Make ``path`` a copy of the checked remote ``source``."""
        ...

    def fork(self, source_path: Path, path: Path) -> None:
        """Make ``path`` a copy of the local repository at ``source_path``."""
        ...

    def pull(self, path: Path, source: Source) -> Pulled:
        """Bring ``path`` in line with ``source``; all or nothing."""
        ...

    def open(self, path: Path) -> Reader: ...

    def is_repository(self, path: Path) -> bool:
        """Whether ``path`` is a repository of this type (without running anything)."""
        ...

    def version_info(self) -> dict[str, str]:
        """What get_server_info reports about this backend's tool (key -> value)."""
        ...

    def unavailable(self) -> str | None:
        """Why this server cannot keep repositories of this type (its tool is missing), in
        words an admin can act on; None when it can."""
        ...


class UnknownRepoType(LookupError):
    """A ``repo_type`` no backend keeps (a row written by something else)."""


#: The backends by ``repo_type``; each is made from the server's ``Settings``.
BACKENDS: dict[str, Callable[[Settings], Backend]] = {"git": GitBackend, "hg": HgBackend}


def backend_for(repo_type: str, settings: Settings) -> Backend:
    """The backend that keeps repositories of ``repo_type``."""
    try:
        make = BACKENDS[repo_type]
    except KeyError:
        raise UnknownRepoType(f"no backend for repo_type {repo_type!r}") from None
    return make(settings)


def repo_type_at(path: Path, settings: Settings) -> str | None:
    """The type of the repository at ``path``, or None when no backend sees one there."""
    for repo_type, make in BACKENDS.items():
        if make(settings).is_repository(path):
            return repo_type
    return None
