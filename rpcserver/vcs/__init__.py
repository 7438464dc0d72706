"""Repositories on disk: the interface every version control system offers and the registry
by ``repo_type`` (``backend``, ``model``), git behind it (``git``), and the store's layout,
locks and undoable moves (``store``)."""

from rpcserver.vcs.backend import (
    BACKENDS,
    DEFAULT_REPO_TYPE,
    Backend,
    Pulled,
    Reader,
    Settings,
    UnknownRepoType,
    backend_for,
    repo_type_at,
)
from rpcserver.vcs.git.command import Git, GitError, GitMissing, GitTimeout
from rpcserver.vcs.git.repo import Repo, is_bare_repository
from rpcserver.vcs.journal import DiskChanges
from rpcserver.vcs.model import Commit, NoSuchPath, Refs, TooMany, Tree, VcsError
from rpcserver.vcs.store import Busy, RepoLock, Store, UnsafePath, name_problem

__all__ = [
    "BACKENDS",
    "DEFAULT_REPO_TYPE",
    "Backend",
    "Busy",
    "Commit",
    "DiskChanges",
    "Git",
    "GitError",
    "GitMissing",
    "GitTimeout",
    "NoSuchPath",
    "Pulled",
    "Reader",
    "Refs",
    "Repo",
    "RepoLock",
    "Settings",
    "Store",
    "TooMany",
    "Tree",
    "UnknownRepoType",
    "UnsafePath",
    "VcsError",
    "backend_for",
    "is_bare_repository",
    "name_problem",
    "repo_type_at",
]
