"""Repositories on disk: git (``git``: its command line, reading, writing and pulling), and
the store's layout, locks and undoable moves (``store``)."""

from rpcserver.vcs.git.command import Git, GitError, GitMissing, GitTimeout
from rpcserver.vcs.git.repo import Commit, NoSuchPath, Refs, Repo, TooMany, Tree, is_bare_repository
from rpcserver.vcs.journal import DiskChanges
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
