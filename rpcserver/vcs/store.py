"""The repository store on disk: where a name lives, and changes that can be undone.

Layout under ``repos_root``::

    <group>/<sub>/<name>/      a bare git repository, at its full name
    <group>/                   a repository group is a directory
    .rpcserver/tmp/            repositories being built (create, fork) and pull scratch space,
                               each with its owner's lock beside it (``<dir>.lock``)
    .rpcserver/trash/          deleted repositories until their transaction commits
    .rpcserver/journal/        what a transaction in progress changed on disk, each journal
                               locked by its owner (``vcs.journal``)
    .rpcserver/locks/          repository locks, by id (pulls, moves); per-user fetch slots
    .rpcserver/gists/          gists, each a bare git repository at its access id (``vcs.gists``)

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
import struct
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
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


class UnsafePath(OSError):
    """A name that would resolve outside the repository root, or into its ``.rpcserver``
    (through a symlink left there); a bug or an attack. An ``OSError``: a method answers its
    usual failure text, as for any other directory it cannot use."""


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
        internal = str(self.internal)
        if os.path.commonpath([real, internal]) == internal:
            raise UnsafePath(f"{name!r} resolves into {internal}")
        return path

    def ensure(self) -> None:
        for sub in ("tmp", "trash", "locks", "journal", "gists"):
            (self.internal / sub).mkdir(parents=True, exist_ok=True)

    @contextlib.contextmanager
    def scratch(self, purpose: str) -> Iterator[Path]:
        """A new empty directory on the root's file system, for building something; removed
        at the end, whatever is still in it.

        Its owner holds an ``flock`` on ``<dir>.lock`` beside it for as long as it uses it;
        the kernel drops the lock when the process dies, even by ``kill -9``, so ``sweep``
        removes a dead owner's directory at once (not after ``max_age``). Beside it, not in
        it: the directory itself may become a repository (create, fork).
        """
        self.ensure()
        fd, path = _owned_scratch(self.internal / "tmp", purpose)
        try:
            yield path
        finally:
            remove_tree(path)
            Path(f"{path}{_OWNER}").unlink(missing_ok=True)
            os.close(fd)

    def fetch_slot(self, user_id: int, slots: int) -> FetchSlot:
        """One of the ``slots`` network fetches user ``user_id`` may run at once."""
        self.ensure()
        return FetchSlot(self.internal / "locks", user_id, slots)

    def lock(self, *repo_ids: int) -> RepoLock:
        """The lock of one repository, or of several taken together (a group's)."""
        self.ensure()
        return RepoLock(self.internal / "locks", repo_ids)

    def sweep(self, max_age: float = 24 * 3600) -> None:
        """Remove scratch and trash left behind by a process that died mid-call: scratch
        whose owner no longer holds its lock at once, the rest after ``max_age``."""
        tmp = self.internal / "tmp"
        with contextlib.suppress(OSError):
            for lock in tmp.glob(f"*{_OWNER}"):
                _sweep_if_unowned(lock)
        cutoff = time.time() - max_age
        for sub in ("tmp", "trash"):
            base = self.internal / sub
            if not base.is_dir():
                continue
            for entry in base.iterdir():
                if entry.name.endswith(_OWNER) or Path(f"{entry}{_OWNER}").exists():
                    continue
                with contextlib.suppress(OSError):
                    if entry.lstat().st_mtime < cutoff:
                        remove_tree(entry)


#: The suffix of a scratch directory's owner lock (``tmp/pull-x1y2.lock`` for ``pull-x1y2``).
_OWNER = ".lock"


def _owned_scratch(tmp: Path, purpose: str) -> tuple[int, Path]:
    """A new lock file, locked, and the new directory it owns: (its descriptor, the
    directory). The lock comes first and goes last, so a directory never lacks its lock."""
    while True:
        fd, lock = owned_file(tmp, f"{purpose}-", _OWNER)
        path = Path(str(lock)[:-len(_OWNER)])
        try:
            path.mkdir(mode=0o700)
            return fd, path
        except FileExistsError:
            os.close(fd)


def owned_file(directory: Path, prefix: str, suffix: str) -> tuple[int, Path]:
    """A new file in ``directory``, flocked by this process: (its descriptor, its path)."""
    while True:
        fd, name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=directory)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # A sweep that locked it first may have removed it meanwhile: then a new one.
            if os.stat(name).st_ino == os.fstat(fd).st_ino:
                return fd, Path(name)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.ENOENT):
                os.close(fd)
                raise
        os.close(fd)


def lock_if_unowned(path: Path) -> int | None:
    """A descriptor of ``path`` holding its flock, if no live process holds it (its owner
    died, even by ``kill -9``: the kernel dropped the lock); None while its owner lives, or
    when it cannot be opened."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _sweep_if_unowned(lock: Path) -> None:
    """Remove the scratch directory of ``lock`` and the lock, unless its owner holds it."""
    fd = lock_if_unowned(lock)
    if fd is None:
        return  # its owner is alive (or we cannot tell): leave it
    try:
        remove_tree(Path(str(lock)[:-len(_OWNER)]))
        lock.unlink(missing_ok=True)
    finally:
        os.close(fd)


def remove_tree(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


class Busy(Exception):
    """Another call (a pull) holds the repository's lock."""


#: Open-file-description record locks (Linux): one lock file, one byte per repository id,
#: owned by an open file description like ``flock`` (so threads of one process exclude each
#: other too), and many locks can share one descriptor.
_OFD = hasattr(fcntl, "F_OFD_SETLK")


class RepoLock:
    """Exclusive locks on repositories, by id: they hold across threads and worker
    processes.

    On Linux a byte range of one shared file per repository (``F_OFD_SETLK``), so that one
    descriptor can hold the locks of a whole group being moved; elsewhere one ``flock``ed file
    per repository. Each ``RepoLock`` opens its own descriptor(s).
    """

    def __init__(self, directory: Path, repo_ids: Iterable[int]) -> None:
        self.directory = directory
        self.repo_ids = sorted(set(repo_ids))
        self._fds: list[int] = []

    def acquire(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds (0: do not wait); ``Busy`` if one stays taken."""
        deadline = time.monotonic() + timeout
        delay = 0.005
        while True:
            try:
                self._try()
                return
            except Busy:
                self.release()
                if time.monotonic() >= deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 0.1)

    def _try(self) -> None:
        if _OFD:
            fd = self._open(self.directory / "repositories.lock")
            for repo_id in self.repo_ids:
                _ofd_lock(fd, repo_id, fcntl.F_WRLCK)
            return
        for repo_id in self.repo_ids:
            fd = self._open(self.directory / f"repo-{repo_id}.lock")
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EACCES):
                    raise Busy(f"repository id {repo_id}") from None
                raise

    def _open(self, path: Path) -> int:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._fds.append(fd)
        return fd

    def release(self) -> None:
        """Let go of everything held (closing a descriptor releases its locks)."""
        fds, self._fds = self._fds, []
        for fd in fds:
            os.close(fd)

    @contextlib.contextmanager
    def held(self, timeout: float) -> Iterator[RepoLock]:
        self.acquire(timeout)
        try:
            yield self
        finally:
            self.release()


def _ofd_lock(fd: int, repo_id: int, kind: int) -> None:
    """Lock (or unlock) byte ``repo_id`` of the file; ``Busy`` if another holds it."""
    flock = struct.pack("hhllhh", kind, os.SEEK_SET, repo_id, 1, 0, 0)
    try:
        fcntl.fcntl(fd, fcntl.F_OFD_SETLK, flock)
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            raise Busy(f"repository id {repo_id}") from None
        raise


class FetchSlot:
    """One of a user's ``slots`` concurrent network fetches, across threads and worker
    processes: slot files ``fetch-<user id>-<n>.lock``, each held with a non-blocking
    ``flock`` (which threads of one process also contend for: one open file each)."""

    def __init__(self, directory: Path, user_id: int, slots: int) -> None:
        self.paths = [directory / f"fetch-{user_id}-{n}.lock" for n in range(slots)]
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the first free slot; ``Busy`` at once if every one is taken."""
        for path in self.paths:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.EAGAIN, errno.EACCES):
                    continue
                raise
            self._fd = fd
            return
        raise Busy(f"all {len(self.paths)} fetch slots")

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
