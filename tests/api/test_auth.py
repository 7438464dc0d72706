"""Authentication: every failure answers the one text; the reason goes only to the log."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

import pytest
from sqlalchemy import event, select, update
from werkzeug.test import Client

from rpcserver.core.credentials import KEY_PREFIX
from rpcserver.db.database import Database
from rpcserver.db.models import ApiKey, User, UserIpRule, utcnow
from rpcserver.domain.key_format import KEY_LENGTH, is_key_shaped, key_digest
from tests.conftest import ApiUser, Rpc

INVALID = "Invalid API key"


def test_keys_are_stored_only_as_digests(db: Database, admin_key: str) -> None:
    with db.transaction(write=False) as session:
        rows = session.scalars(select(ApiKey)).all()
    assert admin_key.startswith(KEY_PREFIX) and len(admin_key) == KEY_LENGTH
    assert is_key_shaped(admin_key)
    assert [r.digest for r in rows] == [key_digest(admin_key)]
    assert all(admin_key not in (r.digest, r.suffix, r.description) for r in rows)


def test_inactive_user_is_refused(rpc: Rpc, make_user: Callable[..., ApiUser]) -> None:
    assert rpc("get_user", key=make_user("sleepy", active=False).key)["error"] == INVALID


def test_deactivating_a_user_stops_its_key(rpc: Rpc, make_user: Callable[..., ApiUser]) -> None:
    carol = make_user("carol")
    rpc("update_user", userid="carol", active=False)
    assert rpc("get_user", key=carol.key)["error"] == INVALID


def test_expired_key_is_refused(rpc: Rpc, make_user: Callable[..., ApiUser]) -> None:
    past = utcnow() - dt.timedelta(seconds=1)
    assert rpc("get_user", key=make_user("old", expires_on=past).key)["error"] == INVALID


def test_key_with_future_expiry_works(rpc: Rpc, make_user: Callable[..., ApiUser]) -> None:
    future = utcnow() + dt.timedelta(days=1)
    assert rpc("get_user", key=make_user("new", expires_on=future).key)["error"] is None


def test_revoked_key_is_refused(rpc: Rpc, db: Database,
                                make_user: Callable[..., ApiUser]) -> None:
    carol = make_user("carol")
    with db.transaction(write=True) as session:
        session.execute(update(ApiKey).where(ApiKey.user_id == carol.id)
                        .values(revoked_on=utcnow()))
    assert rpc("get_user", key=carol.key)["error"] == INVALID


def test_default_user_can_never_call(rpc: Rpc, db: Database) -> None:
    from rpcserver.domain.auth import issue_api_key

    with db.transaction(write=True) as session:
        default = session.get(User, 1)
        assert default is not None
        key, _ = issue_api_key(session, default)
    assert rpc("get_user", key=key)["error"] == INVALID


@pytest.mark.parametrize(("rules", "allowed"), [
    ([], True),
    (["127.0.0.1"], True),
    (["127.0.0.0/8"], True),
    (["10.0.0.0/8"], False),
    (["10.0.0.0/8", "127.0.0.1/32"], True),
    (["::1"], False),
])
def test_ip_rules(rpc: Rpc, db: Database, make_user: Callable[..., ApiUser],
                  rules: list[str], allowed: bool) -> None:
    # werkzeug's test client calls from 127.0.0.1.
    carol = make_user("carol")
    with db.transaction(write=True) as session:
        session.add_all(UserIpRule(user_id=carol.id, ip_addr=rule) for rule in rules)
    error = rpc("get_user", key=carol.key)["error"]
    assert (error is None) if allowed else (error == INVALID)


def test_default_users_ip_rules_apply_to_everyone(rpc: Rpc, db: Database, admin_key: str) -> None:
    with db.transaction(write=True) as session:
        session.add(UserIpRule(user_id=1, ip_addr="192.0.2.0/24"))
    assert rpc("get_user", key=admin_key)["error"] == INVALID


def test_last_used_is_recorded(rpc: Rpc, db: Database, admin_key: str) -> None:
    rpc("get_user")
    with db.transaction(write=False) as session:
        row = session.scalars(select(ApiKey).where(ApiKey.digest == key_digest(admin_key))).one()
    assert row.last_used_on is not None
    assert utcnow() - row.last_used_on < dt.timedelta(minutes=1)


def test_failure_reason_is_logged_without_the_key(rpc: Rpc, caplog: pytest.LogCaptureFixture,
                                                  make_user: Callable[..., ApiUser]) -> None:
    sleepy = make_user("sleepy", active=False)
    with caplog.at_level(logging.DEBUG):
        rpc("get_user", key=sleepy.key)
        rpc("get_user", key=KEY_PREFIX + "x" * 43)
    assert f"inactive user id {sleepy.id}" in caplog.text
    assert "unknown key" in caplog.text
    assert sleepy.key not in caplog.text and "x" * 43 not in caplog.text


def test_an_unknown_key_is_refused_before_any_transaction(rpc: Rpc, db: Database,
                                                         admin_key: str) -> None:
    """Guessing keys must stay cheap for the server: no session, no transaction, no ORM."""
    begun: list[object] = []

    def record(conn: object) -> None:
        begun.append(conn)

    for engine in db.engines:
        event.listen(engine, "begin", record)
    try:
        assert rpc("get_user", key=KEY_PREFIX + "x" * 43)["error"] == INVALID
        assert rpc("get_user", key="not even shaped like a key")["error"] == INVALID
        assert begun == []
        assert rpc("get_user")["result"]["username"] == "admin"  # and a real key still works
        assert begun != []
    finally:
        for engine in db.engines:
            event.remove(engine, "begin", record)


def test_the_caller_is_a_whole_user_of_the_call(client: Client, rpc: Rpc,
                                                admin_key: str) -> None:
    """The caller is read before the call's transaction and attached to it: its values keep
    their types (JSON booleans, not SQLite's 1), and a change to it is stored."""
    body = {"id": 1, "api_key": admin_key, "method": "get_user", "args": {}}
    text = client.post("/_admin/api", json=body).get_data(as_text=True)
    assert '"active": true, "admin": true' in text
    assert rpc("update_user", userid="admin", firstname="Ada")["error"] is None
    assert rpc("get_user")["result"]["firstname"] == "Ada"


def test_secrets_never_reach_the_log(rpc: Rpc, caplog: pytest.LogCaptureFixture,
                                     admin_key: str) -> None:
    with caplog.at_level(logging.DEBUG):
        rpc("create_user", username="bob", email="bob@example.com", password="pw-s3cret")
        rpc("create_user", username="bob", email="bob@example.com", password="pw-s3cret")
        rpc("update_user", userid="bob", password="pw-n3w")
        rpc("create_user", username="x", email="x@example.com", password=["pw-l1st"])
        rpc("no_such_method")
    for secret in (admin_key, "pw-s3cret", "pw-n3w", "pw-l1st"):
        assert secret not in caplog.text
