"""The repository store on disk: where a name lives, and changes that can be undone.

Layout under ``repos_root``::

    <group>/<sub>/<name>/      a bare git repository, at its full name
    <group>/                   a repository group is a directory
    .rpcserver/tmp/            repositories being built (create, fork) and pull scratch space
    .rpcserver/trash/          deleted repositories until their transaction commits
    .rpcserver/locks/          one lock file per repository id (pulls, moves)

Names are checked against a strict pattern before they become paths, and every path must
resolve inside the root (a symlink cannot lead out). ``.rpcserver`` cannot collide with a
name: names start with a letter or digit.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

INTERNAL = ".rpcserver"
#: One part of a name: starts with a letter or digit; letters, digits, ``.``, ``_``, ``-``.
_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
PART_MAX = 100
NAME_MAX = 255


def name_problem(name: str) -> str | None:
    """Why ``name`` (``group/sub/repo``) cannot name a repository or group, or None."""
    if not name:
        return "must not be empty"
    if len(name) > NAME_MAX:
        return f"must be at most {NAME_MAX} characters long"
    for part in name.split("/"):
        if not part:
            return "must not start or end with `/` or contain `//`"
        if len(part) > PART_MAX:
            return f"each part must be at most {PART_MAX} characters long"
        if not _PART.fullmatch(part):
            return ("each part must start with a letter or digit and contain only letters, "
                    "digits, `.`, `_` and `-`")
        if ".." in part or part.endswith("."):
            return "must not contain `..` or end a part with `.`"
        if part.lower().endswith(".git"):
            return "must not end a part with `.git`"
    return None


def parent_of(name: str) -> str | None:
    return name.rpartition("/")[0] or None


class UnsafePath(Exception):
    """A name that would resolve outside the repository root; a bug or an attack."""


@dataclass(frozen=True)
class Store:
    root: Path

    @classmethod
    def at(cls, repos_root: str) -> Store:
        return cls(Path(os.path.realpath(repos_root)))

    @property
    def internal(self) -> Path:
        return self.root / INTERNAL

    def path(self, name: str) -> Path:
        """The directory of repository or group ``name``; never outside the root."""
        problem = name_problem(name)
        if problem is not None:
            raise UnsafePath(f"{name!r}: {problem}")
        path = self.root / name
        real = os.path.realpath(path)
        if os.path.commonpath([real, str(self.root)]) != str(self.root) or real == str(
                self.root):
            raise UnsafePath(f"{name!r} resolves outside {self.root}")
        return path

    def ensure(self) -> None:
        for sub in ("tmp", "trash", "locks"):
            (self.internal / sub).mkdir(parents=True, exist_ok=True)

    def scratch(self, purpose: str) -> Path:
        """A new empty directory on the root's file system, for building something."""
        self.ensure()
        return Path(tempfile.mkdtemp(prefix=f"{purpose}-", dir=self.internal / "tmp"))

    def lock(self, repo_id: int) -> RepoLock:
        self.ensure()
        return RepoLock(self.internal / "locks" / f"repo-{repo_id}.lock")

    def sweep(self, max_age: float = 24 * 3600) -> None:
        """Remove scratch and trash left behind by a process that died mid-call."""
        cutoff = time.time() - max_age
        for sub in ("tmp", "trash"):
            base = self.internal / sub
            if not base.is_dir():
                continue
            for entry in base.iterdir():
                with contextlib.suppress(OSError):
                    if entry.lstat().st_mtime < cutoff:
                        remove_tree(entry)


def remove_tree(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


class Busy(Exception):
    """Another call (a pull) holds the repository's lock."""


class RepoLock:
    """An exclusive ``flock`` on one file: holds across threads and worker processes.

    Each acquisition opens its own file description, so two threads of one process exclude
    each other as two processes do.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds (0: do not wait); ``Busy`` if it stays taken."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        deadline = time.monotonic() + timeout
        delay = 0.005
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._fd = fd
                return
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise
            if time.monotonic() >= deadline:
                os.close(fd)
                raise Busy(str(self.path))
            time.sleep(delay)
            delay = min(delay * 2, 0.1)

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    @contextlib.contextmanager
    def held(self, timeout: float) -> Iterator[RepoLock]:
        self.acquire(timeout)
        try:
            yield self
        finally:
            self.release()


@dataclass
class DiskChanges:
    """Directory moves made inside a transaction, undone if it rolls back.

    ``move`` renames at once (atomic on one file system); ``discard`` moves a directory to the
    trash and removes it for good only on commit; ``created`` records a new directory to
    remove on rollback. Locks taken for the changes are released either way.
    """

    store: Store
    _undo: list[tuple[str, Path, Path | None]] = field(default_factory=list)
    _trash: list[Path] = field(default_factory=list)
    _locks: list[RepoLock] = field(default_factory=list)

    def move(self, src: Path, dst: Path) -> None:
        if dst.exists() or dst.is_symlink():
            raise FileExistsError(errno.EEXIST, "already exists", str(dst))
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.rename(src, dst)
        self._undo.append(("move", dst, src))

    def created(self, path: Path) -> None:
        self._undo.append(("created", path, None))

    def discard(self, path: Path) -> None:
        self.store.ensure()
        trash = self.store.internal / "trash" / f"{path.name}-{uuid.uuid4().hex[:12]}"
        os.rename(path, trash)
        self._undo.append(("move", trash, path))
        self._trash.append(trash)

    def hold(self, lock: RepoLock) -> None:
        self._locks.append(lock)

    def commit(self) -> None:
        try:
            for trash in self._trash:
                remove_tree(trash)
        finally:
            self._release()

    def rollback(self) -> None:
        try:
            for kind, path, back in reversed(self._undo):
                if kind == "move" and back is not None:
                    back.parent.mkdir(parents=True, exist_ok=True)
                    os.rename(path, back)
                elif kind == "created":
                    remove_tree(path)
        finally:
            self._undo.clear()
            self._trash.clear()
            self._release()

    def _release(self) -> None:
        for lock in self._locks:
            lock.release()
        self._locks.clear()
