"""Fixtures shared by every test layer.

``db`` gives each test an empty database holding only ``default`` (id 1) and ``admin`` (id 2,
key ``admin_key``), on SQLite, or on PostgreSQL when RPCSERVER_TEST_DATABASE_URL is set.
"""

from __future__ import annotations

import datetime as dt
import itertools
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import Client

from rpcserver.api import build_registry
from rpcserver.core.config import Config
from rpcserver.core.registry import Registry
from rpcserver.db import migrations
from rpcserver.db.database import Database
from rpcserver.db.models import User
from rpcserver.domain.auth import issue_api_key
from rpcserver.domain.bootstrap import create_first_admin, seed_default_user
from rpcserver.web.app import ApiApp, create_app
from tests.databases import reset, scratch_database, server_url
from tests.server_process import ServerProcess

Rpc = Callable[..., dict[str, Any]]

def touches_database(item: pytest.Item) -> bool:
    """Whether the test, or a fixture it uses, comes from a module that makes databases
    (``scratch_database``) or asks which server to use (``server_url``): those run on every
    database, the rest in the SQLite pass only."""
    modules = {getattr(item, "module", None)}
    info = getattr(item, "_fixtureinfo", None)
    for defs in (info.name2fixturedefs.values() if info is not None else ()):
        modules.update(sys.modules.get(d.func.__module__) for d in defs)
    return any(hasattr(module, "scratch_database") or hasattr(module, "server_url")
               for module in modules if module is not None)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On the PostgreSQL pass (RPCSERVER_TEST_DATABASE_URL set), leave out what the SQLite
    pass already ran without a database: CI runs the suite once per database."""
    if server_url() is None:
        return
    kept = [item for item in items if touches_database(item)]
    if len(kept) < len(items):
        config.hook.pytest_deselected(items=[i for i in items if not touches_database(i)])
        items[:] = kept


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with scratch_database(tmp_path_factory.mktemp("db"), "api", server_url()) as url:
        db = Database.connect(url)
        migrations.upgrade(db.engine)
        db.dispose()
        yield url


@pytest.fixture(scope="session")
def database(database_url: str) -> Iterator[Database]:
    db = Database.connect(database_url)
    yield db
    db.dispose()


@pytest.fixture
def seeded(database: Database) -> tuple[Database, str]:
    """The session's database, emptied and seeded for this test, and the admin's key."""
    reset(database)
    with database.transaction(write=True) as session:
        seed_default_user(session)
        key = create_first_admin(session, "admin", "admin@example.com")
    return database, key


@pytest.fixture
def db(seeded: tuple[Database, str]) -> Database:
    return seeded[0]


@pytest.fixture
def admin_key(seeded: tuple[Database, str]) -> str:
    return seeded[1]


@dataclass(frozen=True)
class ApiUser:
    id: int
    username: str
    key: str


@pytest.fixture
def make_user(db: Database) -> Callable[..., ApiUser]:
    """``make_user(name, admin=False, active=True)``: a user row and one API key for it."""

    def make(username: str, *, admin: bool = False, active: bool = True,
             expires_on: dt.datetime | None = None) -> ApiUser:
        with db.transaction(write=True) as session:
            user = User(username=username, email=f"{username.lower()}@example.com",
                        admin=admin, active=active)
            session.add(user)
            session.flush()
            key, _row = issue_api_key(session, user, expires_on=expires_on)
            return ApiUser(user.id, username, key)

    return make


@pytest.fixture
def user_key(make_user: Callable[..., ApiUser]) -> str:
    """The key of ``alice``, an ordinary user."""
    return make_user("alice").key


@pytest.fixture
def config(database_url: str, tmp_path: Path) -> Config:
    return Config.load(env={"RPCSERVER_DATABASE_URL": database_url,
                            "RPCSERVER_REPOS_ROOT": str(tmp_path / "repos"),
                            "RPCSERVER_SECRET_KEY_FILE": str(tmp_path / "secret.keys")})


@pytest.fixture
def registry() -> Registry:
    return build_registry()


@pytest.fixture
def app(config: Config, db: Database, registry: Registry) -> ApiApp:
    return create_app(config, registry=registry, db=db)


@pytest.fixture
def client(app: ApiApp) -> Client:
    """werkzeug's test client, calling from 127.0.0.1 as a real local client would."""

    def from_loopback(environ: dict[str, Any], start_response: Any) -> Any:
        environ.setdefault("REMOTE_ADDR", "127.0.0.1")
        return app(environ, start_response)

    return Client(from_loopback)


_ids = itertools.count(1)


@pytest.fixture
def rpc(client: Client, admin_key: str) -> Rpc:
    """``rpc(method, key=..., **args)`` -> the answer dict; asserts the HTTP layer's promises."""

    def call(method: str, *, key: str | None = None, **args: Any) -> dict[str, Any]:
        request_id = next(_ids)
        body = {"id": request_id, "api_key": admin_key if key is None else key,
                "method": method, "args": args}
        response = client.post("/_admin/api", json=body)
        assert response.status_code == 200
        assert response.mimetype == "application/json"
        answer: dict[str, Any] = response.get_json()
        assert list(answer) == ["id", "result", "error"]
        assert answer["id"] == request_id
        assert (answer["result"] is None) != (answer["error"] is None)
        return answer

    return call


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A real ``rpcserver serve`` (gunicorn, 2 workers) shared by the whole session."""
    base = tmp_path_factory.mktemp("live")
    with scratch_database(base, "live", server_url()) as url:
        server = ServerProcess(instance=base / "instance", database_url=url).start()
        try:
            yield server
        finally:
            server.stop()
