"""kill -9 in the middle of a pull, a create or a fork loses nothing and leaves nothing.

A real server (one gunicorn worker) clones from a loopback remote that never answers, so the
call is certainly mid-way when its worker, or the whole server, is killed. The worker gunicorn
starts in its place, or the restarted server, sweeps the dead call's scratch space at once;
the repository is as before the call, and the same call can be made again.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests import gitremotes
from tests.databases import scratch_database, server_url
from tests.gitremotes import Blackhole, GitDaemon, Upstream, git, leftovers
from tests.server_process import ServerProcess

remotes = gitremotes.remotes
upstream = gitremotes.upstream  # three commits on master
daemon = gitremotes.daemon


@pytest.fixture
def blackhole() -> Iterator[Blackhole]:
    found = Blackhole()
    yield found
    found.stop()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with scratch_database(tmp_path, "kill9", server_url()) as url:
        found = ServerProcess(instance=tmp_path / "instance", database_url=url, workers=1,
                              extra_env={"RPCSERVER_CLONE_URI_ALLOW_PRIVATE_HOSTS": "true",
                                         "RPCSERVER_GIT_TIMEOUT": "20",
                                         "RPCSERVER_GIT_STALL_TIMEOUT": "20"})
        found.start()
        try:
            yield found
        finally:
            found.stop()


def repos_root(server: ServerProcess) -> Path:
    return server.instance / "repos"


def scratch(server: ServerProcess) -> list[str]:
    tmp = repos_root(server) / ".rpcserver" / "tmp"
    return sorted(p.name for p in tmp.iterdir()) if tmp.is_dir() else []


def worker_pid(server: ServerProcess) -> int:
    assert server.process is not None
    found = subprocess.run(["pgrep", "-P", str(server.process.pid)], capture_output=True,
                           text=True).stdout.split()
    assert len(found) == 1, found
    return int(found[0])


def call_in_background(server: ServerProcess, method: str, **args: str) -> threading.Thread:
    """The call, in a thread; its connection dies with the worker, so its answer is lost."""
    def call() -> None:
        with contextlib.suppress(requests.RequestException):
            server.call(method, **args)

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    return thread


def wait_for(condition: object, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def kill_worker_mid_call(server: ServerProcess, purpose: str) -> None:
    """kill -9 the worker once git works in a scratch directory for ``purpose``; wait for
    the new worker to answer, and for the dead call's git to be gone."""
    wait_for(lambda: any(name.startswith(f"{purpose}-") and not name.endswith(".lock")
                         for name in scratch(server)), f"{purpose} scratch")
    [busy] = [n for n in scratch(server) if not n.endswith(".lock")]
    wait_for(lambda: gits_in(busy), "git to start")
    old = worker_pid(server)
    os.kill(old, signal.SIGKILL)
    wait_for(lambda: _answers(server) and worker_pid(server) != old, "a new worker")
    # The kernel kills git with the worker; nothing would, otherwise, before git's own end.
    wait_for(lambda: not gits_in(busy), "the dead call's git to die", timeout=5)


def gits_in(scratch_name: str) -> list[str]:
    """The ``git --git-dir=<scratch>`` processes running."""
    found = subprocess.run(["pgrep", "-f", f"git-dir=.*/{scratch_name}( |$)"],
                           capture_output=True, text=True).stdout
    return found.split()


def _answers(server: ServerProcess) -> bool:
    try:
        return server.call("get_ip")["error"] is None
    except requests.RequestException:
        return False


def ok(answer: dict[str, object]) -> object:
    assert answer["error"] is None, answer
    return answer["result"]


def test_kill_during_create_from_a_remote(server: ServerProcess, blackhole: Blackhole,
                                          daemon: GitDaemon, upstream: Upstream) -> None:
    thread = call_in_background(server, "create_repo", repo_name="r",
                                clone_uri=f"http://127.0.0.1:{blackhole.port}/r")
    kill_worker_mid_call(server, "new")
    thread.join(30)
    assert scratch(server) == []
    assert server.call("get_repo", repoid="r")["error"] == "repository `r` does not exist"
    assert leftovers(str(repos_root(server))) == []
    # The name is free, and the user's fetch slot was given back by the dead worker.
    created = ok(server.call("create_repo", repo_name="r", clone_uri=daemon.url("up")))
    assert created["success"] is True  # type: ignore[index]
    assert len(ok(server.call("get_changesets", repoid="r"))) == 3  # type: ignore[arg-type]


def test_kill_during_pull(server: ServerProcess, blackhole: Blackhole, daemon: GitDaemon,
                          upstream: Upstream) -> None:
    ok(server.call("create_repo", repo_name="p", clone_uri=daemon.url("up")))
    before = git("for-each-ref", git_dir=repos_root(server) / "p")
    upstream.commit(2)
    thread = call_in_background(server, "pull", repoid="p",
                                clone_uri=f"http://127.0.0.1:{blackhole.port}/p")
    kill_worker_mid_call(server, "pull")
    thread.join(30)
    assert scratch(server) == []
    assert git("for-each-ref", git_dir=repos_root(server) / "p") == before
    git("fsck", "--no-progress", git_dir=repos_root(server) / "p")
    # The repository's lock died with the worker: the next pull runs and brings the commits.
    ok(server.call("pull", repoid="p"))
    assert len(ok(server.call("get_changesets", repoid="p"))) == 5  # type: ignore[arg-type]


def test_kill_the_whole_server_during_create(server: ServerProcess, blackhole: Blackhole,
                                             daemon: GitDaemon, upstream: Upstream) -> None:
    thread = call_in_background(server, "create_repo", repo_name="w",
                                clone_uri=f"http://127.0.0.1:{blackhole.port}/w")
    wait_for(lambda: any(n.startswith("new-") for n in scratch(server)), "new scratch")
    assert server.process is not None
    worker = worker_pid(server)
    os.kill(server.process.pid, signal.SIGKILL)
    os.kill(worker, signal.SIGKILL)
    server.process.wait()
    thread.join(30)
    assert any(n.startswith("new-") for n in scratch(server))  # no one swept yet
    server.stop()
    server.start()
    assert scratch(server) == []
    assert server.call("get_repo", repoid="w")["error"] == "repository `w` does not exist"
    ok(server.call("create_repo", repo_name="w", clone_uri=daemon.url("up")))


def test_kill_at_random_moments_of_forks(server: ServerProcess, daemon: GitDaemon,
                                         upstream: Upstream) -> None:
    """Each fork is there whole (its row and its directory) or not at all."""
    upstream.commit(200, files=20)
    ok(server.call("create_repo", repo_name="src", clone_uri=daemon.url("up")))
    rng = random.Random(9)  # noqa: S311 -- when to kill, not a secret
    names: list[str] = []
    for round_ in range(3):
        stop = threading.Event()

        def fork_until_stopped(round_: int = round_, stop: threading.Event = stop) -> None:
            i = 0
            while not stop.is_set():
                name = f"fork-{round_}-{i}"
                names.append(name)
                try:
                    server.call("fork_repo", repoid="src", fork_name=name)
                except requests.RequestException:
                    return
                i += 1

        thread = threading.Thread(target=fork_until_stopped, daemon=True)
        thread.start()
        time.sleep(rng.uniform(0.3, 1.5))
        old = worker_pid(server)
        os.kill(old, signal.SIGKILL)
        stop.set()
        thread.join(30)
        wait_for(lambda old=old: _answers(server) and worker_pid(server) != old, "a new worker")
    assert scratch(server) == []
    assert leftovers(str(repos_root(server))) == []
    for name in names:
        answer = server.call("get_repo", repoid=name)
        on_disk = (repos_root(server) / name).is_dir()
        if answer["error"] is None:
            assert on_disk, name
            git("fsck", "--no-progress", git_dir=repos_root(server) / name)
        else:
            assert answer["error"] == f"repository `{name}` does not exist"
            assert not on_disk, name
