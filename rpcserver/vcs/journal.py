"""Directory changes made inside a transaction, journaled so that a killed process's are
finished or undone at the next start (as the database says its transaction ended)."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rpcserver.vcs.store import RepoLock, Store, owned_file, remove_tree

log = logging.getLogger(__name__)

#: The suffix of a transaction's disk journal (``journal/tx-x1y2.journal``).
_JOURNAL = ".journal"



@dataclass
class DiskChanges:
    """Directory moves made inside a transaction, undone if it rolls back.

    ``move`` renames at once (atomic on one file system); ``discard`` moves a directory to the
    trash and removes it for good only on commit; ``created`` records a new directory to
    remove on rollback. Locks taken for the changes are released either way.

    Each change is written to a journal, locked by this process, before it is made, and the
    journal goes when the transaction has ended. A process killed in between leaves it
    behind for ``Store.recover``, which asks the database whether the transaction committed.
    """

    store: Store
    _undo: list[tuple[str, Path, Path | None]] = field(default_factory=list)
    _trash: list[Path] = field(default_factory=list)
    _locks: list[RepoLock] = field(default_factory=list)
    _journal: tuple[int, Path] | None = None

    def move(self, src: Path, dst: Path) -> None:
        if dst.exists() or dst.is_symlink():
            raise FileExistsError(errno.EEXIST, "already exists", str(dst))
        dst.parent.mkdir(parents=True, exist_ok=True)
        self._write({"op": "move", "src": str(src), "dst": str(dst)})
        os.rename(src, dst)
        self._undo.append(("move", dst, src))

    def created(self, path: Path) -> None:
        self._write({"op": "created", "path": str(path)})
        self._undo.append(("created", path, None))

    def discard(self, path: Path) -> None:
        self.store.ensure()
        trash = self.store.internal / "trash" / f"{path.name}-{uuid.uuid4().hex[:12]}"
        self._write({"op": "discard", "path": str(path), "trash": str(trash)})
        os.rename(path, trash)
        self._undo.append(("move", trash, path))
        self._trash.append(trash)

    def _write(self, entry: dict[str, str]) -> None:
        if self._journal is None:
            self.store.ensure()
            self._journal = owned_file(self.store.internal / "journal", "tx-", _JOURNAL)
        os.write(self._journal[0], json.dumps(entry).encode() + b"\n")

    def _close_journal(self) -> None:
        journal, self._journal = self._journal, None
        if journal is not None:
            fd, path = journal
            path.unlink(missing_ok=True)  # while still locked: no sweep reads it half-gone
            os.close(fd)

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
        self._close_journal()
        for lock in self._locks:
            lock.release()
        self._locks.clear()


def recover(store: Store, known: Callable[[str], bool]) -> None:
    """Finish or undo what transactions killed mid-way changed on disk (their journals
    whose owner is gone); ``known(name)`` says whether the database holds a repository
    or group of that name. Run at start-up, before ``Store.sweep``."""
    journals = store.internal / "journal"
    with contextlib.suppress(OSError):
        for journal in sorted(journals.glob(f"*{_JOURNAL}")):
            _recover_journal(store.root, journal, known)


def _recover_journal(root: Path, journal: Path, known: Callable[[str], bool]) -> None:
    """Finish or undo the changes of a dead transaction's journal, newest first. A change
    committed if the database holds the row it made (a move, a new directory) or no longer
    holds the row it removed (a discard); ``known(name)``: a repository or group row exists."""
    try:
        fd = os.open(journal, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return  # its transaction is still running
        with open(fd, "rb", closefd=False) as file:
            lines = file.read().splitlines()
        for line in reversed(lines):
            try:
                entry = json.loads(line)
                _recover_entry(root, entry, known)
            except (ValueError, KeyError, TypeError, OSError) as exc:
                log.warning("recovering %s: cannot apply %r: %s", journal, line[:300], exc)
        journal.unlink(missing_ok=True)
    finally:
        os.close(fd)


def _recover_entry(root: Path, entry: dict[str, str], known: Callable[[str], bool]) -> None:
    def name(path: Path) -> str:
        return path.relative_to(root).as_posix()

    op = entry["op"]
    if op == "move":
        src, dst = Path(entry["src"]), Path(entry["dst"])
        if not known(name(dst)) and dst.exists() and not src.exists():
            src.parent.mkdir(parents=True, exist_ok=True)
            os.rename(dst, src)
            log.warning("recovered %s: moved back to %s (its transaction did not commit)",
                        dst, src)
    elif op == "created":
        path = Path(entry["path"])
        if not known(name(path)):
            with contextlib.suppress(OSError):
                path.rmdir()  # only if empty: nothing else can have been put there
    elif op == "discard":
        path, trash = Path(entry["path"]), Path(entry["trash"])
        if known(name(path)) and trash.exists() and not path.exists():
            os.rename(trash, path)
            log.warning("recovered %s from the trash (its deletion did not commit)", path)
        else:
            remove_tree(trash)
    else:
        raise ValueError(f"unknown change {op!r}")
