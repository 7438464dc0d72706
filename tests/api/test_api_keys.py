"""API keys managed through the API, and what their scopes allow (docs/authentication.md)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select, text

from rpcserver.api import build_registry
from rpcserver.core.registry import ADMIN_SCOPE, READ_SCOPE, WRITE_SCOPE
from rpcserver.db.database import Database
from rpcserver.db.models import ApiKey
from rpcserver.domain.context import Deferred
from rpcserver.domain.key_format import KEY_LENGTH, is_key_shaped, new_api_key
from tests.answers import ok
from tests.conftest import ApiUser, Rpc

INVALID = "Invalid API key"
RECORD_KEYS = ["key_id", "description", "key_suffix", "created_on", "last_used_on", "expires",
               "scopes", "ip_ranges", "revoked", "username"]


def err(answer: dict[str, Any]) -> str:
    assert answer["result"] is None
    error: str = answer["error"]
    return error


def make_key(rpc: Rpc, key: str | None = None, **args: Any) -> tuple[str, dict[str, Any]]:
    made = ok(rpc("create_api_key", key=key, **args))
    return made["api_key"], made["key"]


# -- the key format -------------------------------------------------------------------------


def test_keys_carry_a_checksum_a_typo_breaks() -> None:
    key = new_api_key()
    assert len(key) == KEY_LENGTH and is_key_shaped(key)
    for i in range(5, len(key)):
        typo = key[:i] + ("a" if key[i] != "a" else "b") + key[i + 1:]
        assert not is_key_shaped(typo)


def test_a_mistyped_key_is_refused_without_a_query(rpc: Rpc, db: Database) -> None:
    from sqlalchemy import event

    key, _record = make_key(rpc)
    typo = key[:-1] + ("x" if key[-1] != "x" else "y")
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        assert err(rpc("get_user", key=typo)) == INVALID
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    assert not any("api_keys" in statement for statement in seen)


# -- create, list, revoke, rotate -----------------------------------------------------------


def test_create_answers_the_secret_once(rpc: Rpc, db: Database,
                                        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        made = ok(rpc("create_api_key", description="ci", expires=3600))
    secret, record = made["api_key"], made["key"]
    assert made["msg"] == "created new API key for user `admin`"
    assert is_key_shaped(secret)
    assert list(record) == RECORD_KEYS
    assert record["key_suffix"] == secret[-4:] and record["description"] == "ci"
    assert record["scopes"] == ["all"] and record["ip_ranges"] is None
    assert record["revoked"] is False and record["expires"] is not None
    assert ok(rpc("get_user", key=secret))["username"] == "admin"
    listed = ok(rpc("get_api_keys"))
    assert [k["key_id"] for k in listed][-1] == record["key_id"]
    assert secret not in str(listed)
    assert secret not in caplog.text
    with db.engine.connect() as conn:
        stored = conn.execute(text("SELECT * FROM api_keys")).all()
    assert secret not in str(stored)


def test_revoked_and_rotated_keys_stop_working(rpc: Rpc) -> None:
    secret, record = make_key(rpc, description="old", scopes=["read"])
    revoked = ok(rpc("revoke_api_key", key_id=record["key_id"]))
    assert revoked["key"]["revoked"] is True
    assert err(rpc("get_user", key=secret)) == INVALID
    secret, record = make_key(rpc, description="to rotate", scopes=["read"])
    rotated = ok(rpc("rotate_api_key", key_id=record["key_id"]))
    new_id = rotated["key"]["key_id"]
    assert rotated["msg"] == f"rotated API key ID:{record['key_id']} as ID:{new_id}"
    assert err(rpc("get_user", key=secret)) == INVALID
    assert ok(rpc("get_user", key=rotated["api_key"]))["username"] == "admin"
    assert (rotated["key"]["description"], rotated["key"]["scopes"]) == ("to rotate", ["read"])
    assert err(rpc("rotate_api_key", key_id=record["key_id"])) == \
        f"API key `{record['key_id']}` is revoked"


def test_users_manage_their_own_keys_only(rpc: Rpc, make_user: Callable[..., ApiUser]) -> None:
    bob, carol = make_user("bob"), make_user("carol")
    _secret, bobs = make_key(rpc, key=bob.key, description="bob's")
    assert [k["username"] for k in ok(rpc("get_api_keys", key=bob.key))] == ["bob", "bob"]
    # carol cannot see, revoke or rotate bob's key; it does not exist for her
    missing = f"API key `{bobs['key_id']}` does not exist"
    assert err(rpc("revoke_api_key", key=carol.key, key_id=bobs["key_id"])) == missing
    assert err(rpc("rotate_api_key", key=carol.key, key_id=bobs["key_id"])) == missing
    assert err(rpc("get_api_keys", key=carol.key, userid="bob")) == \
        "userid is not the same as your user"
    assert err(rpc("get_api_keys", key=carol.key, all_users=True)) == \
        "Access was denied to this resource."
    assert err(rpc("create_api_key", key=carol.key, userid="bob")) == \
        "userid is not the same as your user"
    # an admin may do all of it
    made = ok(rpc("create_api_key", userid="bob", description="for bob"))
    assert made["key"]["username"] == "bob"
    assert ok(rpc("get_user", key=made["api_key"]))["username"] == "bob"
    everyone = ok(rpc("get_api_keys", all_users=True))
    assert {k["username"] for k in everyone} == {"admin", "bob", "carol"}
    ok(rpc("revoke_api_key", key_id=bobs["key_id"]))


def test_filters_and_paging(rpc: Rpc, db: Database) -> None:
    ids = [make_key(rpc, description=f"k{i}")[1]["key_id"] for i in range(5)]
    with db.transaction(write=True) as session:
        session.execute(text("UPDATE api_keys SET expires_on = '2001-01-01 00:00:00' "
                             "WHERE id = :id"), {"id": ids[0]})
    expired = ok(rpc("get_api_keys", expired=True))
    assert [k["key_id"] for k in expired] == [ids[0]]
    assert ids[0] not in [k["key_id"] for k in ok(rpc("get_api_keys", expired=False))]
    unused = ok(rpc("get_api_keys", unused_since="2100-01-01T00:00:00"))
    assert set(ids) <= {k["key_id"] for k in unused}
    everything = [k["key_id"] for k in ok(rpc("get_api_keys"))]
    paged: list[int] = []
    last = 0
    while page := ok(rpc("get_api_keys", n=2, last=last)):
        paged += [k["key_id"] for k in page]
        last = page[-1]["key_id"]
    assert paged == everything


def test_expiry_arguments(rpc: Rpc) -> None:
    assert err(rpc("create_api_key", expires="2001-01-01T00:00:00")) == \
        "Invalid `expires` arg in JSON DATA: must be in the future"
    assert err(rpc("create_api_key", expires="tomorrow!!")).startswith(
        "Invalid `expires` arg in JSON DATA: must be seconds from now or an ISO 8601")
    _secret, record = make_key(rpc, expires="2099-01-31T23:59:59+02:00")
    assert record["expires"] == "2099-01-31T21:59:59"


def test_the_longest_lifetime_is_bounded(rpc: Rpc, app: Any) -> None:
    import dataclasses

    app.dispatcher.config = dataclasses.replace(app.dispatcher.config, max_key_lifetime=3600)
    assert err(rpc("create_api_key", expires=7200)) == (
        "Invalid `expires` arg in JSON DATA: must be at most 3600 seconds from now "
        "(max_key_lifetime)")
    _secret, record = make_key(rpc)  # no expires: the bound
    assert record["expires"] is not None


# -- scopes ---------------------------------------------------------------------------------


def test_every_key_before_scopes_has_its_users_full_rights(db: Database, admin_key: str) -> None:
    with db.transaction(write=False) as session:
        assert session.scalars(select(ApiKey.scopes)).all() == ["all"]


def test_scope_names_are_checked(rpc: Rpc) -> None:
    for scopes, reason in (([], "must name at least one scope"),
                           (["sudo"], "`sudo` is no scope"),
                           (["repository:a:delete"], "the rights are pull or pull,push"),
                           (["repository:../x:pull"], "is no repository or group name")):
        assert reason in err(rpc("create_api_key", scopes=scopes))


def test_a_read_key_calls_only_what_changes_nothing(rpc: Rpc) -> None:
    read, _record = make_key(rpc, scopes=["read"])
    assert ok(rpc("get_users", key=read))
    assert ok(rpc("get_repos", key=read)) == []
    assert err(rpc("create_repo", key=read, repo_name="nope")) == \
        "API key scope does not allow `create_repo`"
    assert err(rpc("create_user", key=read, username="x", email="x@example.com")) == \
        "API key scope does not allow `create_user`"
    # nor can it make itself a wider key
    assert err(rpc("create_api_key", key=read, scopes=["write"])) == \
        "API key scope does not allow `create_api_key`"


def test_write_is_everything_but_admin_only_changes(rpc: Rpc) -> None:
    write, _record = make_key(rpc, scopes=["write"])
    ok(rpc("create_repo", key=write, repo_name="w"))
    assert err(rpc("create_user", key=write, username="x", email="x@example.com")) == \
        "API key scope does not allow `create_user`"
    # a key it makes has no more than its own scope, and only for its own user
    assert err(rpc("create_api_key", key=write, scopes=["admin"])) == \
        "Invalid `scopes` arg in JSON DATA: must not reach beyond the scopes of the key " \
        "that makes it"
    make_key(rpc, key=write, scopes=["read"])
    assert err(rpc("create_api_key", key=write, userid="default")) == \
        "API key scope does not allow `create_api_key`"
    admin, _record = make_key(rpc, scopes=["admin"])
    ok(rpc("create_user", key=admin, username="x", email="x@example.com"))


def test_object_scopes_reach_the_named_repositories_only(rpc: Rpc) -> None:
    for name in ("team/a", "team/b", "other"):
        if "/" in name:
            rpc("create_repo_group", group_name="team")
        ok(rpc("create_repo", repo_name=name))
    pull, _record = make_key(rpc, scopes=["repository:team/*:pull"])
    assert ok(rpc("get_repo", key=pull, repoid="team/a"))["repo_name"] == "team/a"
    assert err(rpc("get_repo", key=pull, repoid="other")) == \
        "API key scope does not allow `get_repo`"
    assert err(rpc("get_repos", key=pull)) == "API key scope does not allow `get_repos`"
    assert err(rpc("pull", key=pull, repoid="team/a")) == "API key scope does not allow `pull`"
    push, _record = make_key(rpc, scopes=["repo_group:team:pull,push"])
    # past the scope: pull has no clone_uri to fetch from, and says so
    assert err(rpc("pull", key=push, repoid="team/b")) == "Unable to pull changes from `team/b`"
    assert err(rpc("pull", key=push, repoid="other")) == "API key scope does not allow `pull`"
    assert err(rpc("delete_repo", key=push, repoid="team/b")) == \
        "API key scope does not allow `delete_repo`"


def test_a_scope_never_adds_a_right(rpc: Rpc, make_user: Callable[..., ApiUser]) -> None:
    bob = make_user("bob")
    ok(rpc("create_repo", repo_name="secret", private=True))
    made, _record = make_key(rpc, key=bob.key, scopes=["repository:secret:pull,push"])
    assert err(rpc("get_repo", key=made, repoid="secret")) == \
        "repository `secret` does not exist"


def test_every_method_declares_what_it_needs() -> None:
    """A method that answers a ``Deferred`` changes something (its finish writes)."""
    import typing

    for name, method in build_registry():
        hints = typing.get_type_hints(method.handler)
        if hints.get("return") is Deferred:
            assert method.changes, f"{name} answers a Deferred: register it with changes=True"
        assert method.scope in (READ_SCOPE, WRITE_SCOPE, ADMIN_SCOPE)
        if method.repository_arg is not None:
            assert method.repository_arg in method.params


# -- addresses --------------------------------------------------------------------------------


def test_a_keys_own_ranges(rpc: Rpc) -> None:
    elsewhere, _record = make_key(rpc, ip_ranges=["10.0.0.0/8"])
    assert err(rpc("get_user", key=elsewhere)) == INVALID
    here, record = make_key(rpc, ip_ranges=["127.0.0.1", "::1"])
    assert record["ip_ranges"] == ["127.0.0.1/32", "::1/128"]
    assert ok(rpc("get_user", key=here))["username"] == "admin"
    assert err(rpc("create_api_key", ip_ranges=["10.0.0.300"])).startswith(
        "Invalid `ip_ranges` arg in JSON DATA")


def test_user_ip_rules(rpc: Rpc, make_user: Callable[..., ApiUser]) -> None:
    bob = make_user("bob")
    added = ok(rpc("add_user_ip", userid="bob", ip_range="10.1.2.3/16"))
    assert added == {"msg": "added ip `10.1.0.0/16` to user `bob`", "user_ips": [
        {"ip_addr": "10.1.0.0/16", "ip_range": ["10.1.0.0", "10.1.255.255"]}]}
    assert err(rpc("get_user", key=bob.key)) == INVALID  # 127.0.0.1 is outside
    assert err(rpc("add_user_ip", userid="bob", ip_range="10.1.0.0/16")) == \
        "ip `10.1.0.0/16` already exist for user `bob`"
    assert ok(rpc("get_ip", userid="bob"))["user_ips"] == added["user_ips"]
    removed = ok(rpc("remove_user_ip", userid="bob", ip_range="10.1.0.0/16"))
    assert removed["user_ips"] == []
    assert ok(rpc("get_user", key=bob.key))["username"] == "bob"
    assert err(rpc("remove_user_ip", userid="bob", ip_range="10.1.0.0/16")) == \
        "ip `10.1.0.0/16` not found for user `bob`"
