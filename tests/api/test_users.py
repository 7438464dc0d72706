"""get_user(s), create_user, update_user, delete_user: shapes, messages, rules (API.md §3-§8)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from rpcserver.db.database import Database
from rpcserver.db.models import RepoGroup, User
from rpcserver.domain.auth import verify_password
from tests.conftest import ApiUser, Rpc

USER_KEYS = ["user_id", "username", "firstname", "lastname", "email", "emails", "active",
             "admin"]


def create(rpc: Rpc, username: str = "bob", **args: Any) -> dict[str, Any]:
    args.setdefault("email", f"{username.lower()}@example.com")
    return rpc("create_user", username=username, **args)


def user_count(db: Database) -> int:
    with db.transaction(write=False) as session:
        return int(session.scalar(select(func.count()).select_from(User)) or 0)


class TestCreateUser:
    def test_result_shape_and_message(self, rpc: Rpc) -> None:
        answer = create(rpc, "bob", firstname="Bob", lastname="Builder", email="Bob@Example.com")
        result = answer["result"]
        assert result["msg"] == "created new user `bob`"
        assert list(result["user"]) == USER_KEYS
        assert result["user"] == {
            "user_id": 3, "username": "bob", "firstname": "Bob", "lastname": "Builder",
            "email": "bob@example.com", "emails": ["bob@example.com"], "active": True,
            "admin": False}

    def test_password_is_stored_as_argon2id_and_never_returned(self, rpc: Rpc,
                                                              db: Database) -> None:
        answer = create(rpc, "bob", password="correct horse")
        assert "correct horse" not in str(answer)
        with db.transaction(write=False) as session:
            user = session.scalars(select(User).where(User.username == "bob")).one()
            assert user.password_hash is not None
            assert user.password_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
            assert verify_password(user.password_hash, "correct horse")
            assert not verify_password(user.password_hash, "wrong")

    def test_no_password_means_none_is_stored(self, rpc: Rpc, db: Database) -> None:
        create(rpc, "bob")
        with db.transaction(write=False) as session:
            user = session.scalars(select(User).where(User.username == "bob")).one()
            assert user.password_hash is None

    @pytest.mark.parametrize("name", ["bob", "BOB", "Bob"])
    def test_username_taken_regardless_of_case(self, rpc: Rpc, db: Database,
                                               name: str) -> None:
        create(rpc, "bob")
        answer = create(rpc, name, email="other@example.com")
        assert answer["error"] == f"user `{name}` already exist"
        assert user_count(db) == 3

    def test_email_taken_regardless_of_case(self, rpc: Rpc, db: Database) -> None:
        create(rpc, "bob", email="bob@example.com")
        answer = create(rpc, "robert", email="BOB@example.com")
        assert answer["error"] == "email `BOB@example.com` already exist"  # as it was sent
        assert user_count(db) == 3

    def test_default_user_name_is_taken(self, rpc: Rpc) -> None:
        assert create(rpc, "default")["error"] == "user `default` already exist"

    def test_flags_and_extern_fields(self, rpc: Rpc) -> None:
        answer = create(rpc, "bob", active=False, admin=True, extern_type="ldap",
                        extern_name="uid=bob")
        assert answer["result"]["user"]["active"] is False
        assert answer["result"]["user"]["admin"] is True

    def test_non_admin_cannot_create(self, rpc: Rpc, user_key: str, db: Database) -> None:
        answer = rpc("create_user", key=user_key, username="x", email="x@example.com")
        assert answer["error"] == "Access was denied to this resource."
        assert user_count(db) == 3  # default, admin, alice; x was not created


class TestGetUser:
    def test_self_without_userid(self, rpc: Rpc, user_key: str) -> None:
        result = rpc("get_user", key=user_key)["result"]
        assert list(result) == [*USER_KEYS, "permissions"]
        assert result["username"] == "alice"
        assert list(result["permissions"]) == ["global", "repositories",
                                               "repositories_groups", "user_groups"]

    def test_non_admin_may_name_itself_by_id_or_name(self, rpc: Rpc,
                                                     make_user: Callable[..., ApiUser]) -> None:
        carol = make_user("carol")
        for ident in (carol.id, str(carol.id), "carol"):
            assert rpc("get_user", key=carol.key, userid=ident)["result"]["username"] == "carol"

    def test_non_admin_may_not_read_others(self, rpc: Rpc, user_key: str) -> None:
        for ident in (2, "2", "admin", "nobody"):
            answer = rpc("get_user", key=user_key, userid=ident)
            assert answer["error"] == "userid is not the same as your user"

    def test_admin_reads_anyone_by_id_or_name(self, rpc: Rpc) -> None:
        create(rpc, "bob")
        assert rpc("get_user", userid=3)["result"]["username"] == "bob"
        assert rpc("get_user", userid="3")["result"]["username"] == "bob"
        assert rpc("get_user", userid="bob")["result"]["user_id"] == 3

    def test_names_are_case_sensitive(self, rpc: Rpc) -> None:
        create(rpc, "bob")
        assert rpc("get_user", userid="BOB")["error"] == "user `BOB` does not exist"

    @pytest.mark.parametrize("ident", [999, "999", "ghost", 2**31 - 1, "9" * 30])
    def test_missing_user(self, rpc: Rpc, ident: Any) -> None:
        assert rpc("get_user", userid=ident)["error"] == f"user `{ident}` does not exist"

    def test_default_user_is_readable_with_its_permissions(self, rpc: Rpc) -> None:
        result = rpc("get_user", userid="default")["result"]
        assert result["user_id"] == 1
        assert result["permissions"]["global"] == sorted([
            "hg.create.repository", "hg.fork.repository", "hg.extern_activate.auto",
            "hg.register.manual_activate", "repository.read", "group.read", "usergroup.read"])

    def test_admin_has_hg_admin(self, rpc: Rpc) -> None:
        assert "hg.admin" in rpc("get_user")["result"]["permissions"]["global"]

    def test_no_secret_in_any_user_answer(self, rpc: Rpc, admin_key: str) -> None:
        create(rpc, "bob", password="s3cret-pass")
        text = str(rpc("get_user", userid="bob")) + str(rpc("get_users"))
        for secret in ("s3cret-pass", "argon2", admin_key, "api_key", "password"):
            assert secret not in text


class TestGetUsers:
    def test_lists_everyone_but_default_in_id_order(self, rpc: Rpc) -> None:
        create(rpc, "bob")
        create(rpc, "carol")
        result = rpc("get_users")["result"]
        assert [u["username"] for u in result] == ["admin", "bob", "carol"]
        assert all(list(u) == USER_KEYS for u in result)

    def test_paging(self, rpc: Rpc) -> None:
        for name in ("b1", "b2", "b3"):
            create(rpc, name)
        names = [u["username"] for u in rpc("get_users", limit=2, offset=1)["result"]]
        assert names == ["b1", "b2"]

    def test_limit_is_bounded(self, rpc: Rpc) -> None:
        answer = rpc("get_users", limit=10_001)
        assert answer["error"] == "Invalid `limit` arg in JSON DATA: must be at most 10000"


class TestUpdateUser:
    def test_changes_only_given_fields(self, rpc: Rpc) -> None:
        create(rpc, "bob", firstname="Bob", lastname="B")
        answer = rpc("update_user", userid="bob", lastname="Builder", email="NEW@example.com")
        assert answer["result"]["msg"] == "updated user ID:3 bob"
        user = answer["result"]["user"]
        assert (user["firstname"], user["lastname"], user["email"]) == (
            "Bob", "Builder", "new@example.com")

    def test_rename(self, rpc: Rpc) -> None:
        create(rpc, "bob")
        answer = rpc("update_user", userid=3, username="robert")
        assert answer["result"]["msg"] == "updated user ID:3 robert"
        assert rpc("get_user", userid="robert")["result"]["user_id"] == 3

    def test_case_change_of_own_name_is_allowed(self, rpc: Rpc) -> None:
        create(rpc, "bob")
        assert rpc("update_user", userid="bob", username="Bob")["result"]["user"][
            "username"] == "Bob"

    @pytest.mark.parametrize("change", [{"username": "CAROL"}, {"email": "Carol@example.com"}])
    def test_taken_name_or_email(self, rpc: Rpc, change: dict[str, str]) -> None:
        create(rpc, "bob")
        create(rpc, "carol")
        answer = rpc("update_user", userid="bob", **change)
        assert answer["error"] == "failed to update user `bob`"
        assert rpc("get_user", userid="bob")["result"]["email"] == "bob@example.com"

    def test_password_change(self, rpc: Rpc, db: Database) -> None:
        create(rpc, "bob", password="old-password")
        rpc("update_user", userid="bob", password="new-password")
        with db.transaction(write=False) as session:
            user = session.scalars(select(User).where(User.username == "bob")).one()
            assert verify_password(user.password_hash, "new-password")

    def test_default_user_is_forbidden(self, rpc: Rpc) -> None:
        for ident in (1, "default"):
            answer = rpc("update_user", userid=ident, firstname="x")
            assert answer["error"] == "editing default user is forbidden"

    def test_last_admin_cannot_be_demoted_or_disabled(self, rpc: Rpc) -> None:
        assert rpc("update_user", userid="admin", admin=False)["error"] == (
            "failed to update user `admin`")
        assert rpc("update_user", userid="admin", active=False)["error"] == (
            "failed to update user `admin`")
        create(rpc, "second", admin=True)
        assert rpc("update_user", userid="admin", admin=False)["error"] is None

    def test_missing_user(self, rpc: Rpc) -> None:
        assert rpc("update_user", userid="ghost")["error"] == "user `ghost` does not exist"

    def test_non_admin_denied(self, rpc: Rpc, user_key: str) -> None:
        answer = rpc("update_user", key=user_key, userid="alice", admin=True)
        assert answer["error"] == "Access was denied to this resource."
        assert rpc("get_user", userid="alice")["result"]["admin"] is False


class TestDeleteUser:
    def test_delete(self, rpc: Rpc, db: Database) -> None:
        create(rpc, "bob")
        answer = rpc("delete_user", userid="bob")
        assert answer["result"] == {"msg": "deleted user ID:3 bob", "user": None}
        assert rpc("get_user", userid="bob")["error"] == "user `bob` does not exist"

    def test_deleted_users_key_stops_working(self, rpc: Rpc,
                                             make_user: Callable[..., ApiUser]) -> None:
        carol = make_user("carol")
        assert rpc("get_user", key=carol.key)["error"] is None
        rpc("delete_user", userid="carol")
        assert rpc("get_user", key=carol.key)["error"] == "Invalid API key"

    def test_ids_are_not_reused(self, rpc: Rpc) -> None:
        create(rpc, "bob")
        rpc("delete_user", userid="bob")
        assert create(rpc, "carol")["result"]["user"]["user_id"] == 4

    def test_default_user_cannot_be_deleted(self, rpc: Rpc) -> None:
        assert rpc("delete_user", userid=1)["error"] == "failed to delete user ID:1 default"

    def test_last_admin_cannot_be_deleted(self, rpc: Rpc) -> None:
        assert rpc("delete_user", userid="admin")["error"] == "failed to delete user ID:2 admin"

    def test_owner_of_something_cannot_be_deleted(self, rpc: Rpc, db: Database) -> None:
        create(rpc, "bob")
        with db.transaction(write=True) as session:
            session.add(RepoGroup(name="projects", owner_id=3))
        assert rpc("delete_user", userid="bob")["error"] == "failed to delete user ID:3 bob"
        assert rpc("get_user", userid="bob")["error"] is None

    def test_missing_user(self, rpc: Rpc) -> None:
        assert rpc("delete_user", userid=42)["error"] == "user `42` does not exist"


class TestRhodeCodeCreateUser:
    def test_id_less_create_user(self, client: Any, admin_key: str) -> None:
        body = {"api_key": admin_key, "method": "create_user",
                "args": {"username": "rc", "password": "pw", "active": True, "admin": False,
                         "name": "Rhode", "lastname": "Code", "email": "rc@example.com"}}
        answer = client.post("/_admin/api", json=body).get_json()
        assert answer == {"result": {"id": 3, "msg": "created new user rc"}, "error": None}

    def test_with_id_create_user_takes_kallithea_args(self, rpc: Rpc) -> None:
        answer = rpc("create_user", username="rc", email="rc@example.com", name="Rhode")
        assert answer["error"] == "Unknown `name` arg in JSON DATA"


@pytest.mark.parametrize(("sent", "stored"), [("true", True), ("false", False),
                                              ("False", False), ("TRUE", True)])
def test_string_booleans_from_kallithea_api(rpc: Rpc, sent: str, stored: bool) -> None:
    """kallithea-api can only send strings: "false" must mean false, never a truthy string."""
    user = create(rpc, "bob", active=sent, admin=sent)["result"]["user"]
    assert (user["active"], user["admin"]) == (stored, stored)
