"""Directory changes made inside a transaction, journaled so that a killed process's are
finished or undone at the next start (as the database says its transaction ended)."""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rpcserver.vcs.store import RepoLock, Store, lock_if_unowned, owned_file, remove_tree

log = logging.getLogger(__name__)

#: The suffix of a transaction's disk journal (``journal/tx-x1y2.journal``).
_JOURNAL = ".journal"

#: One change, as it is kept in memory and written to the journal: ``{"op": "move", "src",
#: "dst"}``, ``{"op": "created", "path"}`` or ``{"op": "discard", "path", "trash"}``.
Change = dict[str, str]


@dataclass
class DiskChanges:
    """Directory moves made inside a transaction, undone if it rolls back.

    ``move`` renames at once (atomic on one file system); ``discard`` moves a directory to the
    trash and removes it for good only on commit; ``created`` records a new directory to
    remove on rollback. Locks taken for the changes are released either way.

    Each change is written to a journal, locked by this process, before it is made, and the
    journal goes when the transaction has ended. A process killed in between leaves it
    behind for ``recover``, which asks the database whether the transaction committed and
    then finishes or undoes the changes as ``commit`` and ``rollback`` would have.
    """

    store: Store
    _changes: list[Change] = field(default_factory=list)
    _locks: list[RepoLock] = field(default_factory=list)
    _journal: tuple[int, Path] | None = None

    def move(self, src: Path, dst: Path) -> None:
        if dst.exists() or dst.is_symlink():
            raise FileExistsError(errno.EEXIST, "already exists", str(dst))
        dst.parent.mkdir(parents=True, exist_ok=True)
        self._record({"op": "move", "src": str(src), "dst": str(dst)})
        os.rename(src, dst)

    def created(self, path: Path) -> None:
        self._record({"op": "created", "path": str(path)})

    def discard(self, path: Path) -> None:
        self.store.ensure()
        trash = self.store.internal / "trash" / f"{path.name}-{uuid.uuid4().hex[:12]}"
        self._record({"op": "discard", "path": str(path), "trash": str(trash)})
        os.rename(path, trash)

    def _record(self, change: Change) -> None:
        """Journal ``change`` before it is made; an undo of one never made finds nothing."""
        if self._journal is None:
            self.store.ensure()
            self._journal = owned_file(self.store.internal / "journal", "tx-", _JOURNAL)
        os.write(self._journal[0], json.dumps(change).encode() + b"\n")
        self._changes.append(change)

    def hold(self, lock: RepoLock) -> None:
        self._locks.append(lock)

    def commit(self) -> None:
        try:
            for change in self._changes:
                _finish(change)
        finally:
            self._release()

    def rollback(self) -> None:
        try:
            for change in reversed(self._changes):
                _undo(change, whole=True)
        finally:
            self._release()

    def _release(self) -> None:
        self._changes.clear()
        journal, self._journal = self._journal, None
        if journal is not None:
            fd, path = journal
            path.unlink(missing_ok=True)  # while still locked: no recovery reads it half-gone
            os.close(fd)
        for lock in self._locks:
            lock.release()
        self._locks.clear()


def _finish(change: Change) -> None:
    """What a change still needs once its transaction committed: a discard empties the trash."""
    if change["op"] == "discard":
        remove_tree(Path(change["trash"]))


def _undo(change: Change, *, whole: bool) -> None:
    """Put back what ``change`` did, if it did it. A directory it created goes ``whole`` (a
    rollback: this call made it), else only if empty (a recovery, after other calls ran)."""
    op = change["op"]
    if op == "move":
        src, dst = Path(change["src"]), Path(change["dst"])
        if dst.exists() and not src.exists():
            src.parent.mkdir(parents=True, exist_ok=True)
            os.rename(dst, src)
    elif op == "created":
        if whole:
            remove_tree(Path(change["path"]))
        else:
            with contextlib.suppress(OSError):
                Path(change["path"]).rmdir()
    elif op == "discard":
        path, trash = Path(change["path"]), Path(change["trash"])
        if trash.exists() and not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            os.rename(trash, path)
    else:
        raise ValueError(f"unknown change {op!r}")


def recover(store: Store, known: Callable[[str], bool]) -> None:
    """Finish or undo what transactions killed mid-way changed on disk (their journals
    whose owner is gone); ``known(name)`` says whether the database holds a repository
    or group of that name. Run at start-up, before ``Store.sweep``."""
    journals = store.internal / "journal"
    with contextlib.suppress(OSError):
        for journal in sorted(journals.glob(f"*{_JOURNAL}")):
            _recover_journal(store.root, journal, known)


def _recover_journal(root: Path, journal: Path, known: Callable[[str], bool]) -> None:
    """Finish or undo the changes of a dead transaction's journal, newest first."""
    fd = lock_if_unowned(journal)
    if fd is None:
        return  # its transaction is still running
    try:
        with open(fd, "rb", closefd=False) as file:
            lines = file.read().splitlines()
        for line in reversed(lines):
            try:
                change = json.loads(line)
                if _committed(root, change, known):
                    _finish(change)
                else:
                    _undo(change, whole=False)
                    log.warning("recovered %s: undone, its transaction did not commit", line)
            except (ValueError, KeyError, TypeError, OSError) as exc:
                log.warning("recovering %s: cannot apply %r: %s", journal, line[:300], exc)
        journal.unlink(missing_ok=True)
    finally:
        os.close(fd)


def _committed(root: Path, change: Change, known: Callable[[str], bool]) -> bool:
    """A change committed if the database holds the row it made (a move, a new directory)
    or no longer holds the row it removed (a discard)."""
    if change["op"] == "move":
        return known(Path(change["dst"]).relative_to(root).as_posix())
    name = Path(change["path"]).relative_to(root).as_posix()
    return not known(name) if change["op"] == "discard" else known(name)
