"""Repositories on disk: the git command line (``git``), reading (``repo``), writing and
pulling (``fetch``), and the store's layout, locks and undoable moves (``store``)."""

from rpcserver.vcs.git import Git, GitError, GitMissing, GitTimeout
from rpcserver.vcs.journal import DiskChanges
from rpcserver.vcs.repo import Commit, NoSuchPath, Refs, Repo, TooMany, Tree, is_bare_repository
from rpcserver.vcs.store import Busy, RepoLock, Store, UnsafePath, name_problem

__all__ = [
    "Busy",
    "Commit",
    "DiskChanges",
    "Git",
    "GitError",
    "GitMissing",
    "GitTimeout",
    "NoSuchPath",
    "Refs",
    "Repo",
    "RepoLock",
    "Store",
    "TooMany",
    "Tree",
    "UnsafePath",
    "is_bare_repository",
    "name_problem",
]
