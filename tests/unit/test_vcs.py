"""The git layer against real repositories and real remotes on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rpcserver.vcs import (
    Busy,
    DiskChanges,
    Git,
    GitError,
    GitTimeout,
    NoSuchPath,
    Repo,
    Store,
    TooMany,
    name_problem,
)
from rpcserver.vcs.clone_uri import Policy, Source, check
from rpcserver.vcs.git import fetch as vcs_fetch
from rpcserver.vcs.git.command import parse_version
from tests.gitremotes import (
    Blackhole,
    GitDaemon,
    SmartHttp,
    Upstream,
    git,
    running,
    snapshot,
    wide_commit,
)

LAN = Policy(allow_private_hosts=True)


@pytest.fixture
def gitx() -> Git:
    return Git.find(timeout=20)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.at(str(tmp_path / "repos"))


@pytest.fixture
def upstream(tmp_path: Path) -> Upstream:
    up = Upstream(tmp_path / "remotes" / "up")
    up.commit(3)
    up.tag("v1", message="release one")
    up.tag("light")
    up.commit(2, branch="dev", base="master", files=3)
    return up


@pytest.fixture
def daemon(tmp_path: Path, upstream: Upstream) -> Iterator[GitDaemon]:
    with running(GitDaemon(tmp_path / "remotes")) as server:
        yield server


@pytest.fixture
def http(tmp_path: Path, upstream: Upstream) -> Iterator[SmartHttp]:
    with running(SmartHttp(tmp_path / "remotes", credentials=("bob", "s3cret"))) as server:
        yield server


def clone(gitx: Git, store: Store, source: Source, name: str = "mirror") -> Repo:
    path = store.root / name
    path.mkdir(parents=True)
    vcs_fetch.clone_new(gitx, path, source)
    return Repo(gitx, path)


# -- the runner --------------------------------------------------------------------------


def test_version_parsing() -> None:
    assert parse_version("git version 2.39.5") == (2, 39, 5)
    assert parse_version("git version 2.45.1.windows.1") == (2, 45, 1)
    assert parse_version("nonsense") == (0,)


def test_a_timeout_kills_git_and_its_helpers(gitx: Git, tmp_path: Path) -> None:
    hole = Blackhole()
    try:
        target = tmp_path / "t"
        vcs_fetch.init_bare(gitx, target)
        source = check(f"http://127.0.0.1:{hole.port}/r", LAN)
        started = time.monotonic()
        with pytest.raises(GitTimeout):
            Git(gitx.executable, gitx.version, timeout=1.0).run(
                [*vcs_fetch.FETCH, "--", vcs_fetch.REMOTE, *vcs_fetch.REFSPECS],
                git_dir=str(target), protocols=source.protocols,
                config=[(f"remote.{vcs_fetch.REMOTE}.url", source.url)])
        assert time.monotonic() - started < 5
        leftover = subprocess.run(["pgrep", "-f", f"127.0.0.1:{hole.port}"],
                                  capture_output=True, text=True).stdout
        assert leftover.strip() == ""
    finally:
        hole.stop()


def test_errors_never_carry_a_password(gitx: Git, tmp_path: Path, http: SmartHttp) -> None:
    target = tmp_path / "t"
    vcs_fetch.init_bare(gitx, target)
    source = check(http.url("up", "bob", "wrong-pass"), LAN)
    with pytest.raises(GitError) as exc:
        vcs_fetch.fetch(gitx, target, source)
    assert "wrong-pass" not in str(exc.value)


def test_the_protocol_allow_list_is_enforced(gitx: Git, tmp_path: Path,
                                             upstream: Upstream) -> None:
    target = tmp_path / "t"
    vcs_fetch.init_bare(gitx, target)
    local = Source(url=str(upstream.path), scheme="file", protocols=("https",))
    with pytest.raises(GitError, match="transport 'file' not allowed"):
        vcs_fetch.fetch(gitx, target, local)


def test_git_ignores_the_service_accounts_git_environment(
        gitx: Git, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rpcserver.vcs.git import command as git_module

    monkeypatch.setenv("GIT_DIR", "/nonexistent")
    git_module._base_environment.cache_clear()
    try:
        vcs_fetch.init_bare(gitx, tmp_path / "ok")
        assert (tmp_path / "ok" / "HEAD").is_file()
    finally:
        monkeypatch.delenv("GIT_DIR")
        git_module._base_environment.cache_clear()


# -- names and the store ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["r", "g/r", "a/b/c-d_e.f", "R2", "0day"])
def test_good_names(name: str) -> None:
    assert name_problem(name) is None


@pytest.mark.parametrize("name", ["", "/r", "r/", "a//b", "..", "a/../b", ".hidden", "-x",
                                  "a/-x", "r.git", "g/R.GIT", "a b", "r\n", "a/./b", "x.",
                                  "a..b", "_admin", "é", "a" * 101, "a/" * 128 + "a"])
def test_bad_names(name: str) -> None:
    assert name_problem(name) is not None


def test_store_paths_stay_inside_the_root(store: Store, tmp_path: Path) -> None:
    store.root.mkdir(parents=True)
    assert store.path("g/r") == store.root / "g" / "r"
    (tmp_path / "outside").mkdir()
    os.symlink(tmp_path / "outside", store.root / "link")
    with pytest.raises(Exception, match="outside"):
        store.path("link/r")
    with pytest.raises(Exception, match="must"):
        store.path("../r")


def test_disk_changes_undo_in_reverse(store: Store) -> None:
    store.root.mkdir(parents=True)
    (store.root / "a").mkdir()
    (store.root / "a" / "f").write_text("x")
    changes = DiskChanges(store)
    changes.move(store.root / "a", store.root / "g" / "b")
    changes.discard(store.root / "g" / "b")
    assert not (store.root / "g" / "b").exists()
    changes.rollback()
    assert (store.root / "a" / "f").read_text() == "x"
    changes = DiskChanges(store)
    changes.discard(store.root / "a")
    changes.commit()
    assert not (store.root / "a").exists()
    assert list((store.internal / "trash").iterdir()) == []


def test_locks_exclude_threads_and_processes(store: Store) -> None:
    lock = store.lock(7)
    lock.acquire(0)
    try:
        with pytest.raises(Busy):
            store.lock(7).acquire(0)
        with store.lock(8).held(0):  # another repository is not blocked
            pass
        with pytest.raises(Busy):  # several at once: all or none
            store.lock(6, 7, 8).acquire(0)
        with store.lock(6, 8).held(0):
            pass
        script = ("import sys\nfrom rpcserver.vcs.store import Busy, Store\n"
                  "try: Store.at(sys.argv[1]).lock(7).acquire(0)\n"
                  "except Busy: sys.exit(3)\n")
        other = subprocess.run([sys.executable, "-c", script, str(store.root)],
                               cwd=Path(__file__).parents[2])
        assert other.returncode == 3
        released = threading.Timer(0.2, lock.release)
        released.start()
        with store.lock(7).held(5):  # waits until the holder lets go
            pass
    finally:
        lock.release()


# -- reading ------------------------------------------------------------------------------


def test_reading_refs_revisions_commits_and_trees(gitx: Git, store: Store, daemon: GitDaemon,
                                                  upstream: Upstream) -> None:
    repo = clone(gitx, store, check(daemon.url("up"), LAN))
    refs = repo.refs()
    assert set(refs.branches) == {"master", "dev"}
    assert refs.tags["v1"] == refs.branches["master"]  # peeled
    assert refs.raw["refs/tags/v1"] != refs.branches["master"]  # the tag object itself
    assert repo.head() == "refs/heads/master"
    revisions = repo.revisions()
    assert len(revisions) == repo.count() == 5
    tip = repo.tip()
    assert tip is not None and tip.raw_id == revisions[-1] == refs.branches["dev"]
    assert tip.message == "change 5\n\nbody of commit 5\n"  # exactly as git stores it
    assert tip.author == "A U Thor <author@example.com>"
    assert tip.date.isoformat() == "2024-01-01T00:05:00"
    assert repo.resolve("tip") == tip.raw_id
    assert repo.resolve("0") == revisions[0]
    assert repo.resolve("dev") == tip.raw_id
    assert repo.resolve("v1") == refs.branches["master"]
    assert repo.resolve(tip.raw_id[:7]) == tip.raw_id
    for bad in ("--output=/tmp/x", "HEAD~1", "master@{0}", "zz", "99", "deadbeef"):
        assert repo.resolve(bad) is None
    first, second = repo.commits(revisions[:2], with_files=True)
    assert (first.added, first.changed, first.removed) == (["master.txt"], [], [])
    assert (second.added, second.changed) == ([], ["master.txt"])
    fourth = repo.commits([revisions[3]], with_files=True)[0]
    assert fourth.added is not None
    assert sorted(fourth.added) == ["dir0/file0.txt", "dir1/file1.txt", "dir2/file2.txt"]
    tree = repo.tree(tip.raw_id, "")
    assert tree.dirs == ["dir0", "dir1", "dir2"]
    assert tree.files == ["master.txt", "dir0/file0.txt", "dir1/file1.txt", "dir2/file2.txt"]
    assert repo.tree(tip.raw_id, "dir1").files == ["dir1/file1.txt"]
    with pytest.raises(NoSuchPath):
        repo.tree(tip.raw_id, "master.txt")


# -- pulling ------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["git", "http"])
def test_pull_brings_new_commits_tags_and_prunes(gitx: Git, store: Store, daemon: GitDaemon,
                                                 http: SmartHttp, upstream: Upstream,
                                                 transport: str) -> None:
    url = daemon.url("up") if transport == "git" else http.url("up", "bob", "s3cret")
    source = check(url, LAN)
    repo = clone(gitx, store, source)
    new = upstream.commit(2)
    upstream.tag("v2")
    git("branch", "-D", "dev", git_dir=upstream.path)
    result = vcs_fetch.pull(gitx, store, repo.path, source)
    refs = repo.refs()
    assert refs.branches == {"master": new[-1]}
    assert set(refs.tags) == {"v1", "light", "v2"}
    assert {ref for ref, _old, _new in result.changes} == {
        "refs/heads/master", "refs/heads/dev", "refs/tags/v2"}
    assert vcs_fetch.pull(gitx, store, repo.path, source).changes == []
    assert list((store.internal / "tmp").iterdir()) == []


def test_pull_moves_head_off_a_deleted_branch(gitx: Git, store: Store, daemon: GitDaemon,
                                              upstream: Upstream) -> None:
    source = check(daemon.url("up"), LAN)
    repo = clone(gitx, store, source)
    git("symbolic-ref", "HEAD", "refs/heads/dev", git_dir=upstream.path)
    git("branch", "-D", "master", git_dir=upstream.path)
    vcs_fetch.pull(gitx, store, repo.path, source)
    assert repo.head() == "refs/heads/dev"


def test_create_from_a_remote_takes_its_head(gitx: Git, store: Store, daemon: GitDaemon,
                                             upstream: Upstream) -> None:
    git("symbolic-ref", "HEAD", "refs/heads/dev", git_dir=upstream.path)
    repo = clone(gitx, store, check(daemon.url("up"), LAN))
    assert repo.head() == "refs/heads/dev"


@pytest.mark.parametrize("behaviour", ["die", "delete", "stall", "auth"])
def test_a_failed_pull_leaves_the_repository_exactly_as_it_was(
        gitx: Git, store: Store, http: SmartHttp, upstream: Upstream, behaviour: str) -> None:
    good = check(http.url("up", "bob", "s3cret"), LAN)
    repo = clone(gitx, store, good)
    upstream.commit(30, files=5)
    upstream.tag("v9")
    before = snapshot(repo.path)
    source = check(http.url("up", "bob", "nope"), LAN) if behaviour == "auth" else good
    http.behaviour = behaviour if behaviour != "auth" else "normal"
    quick = Git(gitx.executable, gitx.version, timeout=1.5)
    with pytest.raises(GitError):
        vcs_fetch.pull(quick, store, repo.path, source)
    assert snapshot(repo.path) == before
    assert list((store.internal / "tmp").iterdir()) == []


def test_undo_restores_refs_and_removes_the_new_objects(
        gitx: Git, store: Store, daemon: GitDaemon, upstream: Upstream) -> None:
    source = check(daemon.url("up"), LAN)
    repo = clone(gitx, store, source)
    before = snapshot(repo.path)
    upstream.commit(3)
    git("branch", "-D", "dev", git_dir=upstream.path)
    result = vcs_fetch.pull(gitx, store, repo.path, source)
    assert snapshot(repo.path) != before
    vcs_fetch.undo(gitx, repo.path, result)
    assert snapshot(repo.path) == before


def test_fork_is_a_real_clone_without_a_remote(gitx: Git, store: Store, daemon: GitDaemon,
                                               upstream: Upstream) -> None:
    repo = clone(gitx, store, check(daemon.url("up"), LAN))
    vcs_fetch.fork(gitx, repo.path, store.root / "fork")
    forked = Repo(gitx, store.root / "fork")
    assert forked.refs().raw == repo.refs().raw
    assert "remote" not in git("config", "--list", git_dir=forked.path)


def test_a_missing_git_is_reported_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    from rpcserver.vcs import GitMissing
    from rpcserver.vcs.git import command as git_module

    git_module._locate.cache_clear()
    monkeypatch.setenv("PATH", "/nonexistent")
    try:
        with pytest.raises(GitMissing, match="git was not found on PATH"):
            Git.find(timeout=10)
    finally:
        monkeypatch.undo()
        git_module._locate.cache_clear()
    assert Git.find(timeout=10).version >= (2, 32)


def test_pull_into_a_repository_with_a_symbolic_branch(gitx: Git, store: Store,
                                                       daemon: GitDaemon,
                                                       upstream: Upstream) -> None:
    source = check(daemon.url("up"), LAN)
    repo = clone(gitx, store, source)
    git("symbolic-ref", "refs/heads/alias", "refs/heads/master", git_dir=repo.path)
    new = upstream.commit(1)
    vcs_fetch.pull(gitx, store, repo.path, source)
    assert repo.refs().branches["master"] == new[0]


def test_watch_stops_git_once_told(gitx: Git, tmp_path: Path) -> None:
    """What ``stop`` refuses is never read: git is killed at the first piece."""
    git("init", "--bare", "--quiet", str(tmp_path / "wide"))
    wide_commit(tmp_path / "wide", 50_000)
    args = ["ls-tree", "-r", "-z", "HEAD"]
    everything = gitx.run(args, git_dir=str(tmp_path / "wide"))
    pieces: list[bytes] = []

    def enough(chunk: bytes) -> bool:
        pieces.append(chunk)
        return True

    read = gitx.watch(args, git_dir=str(tmp_path / "wide"), stop=enough)
    assert len(pieces) == 1 and read == pieces[0]
    assert 0 < len(read) < len(everything) and everything.startswith(read)
    head = gitx.run(["rev-parse", "HEAD"], git_dir=str(tmp_path / "wide")).decode().strip()
    with pytest.raises(TooMany):
        Repo(gitx, tmp_path / "wide").tree(head, "", at_most=10)
