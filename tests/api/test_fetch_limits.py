"""Remotes that accept a connection and then say nothing: git is killed after
``git_stall_timeout`` (not ``git_timeout``), and one user runs at most
``max_fetches_per_user`` network fetches at once. Real git against real loopback sockets."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rpcserver.core.config import Config
from rpcserver.db.database import Database
from tests import gitremotes
from tests.answers import err, ok
from tests.conftest import ApiUser, Rpc
from tests.gitremotes import (
    Blackhole,
    GitDaemon,
    Upstream,
    api_caller,
    leftovers,
    on_disk,
    snapshot,
)

remotes = gitremotes.remotes
upstream = gitremotes.upstream
daemon = gitremotes.daemon

#: The stall timeout of these tests; git_timeout stays far above it, so only the stall
#: timeout can end a call within ``QUICK`` seconds.
STALL = 2
QUICK = 8.0


@pytest.fixture
def config(config: Config) -> Config:
    return dataclasses.replace(config, clone_uri_allow_private_hosts=True, git_timeout=40,
                               git_stall_timeout=STALL)


@pytest.fixture
def silent() -> Iterator[Blackhole]:
    """A TCP port on 127.0.0.1 whose connections are accepted (by the kernel) and never
    answered."""
    hole = Blackhole()
    try:
        yield hole
    finally:
        hole.stop()


def silent_url(hole: Blackhole, transport: str) -> str:
    return f"{transport}://127.0.0.1:{hole.port}/x"


@pytest.mark.parametrize("transport", ["git", "http"])
def test_a_silent_remote_fails_create_after_the_stall_timeout(
        rpc: Rpc, config: Config, silent: Blackhole, transport: str) -> None:
    started = time.monotonic()
    assert err(rpc("create_repo", repo_name="m", clone_uri=silent_url(silent, transport))) == \
        "failed to create repository `m`"
    assert time.monotonic() - started < QUICK
    assert err(rpc("get_repo", repoid="m")) == "repository `m` does not exist"
    assert on_disk(config.repos_root) == []
    assert leftovers(config.repos_root) == []


@pytest.mark.parametrize("transport", ["git", "http"])
def test_a_silent_remote_fails_pull_after_the_stall_timeout(
        rpc: Rpc, config: Config, upstream: Upstream, daemon: GitDaemon, silent: Blackhole,
        transport: str) -> None:
    ok(rpc("create_repo", repo_name="m", clone_uri=daemon.url("up")))
    upstream.commit(2)
    before = snapshot(Path(config.repos_root) / "m")
    started = time.monotonic()
    assert err(rpc("pull", repoid="m", clone_uri=silent_url(silent, transport))) == \
        "Unable to pull changes from `m`"
    assert time.monotonic() - started < QUICK
    assert snapshot(Path(config.repos_root) / "m") == before
    assert leftovers(config.repos_root) == []


def scratch_dirs(config: Config) -> list[str]:
    return [name for name in leftovers(config.repos_root) if not name.endswith(".lock")]


def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def in_background(call: Callable[..., dict[str, Any]], method: str,
                  **args: Any) -> tuple[threading.Thread, list[dict[str, Any]]]:
    answers: list[dict[str, Any]] = []
    thread = threading.Thread(target=lambda: answers.append(call(method, **args)))
    thread.start()
    return thread, answers


def test_one_user_runs_at_most_two_fetches_at_once(
        rpc: Rpc, config: Config, db: Database, upstream: Upstream, daemon: GitDaemon,
        silent: Blackhole, make_user: Callable[..., ApiUser]) -> None:
    bob, carol = make_user("bob"), make_user("carol")
    patient = dataclasses.replace(config, git_stall_timeout=5)  # room for a busy machine
    hanging = [in_background(api_caller(patient, db, bob.key), "create_repo",
                             repo_name=f"hang{i}", clone_uri=silent_url(silent, "git"))
               for i in range(2)]
    wait_for(lambda: len(scratch_dirs(config)) == 2)  # both fetching now
    started = time.monotonic()
    assert err(rpc("create_repo", repo_name="third", clone_uri=daemon.url("up"),
                   key=bob.key)) == "too many fetches running for user `bob`, try again later"
    assert time.monotonic() - started < 2
    # An empty repository fetches nothing; another user fetches freely.
    ok(rpc("create_repo", repo_name="empty", key=bob.key))
    ok(rpc("create_repo", repo_name="carols", clone_uri=daemon.url("up"), key=carol.key))
    assert len(scratch_dirs(config)) == 2  # bob's two still hang
    for thread, _answers in hanging:
        thread.join()
    assert sorted(err(answers[0]) for _thread, answers in hanging) == [
        "failed to create repository `hang0`", "failed to create repository `hang1`"]
    ok(rpc("create_repo", repo_name="third", clone_uri=daemon.url("up"), key=bob.key))
    assert on_disk(config.repos_root) == ["carols", "empty", "third"]
    assert leftovers(config.repos_root) == []


def test_admins_too_and_pulls_too(rpc: Rpc, config: Config, db: Database, admin_key: str,
                                  upstream: Upstream, daemon: GitDaemon, silent: Blackhole,
                                  remotes: Path) -> None:
    """An admin's key is no less able to tie up the server's threads; forks and a fork's
    pull from its parent are local and take no slot."""
    ok(rpc("create_repo", repo_name="m", clone_uri=daemon.url("up")))
    ok(rpc("fork_repo", repoid="m", fork_name="f"))
    one = dataclasses.replace(config, max_fetches_per_user=1, git_stall_timeout=5)
    thread, answers = in_background(api_caller(one, db, admin_key), "pull", repoid="m",
                                    clone_uri=silent_url(silent, "http"))
    wait_for(lambda: len(scratch_dirs(config)) == 1)
    call = api_caller(one, db, admin_key)
    too_many = "too many fetches running for user `admin`, try again later"
    assert err(call("create_repo", repo_name="n", clone_uri=daemon.url("up"))) == too_many
    assert err(call("pull", repoid="m", clone_uri=daemon.url("up"))) == too_many
    ok(call("fork_repo", repoid="m", fork_name="f2"))
    ok(call("pull", repoid="f"))
    thread.join()
    assert err(answers[0]) == "Unable to pull changes from `m`"
    ok(call("pull", repoid="m"))
    assert leftovers(config.repos_root) == []
