"""The database going away under load: PostgreSQL restarted (fast and immediate) and stopped
under a real ``rpcserver serve``.

Every answer is a result or ``Database unavailable, try again`` — never ``Internal server
error``, never ``Invalid API key`` — and what the database holds afterwards matches the
answers: every success is there, whole; a write that answered the error is there at most
once, and only when its COMMIT was lost (the server logs each such COMMIT).

It needs a PostgreSQL cluster of its own (only such a cluster may be restarted), so it runs
in the PostgreSQL pass only.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import create_engine, text

from tests.databases import server_url
from tests.pgcluster import Cluster, binaries
from tests.server_process import ServerProcess

BIN = binaries()
UNAVAILABLE = "Database unavailable, try again"
THREADS = 4
#: Calls per thread at most: the load is bounded in count as well as in time.
MAX_CALLS = 1000
#: A pause between one thread's calls: while the database is down, an answer takes no time,
#: and the threads would otherwise spend their calls there.
PACE = 0.005

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(server_url() is None,
                       reason="PostgreSQL pass only (RPCSERVER_TEST_DATABASE_URL unset); it "
                              "restarts a throwaway cluster of its own"),
    pytest.mark.skipif(BIN is None, reason="PostgreSQL's initdb is not installed "
                                           "(/usr/lib/postgresql/*/bin/initdb)"),
]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    assert BIN is not None
    pg = Cluster(BIN).create()
    try:
        yield pg
    finally:
        pg.destroy()


@pytest.fixture(scope="module")
def server(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    base: Path = tmp_path_factory.mktemp("dbrestart")
    live = ServerProcess(instance=base / "instance", database_url=cluster.url).start()
    try:
        yield live
    finally:
        live.stop()


class Load:
    """Threads of mixed reads and writes; every answer kept with what it asked."""

    def __init__(self, server: ServerProcess, tag: str) -> None:
        self.server = server
        self.tag = tag
        self.stop = threading.Event()
        #: (method, name written or None, error text or None, time.monotonic() answered)
        self.answers: list[tuple[str, str | None, str | None, float]] = []
        self.failures: list[str] = []
        self.threads = [threading.Thread(target=self._run, args=(i,)) for i in range(THREADS)]

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(60)

    def _run(self, i: int) -> None:
        calls = [("create_user", "username"), ("get_user", None),
                 ("create_user_group", "group_name"), ("get_repos", None)]
        with requests.Session() as http:
            for n in range(MAX_CALLS):
                if self.stop.is_set():
                    return
                method, arg = calls[n % len(calls)]
                name = f"{self.tag}-{i}-{n}" if arg else None
                args: dict[str, Any] = {}
                if method == "create_user":
                    args = {"username": name, "email": f"{name}@example.com"}
                elif method == "create_user_group":
                    args = {"group_name": name}
                elif method == "get_user":
                    args = {"userid": "admin"}
                body: dict[str, Any] = {"id": n, "api_key": self.server.admin_key,
                                        "method": method, "args": args}
                try:
                    answer = http.post(self.server.api_url, json=body, timeout=30).json()
                except (requests.RequestException, ValueError) as exc:
                    self.failures.append(f"{method}: {exc!r}")
                    continue
                self.answers.append((method, name, answer["error"], time.monotonic()))
                time.sleep(PACE)

    def errors(self) -> Counter[str]:
        return Counter(error for _, _, error, _ in self.answers if error is not None)

    def since(self, moment: float) -> list[str | None]:
        return [error for _, _, error, when in self.answers if when > moment]


def stored(cluster: Cluster, tag: str) -> tuple[Counter[str], Counter[str], set[str]]:
    """Users and user groups named with ``tag`` (how many rows of each name), and the groups
    that have the default user's grant, written in the same transaction as the group."""
    engine = create_engine(cluster.url)
    try:
        with engine.connect() as conn:
            users = Counter(conn.scalars(text("SELECT username FROM users WHERE username "
                                              "LIKE :t"), {"t": f"{tag}-%"}))
            groups = Counter(conn.scalars(text("SELECT name FROM user_groups "
                                               "WHERE name LIKE :t"), {"t": f"{tag}-%"}))
            granted = set(conn.scalars(text(
                "SELECT g.name FROM user_groups g JOIN user_user_group_perms p "
                "ON p.target_group_id = g.id WHERE p.user_id = 1 AND g.name LIKE :t"),
                {"t": f"{tag}-%"}))
    finally:
        engine.dispose()
    return users, groups, granted


def test_restarts_under_load(cluster: Cluster, server: ServerProcess) -> None:
    tag = f"r{uuid.uuid4().hex[:6]}"
    log_before = len(server.read_log())
    with Load(server, tag) as load:
        time.sleep(1.0)
        first = time.monotonic()
        cluster.restart("fast")
        time.sleep(1.5)
        second = time.monotonic()
        cluster.restart("immediate")
        back = time.monotonic()
        time.sleep(1.5)
    assert load.failures == []
    errors = load.errors()
    late = load.since(second).count(UNAVAILABLE)
    print(f"\n{len(load.answers)} calls; errors: {dict(errors)}; during the fast restart: "
          f"{load.since(first).count(UNAVAILABLE) - late}, during the immediate one "
          f"({back - second:.2f} s): {late}")
    assert "Internal server error" not in errors
    assert set(errors) <= {UNAVAILABLE}, errors
    # The load ran before the restarts, and the server served again after them.
    assert [e for _, _, e, when in load.answers if when < first] != []
    assert None in load.since(back + 0.5)
    assert set(load.since(back + 0.5)) == {None}

    users, groups, granted = stored(cluster, tag)
    rows = users + groups
    assert max(rows.values(), default=1) == 1
    writes = [(m, name, e) for m, name, e, _ in load.answers if name is not None]
    lost = [name for _, name, e in writes if e is None and rows[name] != 1]
    assert lost == [], "writes that answered success are missing"
    assert set(groups) == granted, "a user group stored without its default grant"
    stored_anyway = [name for _, name, e in writes if e is not None and rows[name]]
    log = server.read_log()[log_before:]
    unknown_commits = log.count("lost during COMMIT")
    # Only a write whose COMMIT was lost may be stored although it answered the error.
    assert len(stored_anyway) <= unknown_commits, (stored_anyway, unknown_commits)
    print(f"retries: {log.count('retrying ')}; COMMITs lost: {unknown_commits}; "
          f"stored although answered an error: {len(stored_anyway)}")


def test_a_stopped_database_answers_unavailable(cluster: Cluster,
                                                server: ServerProcess) -> None:
    """Connection refused: reads, writes and an unknown key all answer the error (a script
    must not think its key is bad); the server serves again once the database is back."""
    name = f"s{uuid.uuid4().hex[:6]}"
    assert server.call("get_user", userid="admin")["error"] is None
    cluster.stop("fast")
    try:
        for method, args in [("get_user", {"userid": "admin"}),
                             ("create_user", {"username": name,
                                              "email": f"{name}@example.com"}),
                             ("get_repos", {})]:
            assert server.call(method, **args) == {"id": 1, "result": None,
                                                   "error": UNAVAILABLE}
        stranger = "rpck_" + "A" * 43
        assert server.call("get_user", key=stranger, userid="admin")["error"] == UNAVAILABLE
    finally:
        cluster.start()
    assert server.call("get_user", userid="admin")["error"] is None
    assert server.call("get_user", userid=name)["error"] == f"user `{name}` does not exist"
    assert server.call("get_user", key="rpck_" + "A" * 43, userid="admin")["error"] == \
        "Invalid API key"
