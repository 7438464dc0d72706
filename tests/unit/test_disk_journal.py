"""A transaction's disk changes survive the death of its process: ``vcs.journal.recover``
finishes or undoes them as the database says the transaction ended.

Each case kills a real process with SIGKILL after it made a change and before its transaction
ended, then recovers with the database's answer played by ``known``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rpcserver.vcs import DiskChanges, Store
from rpcserver.vcs.journal import recover


def killed_after(root: Path, change: str) -> None:
    """Run ``change`` (Python, with ``changes`` a DiskChanges on ``root``) in a process and
    kill it with SIGKILL once the change is made."""
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from rpcserver.vcs import DiskChanges, Store
        root = Path({str(root)!r})
        changes = DiskChanges(Store.at(str(root)))
        {change}
        print("changed", flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"changed\n"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    store = Store.at(str(tmp_path))
    store.ensure()
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "HEAD").write_text("x")
    return tmp_path


def journals(root: Path) -> list[Path]:
    return list((root / ".rpcserver" / "journal").iterdir())


@pytest.mark.parametrize("committed", [False, True])
def test_a_move(root: Path, committed: bool) -> None:
    killed_after(root, 'changes.move(root / "old", root / "g" / "new")')
    assert (root / "g" / "new" / "HEAD").exists() and len(journals(root)) == 1
    asked: list[str] = []

    def known(name: str) -> bool:
        asked.append(name)
        return committed

    recover(Store.at(str(root)), known)
    assert asked == ["g/new"]
    assert (root / "g" / "new").exists() is committed
    assert (root / "old").exists() is not committed
    assert journals(root) == []


@pytest.mark.parametrize("committed", [False, True])
def test_a_discard(root: Path, committed: bool) -> None:
    killed_after(root, 'changes.discard(root / "old")')
    assert not (root / "old").exists()
    # Committed: the row is gone (known says no) and the trash is emptied; else restored.
    recover(Store.at(str(root)), lambda name: not committed)
    assert (root / "old" / "HEAD").exists() is not committed
    assert list((root / ".rpcserver" / "trash").iterdir()) == []
    assert journals(root) == []


def test_a_new_directory_that_did_not_commit_goes(root: Path) -> None:
    killed_after(root, '(root / "grp").mkdir(); changes.created(root / "grp")')
    recover(Store.at(str(root)), lambda name: False)
    assert not (root / "grp").exists() and journals(root) == []


def test_a_live_transaction_is_left_alone(root: Path) -> None:
    changes = DiskChanges(Store.at(str(root)))
    changes.move(root / "old", root / "new")
    recover(Store.at(str(root)), lambda name: False)
    assert (root / "new").exists() and len(journals(root)) == 1
    changes.commit()
    assert journals(root) == []


def test_a_rollback_undoes_and_leaves_no_journal(root: Path) -> None:
    changes = DiskChanges(Store.at(str(root)))
    changes.move(root / "old", root / "new")
    changes.rollback()
    assert (root / "old").exists() and not (root / "new").exists()
    assert journals(root) == []


def test_without_an_answer_from_the_database_the_journal_is_kept(root: Path) -> None:
    killed_after(root, 'changes.move(root / "old", root / "new")')

    def unavailable(name: str) -> bool:
        raise RuntimeError("database down")

    with pytest.raises(RuntimeError):
        recover(Store.at(str(root)), unavailable)
    assert len(journals(root)) == 1
    recover(Store.at(str(root)), lambda name: False)
    assert (root / "old").exists() and journals(root) == []
