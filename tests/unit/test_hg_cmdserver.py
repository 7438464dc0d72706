"""Mercurial's command server as the hg runner uses it: the same answers as a fresh hg, the
same isolation from a repository's own hgrc, a timeout that kills, and recovery from a server
that died. Real hg throughout."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from rpcserver.vcs.hg import cmdserver
from rpcserver.vcs.hg.command import Hg, HgError, HgTimeout
from rpcserver.vcs.hg.repo import Repo
from tests.hgremotes import HgUpstream


@pytest.fixture
def hg(tmp_path: Path) -> Hg:
    return Hg.find(tmp_path / "internal" / "hgrc", timeout=30)


@pytest.fixture
def upstream(tmp_path: Path) -> HgUpstream:
    repo = HgUpstream(tmp_path / "up")
    repo.commit(3)
    return repo


def _servers(hg: Hg) -> list[cmdserver.CommandServer]:
    return [s for pool in cmdserver._pools.values() if pool.cwd == str(hg.hgrc.parent)
            for s in pool.idle]


def test_answers_match_a_fresh_hg(hg: Hg, upstream: HgUpstream) -> None:
    fresh = Hg(hg.version, hg.hgrc, hg.timeout, command_server=False)
    for reader in (Repo(hg, upstream.path), Repo(fresh, upstream.path)):
        assert reader.revisions() == [upstream.node(str(r)) for r in range(3)]
    assert Repo(hg, upstream.path).refs() == Repo(fresh, upstream.path).refs()
    assert len(_servers(hg)) == 1  # kept for the next command
    with pytest.raises(HgError) as failed:
        hg.run(["log", "-r", "nosuchrevision"], repo=upstream.path)
    assert failed.value.returncode == 255
    assert "nosuchrevision" in failed.value.detail
    assert Repo(hg, upstream.path).tip_and_count()[1] == 3  # the server still answers


def test_a_repositorys_hgrc_is_not_read(hg: Hg, upstream: HgUpstream, tmp_path: Path) -> None:
    marker = tmp_path / "hooked"
    (upstream.path / ".hg" / "hgrc").write_text(
        f"[hooks]\npre-log = touch {marker}\n[extensions]\nrebase =\n"
        "[alias]\nlog = log --rev null\n")
    assert len(Repo(hg, upstream.path).revisions()) == 3
    assert Repo(hg, upstream.path).revisions_dated()
    assert not marker.exists()


def test_a_timeout_kills_the_server_and_the_next_command_gets_a_new_one(
        hg: Hg, upstream: HgUpstream) -> None:
    Repo(hg, upstream.path).revisions()
    (before,) = _servers(hg)
    # A live holder of the repository's lock: hg waits for it, past our timeout.
    (upstream.path / ".hg" / "store" / "lock").symlink_to(f"{socket.gethostname()}:{os.getpid()}")
    started = time.monotonic()
    with pytest.raises(HgTimeout):
        hg.run(["recover"], repo=upstream.path, timeout=1)
    assert time.monotonic() - started < 10
    assert before.proc.poll() is not None  # killed, not left waiting on the lock
    assert before not in _servers(hg)
    (upstream.path / ".hg" / "store" / "lock").unlink()
    assert len(Repo(hg, upstream.path).revisions()) == 3


def test_a_server_that_died_while_idle_is_replaced(hg: Hg, upstream: HgUpstream) -> None:
    Repo(hg, upstream.path).revisions()
    (idle,) = _servers(hg)
    idle.proc.kill()
    idle.proc.wait()
    assert len(Repo(hg, upstream.path).revisions()) == 3
    (fresh,) = _servers(hg)
    assert fresh is not idle and fresh.proc.poll() is None


def test_a_forked_child_starts_its_own_server(hg: Hg, upstream: HgUpstream) -> None:
    Repo(hg, upstream.path).revisions()
    (parents,) = _servers(hg)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a gunicorn worker forked after the parent used hg
        try:
            ok = len(Repo(hg, upstream.path).revisions()) == 3 and parents not in _servers(hg)
            os.write(write, b"ok" if ok else b"no")
        finally:
            os._exit(0)
    os.close(write)
    answer = os.read(read, 2)
    os.waitpid(pid, 0)
    assert answer == b"ok"
    assert parents.proc.poll() is None and parents in _servers(hg)  # the parent's, untouched
    assert len(Repo(hg, upstream.path).revisions()) == 3


def test_servers_are_retired_after_max_uses(hg: Hg, upstream: HgUpstream,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cmdserver, "MAX_USES", 3)
    seen: set[int] = set()
    for _ in range(7):
        Repo(hg, upstream.path).revisions()
        seen.update(s.proc.pid for s in _servers(hg))
    assert len(seen) >= 3
    assert len(_servers(hg)) == 1
