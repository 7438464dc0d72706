"""The dispatcher's promises, with a registry of our own: one transaction per call that
commits on success and rolls back on any error; unexpected errors never leak."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from sqlalchemy import insert, select, text
from werkzeug.test import Client

from rpcserver.core import schemas
from rpcserver.core.config import Config
from rpcserver.core.errors import ApiError
from rpcserver.core.registry import Registry
from rpcserver.db.database import Database
from rpcserver.db.models import User
from rpcserver.domain.context import CallContext, ReadContext
from rpcserver.domain.permissions import ADMIN
from rpcserver.web.app import create_app
from tests.databases import server_url


def build() -> Registry:
    registry = Registry()
    args = schemas.obj(required=("name",), name=schemas.string())

    @registry.method("add_then_fail", schema=args, permission=ADMIN, writes=True)
    def add_then_fail(ctx: CallContext, name: str) -> None:
        ctx.session.add(User(username=name, email=f"{name}@example.com"))
        ctx.session.flush()
        raise ApiError(f"refused `{name}`")

    @registry.method("add_then_crash", schema=args, permission=ADMIN, writes=True)
    def add_then_crash(ctx: CallContext, name: str) -> None:
        ctx.session.add(User(username=name, email=f"{name}@example.com"))
        ctx.session.flush()
        raise RuntimeError("/srv/secret/path SELECT * FROM users")

    @registry.method("add", schema=args, permission=ADMIN, writes=True)
    def add(ctx: CallContext, name: str) -> dict[str, Any]:
        ctx.session.add(User(username=name, email=f"{name}@example.com"))
        return {"added": name}

    @registry.method("unencodable", schema=schemas.obj(), permission=ADMIN)
    def unencodable(ctx: ReadContext) -> object:
        return object()

    @registry.method("count_users", schema=schemas.obj(), permission=ADMIN)
    def count_users(ctx: ReadContext) -> int:
        return len(ctx.conn.scalars(select(User.id)).all())

    # A bug this test suite plants: a method that writes, registered as a read.
    @registry.method("add_as_a_read", schema=args, permission=ADMIN)
    def add_as_a_read(ctx: ReadContext, name: str) -> None:
        ctx.conn.execute(insert(User).values(username=name, email=f"{name}@example.com"))

    # Another: a read that reaches for an ORM session, which only writes get.
    @registry.method("session_in_a_read", schema=schemas.obj(), permission=ADMIN)
    def session_in_a_read(ctx: ReadContext) -> None:
        ctx.session.add(User(username="x", email="x@example.com"))  # type: ignore[attr-defined]

    @registry.method("credential", schema=schemas.obj(), permission=ADMIN)
    def credential(ctx: ReadContext) -> dict[str, Any]:
        assert ctx.credential is not None
        return {"kind": ctx.credential.kind, "repr": repr(ctx.credential),
                "key_id": ctx.key_id}

    return registry


@pytest.fixture
def own_client(config: Config, db: Database) -> Client:
    return Client(create_app(config, registry=build(), db=db))


def call(client: Client, key: str, method: str, **args: Any) -> dict[str, Any]:
    body = {"id": 1, "api_key": key, "method": method, "args": args}
    response = client.post("/_admin/api", json=body)
    assert response.status_code == 200
    answer: dict[str, Any] = response.get_json()
    return answer


def names(db: Database) -> list[str]:
    with db.transaction(write=False) as session:
        return list(session.scalars(select(User.username).order_by(User.id)))


def test_registry_is_injectable(own_client: Client, admin_key: str) -> None:
    assert call(own_client, admin_key, "get_user")["error"] == "No such method: get_user"


def test_success_commits(own_client: Client, admin_key: str, db: Database) -> None:
    assert call(own_client, admin_key, "add", name="kept")["result"] == {"added": "kept"}
    assert names(db) == ["default", "admin", "kept"]


def test_api_error_rolls_back(own_client: Client, admin_key: str, db: Database) -> None:
    assert call(own_client, admin_key, "add_then_fail", name="x")["error"] == "refused `x`"
    assert names(db) == ["default", "admin"]


def test_unexpected_error_rolls_back_and_hides_details(
        own_client: Client, admin_key: str, db: Database,
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        answer = call(own_client, admin_key, "add_then_crash", name="x")
    assert answer == {"id": 1, "result": None, "error": "Internal server error"}
    assert names(db) == ["default", "admin"]
    assert "Traceback" in caplog.text and "RuntimeError" in caplog.text


def test_unencodable_result_is_an_internal_error(own_client: Client, admin_key: str) -> None:
    assert call(own_client, admin_key, "unencodable") == {
        "id": 1, "result": None, "error": "Internal server error"}


def test_database_unique_violation_in_a_handler_is_not_leaked(
        own_client: Client, admin_key: str, db: Database) -> None:
    answer = call(own_client, admin_key, "add", name="ADMIN")
    assert answer["error"] == "Internal server error"
    assert "UNIQUE" not in str(answer) and "unique" not in str(answer)
    assert names(db) == ["default", "admin"]


def test_registration_checks_the_schema() -> None:
    registry = Registry()
    with pytest.raises(ValueError, match="additionalProperties"):
        registry.method("m", schema={"type": "object", "properties": {}},
                        permission=ADMIN)
    with pytest.raises(Exception, match="is not valid"):
        registry.method("m", schema={"type": "object", "additionalProperties": False,
                                     "properties": {"a": {"type": "nonsense"}}},
                        permission=ADMIN)


def test_registration_checks_the_handler_signature() -> None:
    registry = Registry()
    decorate = registry.method("m", schema=schemas.obj(required=("a",), a=schemas.string()),
                               permission=ADMIN)

    def wrong_name(ctx: CallContext, b: str) -> None: ...

    def optional_required(ctx: CallContext, a: str = "") -> None: ...

    with pytest.raises(TypeError, match="parameters"):
        decorate(wrong_name)
    with pytest.raises(TypeError, match="default"):
        decorate(optional_required)


def test_a_name_cannot_be_registered_twice() -> None:
    registry = Registry()
    decorate = registry.method("m", schema=schemas.obj(), permission=ADMIN)
    decorate(lambda ctx: None)
    with pytest.raises(ValueError, match="twice"):
        registry.method("m", schema=schemas.obj(), permission=ADMIN)(lambda ctx: None)


def test_a_database_error_in_the_log_carries_no_parameters(
        own_client: Client, admin_key: str, caplog: pytest.LogCaptureFixture) -> None:
    """Neither the statement's parameters nor PostgreSQL's DETAIL line (which quotes the
    failing row) reach the log; the constraint and the traceback do."""
    with caplog.at_level(logging.ERROR):
        call(own_client, admin_key, "add", name="ADMIN")
    assert "database error in method 'add'" in caplog.text
    assert "Traceback" in caplog.text and "users" in caplog.text
    assert "admin@example.com" not in caplog.text.lower()
    assert "Failing row" not in caplog.text


postgresql_only = pytest.mark.skipif(
    server_url() is None,
    reason="PostgreSQL reads run on their own autocommit, read-only engine")


@postgresql_only
def test_a_read_survives_a_restarted_database_server(
        own_client: Client, admin_key: str, db: Database,
        caplog: pytest.LogCaptureFixture) -> None:
    """The read pool does not ping: the key lookup drops the dead connection it was lent, and
    a read whose own connection died too runs again."""
    assert db.read_engine is not None
    assert call(own_client, admin_key, "count_users")["result"] == 2
    with db.read_engine.connect() as one, db.read_engine.connect() as two:  # two in the pool
        one.execute(text("SELECT 1"))
        two.execute(text("SELECT 1"))
    with db.engine.connect() as conn:  # what a restart does to every other connection
        conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
    with caplog.at_level(logging.WARNING):
        assert call(own_client, admin_key, "count_users") == {
            "id": 1, "result": 2, "error": None}
    assert "could not look up an API key before the call" in caplog.text
    assert "retrying 'count_users' once" in caplog.text
    assert call(own_client, "rpck_" + "0" * 43, "count_users")["error"] == "Invalid API key"


def test_a_method_registered_as_a_read_cannot_write(
        own_client: Client, admin_key: str, db: Database) -> None:
    """PostgreSQL's read engine refuses the INSERT; on SQLite the read's transaction always
    rolls back. Either way nothing is written."""
    answer = call(own_client, admin_key, "add_as_a_read", name="sneaky")
    if server_url() is not None:
        assert answer["error"] == "Internal server error"
    assert names(db) == ["default", "admin"]
    answer = call(own_client, admin_key, "session_in_a_read")
    assert answer["error"] == "Internal server error"
    assert names(db) == ["default", "admin"]


def test_a_handler_sees_the_credential_the_call_came_with(own_client: Client,
                                                          admin_key: str) -> None:
    seen = call(own_client, admin_key, "credential")["result"]
    assert seen["kind"] == "api_key" and isinstance(seen["key_id"], int)
    assert admin_key not in seen["repr"]


def test_the_admin_command_path_runs_the_same_checks(config: Config, db: Database) -> None:
    """``Dispatcher.call`` with a local-cli credential: the method's schema and permission
    run, and the caller is the first active admin."""
    from rpcserver.core.credentials import LOCAL_CLI, Credential
    from rpcserver.rpc.dispatch import Dispatcher

    dispatcher = Dispatcher(config, db, build())
    local = Credential(LOCAL_CLI, os_user="root")
    assert dispatcher.call(local, "credential", {})["kind"] == "local-cli"
    assert dispatcher.call(local, "add", {"name": "via-cli"}) == {"added": "via-cli"}
    assert "via-cli" in names(db)
    with pytest.raises(ApiError) as refused:
        dispatcher.call(local, "add", {"name": 5})
    assert refused.value.text.startswith("Invalid `name` arg in JSON DATA")
    with pytest.raises(ApiError) as unknown:
        dispatcher.call(local, "no_such", {})
    assert unknown.value.text == "No such method: no_such"
