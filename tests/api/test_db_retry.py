"""The retry rule, in-process, with real database failures.

PostgreSQL: the call's own backend is terminated (``pg_terminate_backend``, as a restart does
to every connection) at a chosen moment: during the write's INSERT, the write runs once more
and succeeds; just before its COMMIT reaches the server, it is not run again (a lost COMMIT
may have committed) and answers ``Database unavailable, try again``. SQLite: a file locked
past the busy timeout, or one that cannot be opened, answers the same text. The whole
restart, under load, is tests/security/test_db_restart.py.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from werkzeug.test import Client

from rpcserver.api import build_registry
from rpcserver.core.config import Config
from rpcserver.db import database as db_module
from rpcserver.db.database import Database
from rpcserver.web.app import create_app
from tests.databases import server_url

UNAVAILABLE = "Database unavailable, try again"

postgresql_only = pytest.mark.skipif(server_url() is None,
                                     reason="terminates its own PostgreSQL backend")
sqlite_only = pytest.mark.skipif(server_url() is not None, reason="SQLite's own errors")


def call(client: Client, key: str, method: str, **args: Any) -> dict[str, Any]:
    body = {"id": 1, "api_key": key, "method": method, "args": args}
    answer: dict[str, Any] = client.post("/_admin/api", json=body).get_json()
    return answer


@pytest.fixture
def own_db(db: Database, database_url: str) -> Iterator[Database]:
    """A Database of its own on the test's database, so that the events a test listens with
    leave the shared one alone."""
    mine = Database.connect(database_url)
    yield mine
    mine.dispose()


def client_for(config: Config, database: Database) -> Client:
    return Client(create_app(config, registry=build_registry(), db=database))


class Terminator:
    """Terminates the backend of the write that inserts a user, at ``when``: ``"insert"``
    (before the INSERT is sent) or ``"commit"`` (before the COMMIT is sent); once."""

    def __init__(self, mine: Database, admin: Database, when: str) -> None:
        self.admin = admin
        self.when = when
        self.armed = True
        self.inserting: set[int] = set()
        event.listen(mine.engine, "before_cursor_execute", self.before_execute)
        event.listen(mine.engine, "commit", self.before_commit)

    def kill(self, conn: Any) -> None:
        self.armed = False
        pid = conn.connection.dbapi_connection.info.backend_pid
        with self.admin.engine.connect() as other:
            assert other.scalar(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})

    def before_execute(self, conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("INSERT INTO users"):
            self.inserting.add(id(conn))
            if self.armed and self.when == "insert":
                self.kill(conn)

    def before_commit(self, conn: Any) -> None:
        if self.armed and self.when == "commit" and id(conn) in self.inserting:
            self.kill(conn)


@postgresql_only
def test_a_write_whose_connection_died_mid_way_runs_once_more(
        config: Config, db: Database, own_db: Database, admin_key: str,
        caplog: pytest.LogCaptureFixture) -> None:
    client = client_for(config, own_db)
    terminator = Terminator(own_db, db, "insert")
    with caplog.at_level(logging.WARNING):
        answer = call(client, admin_key, "create_user", username="again",
                      email="again@example.com")
    assert not terminator.armed
    assert answer["error"] is None
    assert answer["result"]["msg"] == "created new user `again`"
    assert "retrying 'create_user' once" in caplog.text
    assert call(client, admin_key, "get_user", userid="again")["result"]["username"] == "again"


@postgresql_only
def test_a_write_whose_commit_was_lost_is_not_run_again(
        config: Config, db: Database, own_db: Database, admin_key: str,
        caplog: pytest.LogCaptureFixture) -> None:
    client = client_for(config, own_db)
    terminator = Terminator(own_db, db, "commit")
    with caplog.at_level(logging.WARNING):
        answer = call(client, admin_key, "create_user", username="lost",
                      email="lost@example.com")
    assert not terminator.armed
    assert answer == {"id": 1, "result": None, "error": UNAVAILABLE}
    assert "lost during COMMIT" in caplog.text
    assert "retrying" not in caplog.text
    # The backend died before COMMIT reached it: nothing was stored (a retry would have).
    assert call(client, admin_key, "get_user", userid="lost")["error"] == \
        "user `lost` does not exist"


@sqlite_only
def test_a_sqlite_file_locked_past_the_busy_timeout(
        config: Config, database_url: str, db: Database, admin_key: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process holds the write lock longer than the busy timeout (shortened here):
    writes answer the error, reads go on (WAL), and writes work again once it lets go."""
    monkeypatch.setattr(db_module, "SQLITE_BUSY_TIMEOUT_MS", 100)
    mine = Database.connect(database_url)
    client = client_for(config, mine)
    holder = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        assert call(client, admin_key, "create_user", username="held",
                    email="held@example.com")["error"] == UNAVAILABLE
        assert call(client, admin_key, "get_user", userid="admin")["error"] is None
        holder.execute("ROLLBACK")
        assert call(client, admin_key, "create_user", username="held",
                    email="held@example.com")["error"] is None
    finally:
        holder.close()
        mine.dispose()


def test_a_database_that_cannot_be_opened(config: Config, admin_key: str,
                                          tmp_path: Path) -> None:
    """Not ``Invalid API key`` (a script would think its key bad), not an internal error."""
    missing = Database.connect(f"sqlite:///{tmp_path / 'no-such-dir' / 'rpc.db'}")
    try:
        client = client_for(config, missing)
        assert call(client, admin_key, "get_user", userid="admin") == {
            "id": 1, "result": None, "error": UNAVAILABLE}
        assert call(client, admin_key, "create_user", username="x",
                    email="x@example.com")["error"] == UNAVAILABLE
    finally:
        missing.dispose()


def test_a_database_server_that_never_answers_is_unavailable_not_a_hang(
        config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    """A PostgreSQL address that accepts connections and never answers (a loopback
    listener): each connection attempt gives up after the server's default
    ``connect_timeout`` (here made 1 s; libpq waits at least 2) and the call answers
    ``Database unavailable, try again`` instead of holding its thread for minutes."""
    import socket
    import threading

    monkeypatch.setattr(db_module, "CONNECT_TIMEOUT", 1)
    silent = socket.create_server(("127.0.0.1", 0))
    port = silent.getsockname()[1]
    database = Database.connect(f"postgresql+psycopg://postgres@127.0.0.1:{port}/test")
    answers: list[dict[str, Any]] = []
    try:
        caller = threading.Thread(target=lambda: answers.append(call(
            client_for(config, database), "rpck_" + "x" * 43, "get_user")), daemon=True)
        caller.start()
        caller.join(20)  # three attempts (the key's look-up, the call, its retry) of 2 s
        assert answers and answers[0]["error"] == UNAVAILABLE
    finally:
        database.dispose()
        silent.close()
