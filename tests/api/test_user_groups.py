"""User group methods: shapes, messages, membership edge cases, refusals (API.md §3-§8)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import delete, func, select, update
from werkzeug.test import Client

from rpcserver.api import user_groups
from rpcserver.db.database import Database
from rpcserver.db.models import (
    GlobalPermission,
    Level,
    RepoGroup,
    Repository,
    UserGroup,
    UserGroupMember,
    UserGroupRepoGroupPerm,
    UserGroupRepoPerm,
    UserGroupUserGroupPerm,
    UserUserGroupPerm,
)
from tests.conftest import ApiUser, Rpc

GROUP_KEYS = ["users_group_id", "group_name", "group_description", "active", "owner",
              "members"]
USER_KEYS = ["user_id", "username", "firstname", "lastname", "email", "emails", "active",
             "admin"]

MakeUser = Callable[..., ApiUser]


def create(rpc: Rpc, name: str = "devs", **args: Any) -> dict[str, Any]:
    answer = rpc("create_user_group", group_name=name, **args)
    assert answer["error"] is None, answer
    result: dict[str, Any] = answer["result"]
    return result


def grant_global(db: Database, user_id: int, name: str) -> None:
    with db.transaction(write=True) as session:
        session.add(GlobalPermission(user_id=user_id, name=name))


def count(db: Database, model: Any) -> int:
    with db.transaction(write=False) as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


class TestCreate:
    def test_result_shape_and_message(self, rpc: Rpc) -> None:
        result = create(rpc, "devs", description="Developers")
        assert result["msg"] == "created new user group `devs`"
        assert list(result["user_group"]) == GROUP_KEYS
        assert result["user_group"] == {
            "users_group_id": 1, "group_name": "devs", "group_description": "Developers",
            "active": True, "owner": "admin", "members": []}

    def test_defaults_and_inactive(self, rpc: Rpc) -> None:
        group = create(rpc, "ops", active=False)["user_group"]
        assert group["group_description"] == ""
        assert group["active"] is False

    def test_admin_names_the_owner(self, rpc: Rpc, make_user: MakeUser) -> None:
        make_user("bob")
        assert create(rpc, "devs", owner="bob")["user_group"]["owner"] == "bob"

    def test_unknown_owner(self, rpc: Rpc) -> None:
        answer = rpc("create_user_group", group_name="devs", owner="ghost")
        assert answer["error"] == "user `ghost` does not exist"
        assert rpc("get_user_group", usergroupid="devs")["error"] == (
            "user group `devs` does not exist")

    def test_name_taken(self, rpc: Rpc, db: Database) -> None:
        create(rpc, "devs")
        answer = rpc("create_user_group", group_name="devs")
        assert answer["error"] == "user group `devs` already exist"
        assert count(db, UserGroup) == 1

    def test_names_are_case_sensitive(self, rpc: Rpc) -> None:
        create(rpc, "devs")
        assert create(rpc, "Devs")["user_group"]["group_name"] == "Devs"

    def test_lost_race_for_the_name_is_already_exist(
            self, rpc: Rpc, db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
        create(rpc, "devs")
        # Another request inserts the name between our check and our insert.
        checks = iter([False])
        real = user_groups._name_taken
        monkeypatch.setattr(user_groups, "_name_taken",
                            lambda ctx, name: next(checks, None) or real(ctx, name))
        answer = rpc("create_user_group", group_name="devs")
        assert answer["error"] == "user group `devs` already exist"
        assert count(db, UserGroup) == 1

    def test_digit_only_name_is_refused(self, rpc: Rpc) -> None:
        answer = rpc("create_user_group", group_name="123")
        assert answer["error"] == ("Invalid `group_name` arg in JSON DATA: must not be only "
                                   "digits (it would read as an id)")

    @pytest.mark.parametrize(("args", "error"), [
        ({}, "Missing non optional `group_name` arg in JSON DATA"),
        ({"group_name": ""}, "Invalid `group_name` arg in JSON DATA: must not be empty"),
        ({"group_name": "x" * 256},
         "Invalid `group_name` arg in JSON DATA: must be at most 255 characters long"),
        ({"group_name": "a\nb"},
         "Invalid `group_name` arg in JSON DATA: contains characters that are not allowed"),
        ({"group_name": "g", "active": "off"},
         "Invalid `active` arg in JSON DATA: must be a boolean (true or false)"),
        ({"group_name": "g", "description": "d" * 10_001},
         "Invalid `description` arg in JSON DATA: must be at most 10000 characters long"),
        ({"group_name": "g", "members": []}, "Unknown `members` arg in JSON DATA"),
    ])
    def test_bad_args(self, rpc: Rpc, args: dict[str, Any], error: str) -> None:
        assert rpc("create_user_group", **args)["error"] == error

    def test_default_gets_its_global_usergroup_level(self, rpc: Rpc, db: Database) -> None:
        group_id = create(rpc, "devs")["user_group"]["users_group_id"]
        with db.transaction(write=False) as session:
            grants = session.execute(select(UserUserGroupPerm.user_id, UserUserGroupPerm.level)
                                     .where(UserUserGroupPerm.target_group_id == group_id)).all()
        assert grants == [(1, Level.READ)]

    def test_default_usergroup_none_means_no_default_grant(
            self, rpc: Rpc, db: Database, make_user: MakeUser) -> None:
        with db.transaction(write=True) as session:
            row = session.scalars(select(GlobalPermission).where(
                GlobalPermission.user_id == 1, GlobalPermission.name == "usergroup.read")).one()
            row.name = "usergroup.none"
        create(rpc, "devs")
        bob = make_user("bob")
        assert count(db, UserUserGroupPerm) == 0
        assert rpc("get_user_group", key=bob.key, usergroupid="devs")["error"] == (
            "user group `devs` does not exist")


class TestCreateByNonAdmin:
    def test_needs_the_global_permission(self, rpc: Rpc, make_user: MakeUser) -> None:
        bob = make_user("bob")
        answer = rpc("create_user_group", key=bob.key, group_name="devs")
        assert answer["error"] == "Access was denied to this resource."

    @pytest.mark.parametrize("holder", ["self", "default"])
    def test_with_the_global_permission_owns_it(self, rpc: Rpc, db: Database,
                                                make_user: MakeUser, holder: str) -> None:
        bob = make_user("bob")
        grant_global(db, bob.id if holder == "self" else 1, "hg.usergroup.create.true")
        result = rpc("create_user_group", key=bob.key, group_name="devs")["result"]
        assert result["user_group"]["owner"] == "bob"
        # The owner administers it.
        assert rpc("update_user_group", key=bob.key, usergroupid="devs",
                   description="mine")["error"] is None

    def test_false_variant_grants_nothing(self, rpc: Rpc, db: Database,
                                          make_user: MakeUser) -> None:
        bob = make_user("bob")
        grant_global(db, bob.id, "hg.usergroup.create.false")
        assert rpc("create_user_group", key=bob.key, group_name="devs")["error"] == (
            "Access was denied to this resource.")

    def test_only_an_admin_names_the_owner(self, rpc: Rpc, db: Database,
                                           make_user: MakeUser) -> None:
        bob = make_user("bob")
        grant_global(db, bob.id, "hg.usergroup.create.true")
        for owner in ("admin", "bob"):
            answer = rpc("create_user_group", key=bob.key, group_name="devs", owner=owner)
            assert answer["error"] == "Only Kallithea admin can specify `owner` param"
        assert count(db, UserGroup) == 0


class TestGet:
    def test_by_id_name_and_digit_string(self, rpc: Rpc) -> None:
        create(rpc, "devs")
        results = [rpc("get_user_group", usergroupid=v)["result"] for v in (1, "1", "devs")]
        assert results[0] == results[1] == results[2]
        assert list(results[0]) == GROUP_KEYS

    @pytest.mark.parametrize("value", [99, "99", "nope", "DEVS"])
    def test_missing(self, rpc: Rpc, value: Any) -> None:
        create(rpc, "devs")
        assert rpc("get_user_group", usergroupid=value)["error"] == (
            f"user group `{value}` does not exist")

    def test_members_are_users_in_joining_order(self, rpc: Rpc, make_user: MakeUser) -> None:
        for name in ("zoe", "amy"):
            make_user(name)
        create(rpc, "devs")
        for name in ("zoe", "amy"):
            rpc("add_user_to_user_group", usergroupid="devs", userid=name)
        members = rpc("get_user_group", usergroupid="devs")["result"]["members"]
        assert [m["username"] for m in members] == ["zoe", "amy"]
        assert all(list(m) == USER_KEYS for m in members)
        assert "password" not in str(members) and "rpck_" not in str(members)


class TestList:
    def test_admin_sees_all_by_id(self, rpc: Rpc) -> None:
        for name in ("b", "a", "c"):
            create(rpc, name)
        names = [g["group_name"] for g in rpc("get_user_groups")["result"]]
        assert names == ["b", "a", "c"]

    def test_non_admin_sees_only_readable(self, rpc: Rpc, db: Database,
                                          make_user: MakeUser) -> None:
        bob = make_user("bob")
        for name in ("public", "hidden", "granted"):
            create(rpc, name)
        with db.transaction(write=True) as session:
            session.execute(update(UserUserGroupPerm)
                            .where(UserUserGroupPerm.target_group_id.in_([2, 3]))
                            .values(level=Level.NONE))
            session.add(UserUserGroupPerm(user_id=bob.id, target_group_id=3, level=Level.READ))
        names = [g["group_name"] for g in rpc("get_user_groups", key=bob.key)["result"]]
        assert names == ["public", "granted"]

    def test_limit_and_offset(self, rpc: Rpc) -> None:
        for n in range(5):
            create(rpc, f"g{n}")
        page = rpc("get_user_groups", limit=2, offset=1)["result"]
        assert [g["group_name"] for g in page] == ["g1", "g2"]
        assert rpc("get_user_groups", limit=0)["error"] == (
            "Invalid `limit` arg in JSON DATA: must be at least 1")

    def test_empty(self, rpc: Rpc) -> None:
        assert rpc("get_user_groups")["result"] == []


class TestUpdate:
    def test_changes_given_fields_only(self, rpc: Rpc, make_user: MakeUser) -> None:
        make_user("bob")
        create(rpc, "devs", description="old")
        result = rpc("update_user_group", usergroupid="devs", group_name="developers",
                     owner="bob", active=False)["result"]
        assert result["msg"] == "updated user group ID:1 developers"
        assert result["user_group"] == {
            "users_group_id": 1, "group_name": "developers", "group_description": "old",
            "active": False, "owner": "bob", "members": []}

    def test_nothing_to_change(self, rpc: Rpc) -> None:
        create(rpc, "devs")
        assert rpc("update_user_group", usergroupid=1)["result"]["msg"] == (
            "updated user group ID:1 devs")

    def test_name_taken(self, rpc: Rpc) -> None:
        create(rpc, "devs")
        create(rpc, "ops")
        answer = rpc("update_user_group", usergroupid="ops", group_name="devs")
        assert answer["error"] == "failed to update user group `ops`"
        assert rpc("get_user_group", usergroupid=2)["result"]["group_name"] == "ops"

    def test_unknown_owner(self, rpc: Rpc) -> None:
        create(rpc, "devs")
        answer = rpc("update_user_group", usergroupid="devs", owner="ghost")
        assert answer["error"] == "user `ghost` does not exist"

    def test_group_admin_may_not_change_the_owner(self, rpc: Rpc, db: Database,
                                                  make_user: MakeUser) -> None:
        bob = make_user("bob")
        create(rpc, "devs")
        with db.transaction(write=True) as session:
            session.add(UserUserGroupPerm(user_id=bob.id, target_group_id=1, level=Level.ADMIN))
        answer = rpc("update_user_group", key=bob.key, usergroupid="devs", owner="bob")
        assert answer["error"] == "Only Kallithea admin can specify `owner` param"
        answer = rpc("update_user_group", key=bob.key, usergroupid="devs", group_name="d2")
        assert answer["result"]["msg"] == "updated user group ID:1 d2"

    def test_missing(self, rpc: Rpc) -> None:
        assert rpc("update_user_group", usergroupid="x")["error"] == (
            "user group `x` does not exist")


class TestMembership:
    def test_add_and_remove(self, rpc: Rpc, make_user: MakeUser) -> None:
        make_user("bob")
        create(rpc, "devs")
        assert rpc("add_user_to_user_group", usergroupid="devs", userid="bob")["result"] == {
            "success": True, "msg": "added member `bob` to user group `devs`"}
        assert rpc("remove_user_from_user_group", usergroupid=1, userid=3)["result"] == {
            "success": True, "msg": "removed member `bob` from user group `devs`"}
        assert rpc("get_user_group", usergroupid=1)["result"]["members"] == []

    def test_adding_twice(self, rpc: Rpc, db: Database, make_user: MakeUser) -> None:
        make_user("bob")
        create(rpc, "devs")
        rpc("add_user_to_user_group", usergroupid="devs", userid="bob")
        assert rpc("add_user_to_user_group", usergroupid="devs", userid="bob")["result"] == {
            "success": False, "msg": "User is already in that group"}
        assert count(db, UserGroupMember) == 1

    def test_adding_twice_concurrently(self, rpc: Rpc, db: Database, make_user: MakeUser,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
        make_user("bob")
        create(rpc, "devs")
        rpc("add_user_to_user_group", usergroupid="devs", userid="bob")
        # The other call's insert lands between our check and ours: the unique constraint
        # answers, as success: false.
        monkeypatch.setattr(user_groups, "exists", lambda: _NeverExists())
        assert rpc("add_user_to_user_group", usergroupid="devs", userid="bob")["result"] == {
            "success": False, "msg": "User is already in that group"}
        assert count(db, UserGroupMember) == 1

    def test_removing_a_non_member(self, rpc: Rpc, make_user: MakeUser) -> None:
        make_user("bob")
        create(rpc, "devs")
        assert rpc("remove_user_from_user_group", usergroupid="devs",
                   userid="bob")["result"] == {"success": False, "msg": "User wasn't in group"}

    @pytest.mark.parametrize("method", ["add_user_to_user_group",
                                        "remove_user_from_user_group"])
    def test_missing_user_or_group(self, rpc: Rpc, make_user: MakeUser, method: str) -> None:
        make_user("bob")
        create(rpc, "devs")
        assert rpc(method, usergroupid="devs", userid="ghost")["error"] == (
            "user `ghost` does not exist")
        assert rpc(method, usergroupid="nope", userid="bob")["error"] == (
            "user group `nope` does not exist")
        # Both missing: the group answers first, so a caller who may not see the group
        # learns nothing about users.
        assert rpc(method, usergroupid="nope", userid="ghost")["error"] == (
            "user group `nope` does not exist")
        assert rpc(method, usergroupid="devs")["error"] == (
            "Missing non optional `userid` arg in JSON DATA")

    def test_inactive_group_grants_are_ignored(self, rpc: Rpc, db: Database,
                                               make_user: MakeUser) -> None:
        bob = make_user("bob")
        create(rpc, "team")
        create(rpc, "secret")
        rpc("add_user_to_user_group", usergroupid="team", userid="bob")
        with db.transaction(write=True) as session:
            session.execute(delete(UserUserGroupPerm)
                            .where(UserUserGroupPerm.target_group_id == 2))
            session.add(UserGroupUserGroupPerm(group_id=1, target_group_id=2,
                                               level=Level.ADMIN))
        assert rpc("update_user_group", key=bob.key, usergroupid="secret")["error"] is None
        rpc("update_user_group", usergroupid="team", active=False)
        for method in ("get_user_group", "update_user_group"):
            assert rpc(method, key=bob.key, usergroupid="secret")["error"] == (
                "user group `secret` does not exist")
        assert "secret" not in rpc("get_user", key=bob.key)["result"]["permissions"][
            "user_groups"]
        rpc("update_user_group", usergroupid="team", active=True)
        assert rpc("get_user_group", key=bob.key, usergroupid="secret")["error"] is None

    def test_deleting_a_member_user(self, rpc: Rpc, db: Database,
                                    make_user: MakeUser) -> None:
        for name in ("bob", "amy"):
            make_user(name)
        create(rpc, "devs")
        for name in ("bob", "amy"):
            rpc("add_user_to_user_group", usergroupid="devs", userid=name)
        assert rpc("delete_user", userid="bob")["result"] == {
            "msg": "deleted user ID:3 bob", "user": None}
        members = rpc("get_user_group", usergroupid="devs")["result"]["members"]
        assert [m["username"] for m in members] == ["amy"]
        assert count(db, UserGroupMember) == 1

    def test_a_member_without_a_grant_cannot_see_the_group(self, rpc: Rpc, db: Database,
                                                           make_user: MakeUser) -> None:
        bob = make_user("bob")
        create(rpc, "devs")
        rpc("add_user_to_user_group", usergroupid="devs", userid="bob")
        with db.transaction(write=True) as session:
            session.execute(delete(UserUserGroupPerm))
        assert rpc("get_user_group", key=bob.key, usergroupid="devs")["error"] == (
            "user group `devs` does not exist")


class _NeverExists:
    """Stands in for ``sqlalchemy.exists()``: a membership check that never finds the row."""

    def where(self, *_clauses: Any) -> Any:
        from sqlalchemy import false, literal

        return literal(True).is_(false())


class TestDelete:
    def test_message_and_members_go(self, rpc: Rpc, db: Database,
                                    make_user: MakeUser) -> None:
        make_user("bob")
        create(rpc, "devs")
        rpc("add_user_to_user_group", usergroupid="devs", userid="bob")
        assert rpc("delete_user_group", usergroupid="devs")["result"] == {
            "msg": "deleted user group ID:1 devs", "user_group": None}
        assert count(db, UserGroupMember) == 0
        assert count(db, UserUserGroupPerm) == 0
        assert rpc("get_user", userid="bob")["error"] is None

    def test_refused_while_it_holds_permissions(self, rpc: Rpc, db: Database,
                                                make_user: MakeUser) -> None:
        make_user("bob")
        create(rpc, "devs")
        create(rpc, "ops")
        rpc("add_user_to_user_group", usergroupid="devs", userid="bob")
        with db.transaction(write=True) as session:
            session.add_all([Repository(name="r2", owner_id=2), Repository(name="g/r1", owner_id=2),
                             RepoGroup(name="g", owner_id=2)])
            session.flush()
            session.add_all([UserGroupRepoPerm(group_id=1, repo_id=1, level=Level.READ),
                             UserGroupRepoPerm(group_id=1, repo_id=2, level=Level.WRITE),
                             UserGroupRepoGroupPerm(group_id=1, repo_group_id=1,
                                                    level=Level.READ),
                             UserGroupUserGroupPerm(group_id=1, target_group_id=2,
                                                    level=Level.ADMIN)])
        answer = rpc("delete_user_group", usergroupid="devs")
        # Kallithea's text names the repositories; the other grants block too, and are named
        # once no repository is left.
        assert answer["error"] == "User Group assigned to g/r1, r2"
        # Nothing changed.
        assert len(rpc("get_user_group", usergroupid="devs")["result"]["members"]) == 1
        assert count(db, UserGroupRepoPerm) == 2
        assert count(db, UserGroupUserGroupPerm) == 1
        for repo in ("r2", "g/r1"):
            assert rpc("revoke_user_group_permission", repoid=repo,
                       usergroupid="devs")["error"] is None
        assert rpc("delete_user_group", usergroupid="devs")["error"] == (
            "User Group assigned to repo group g, user group ops")

    def test_a_grant_on_the_group_does_not_block(self, rpc: Rpc, db: Database,
                                                 make_user: MakeUser) -> None:
        bob = make_user("bob")
        create(rpc, "devs")
        with db.transaction(write=True) as session:
            session.add(UserUserGroupPerm(user_id=bob.id, target_group_id=1, level=Level.ADMIN))
        assert rpc("delete_user_group", key=bob.key, usergroupid="devs")["error"] is None
        assert count(db, UserUserGroupPerm) == 0

    def test_long_list_is_cut(self, rpc: Rpc, db: Database,
                              monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(user_groups, "MAX_NAMED", 2)
        create(rpc, "devs")
        with db.transaction(write=True) as session:
            session.add_all(Repository(name=f"r{n}", owner_id=2) for n in range(5))
            session.flush()
            session.add_all(UserGroupRepoPerm(group_id=1, repo_id=n, level=Level.READ)
                            for n in range(1, 6))
        assert rpc("delete_user_group", usergroupid="devs")["error"] == (
            "User Group assigned to r0, r1 and 3 more")


class TestDeleteUserWhoOwns:
    def test_owner_of_a_user_group(self, rpc: Rpc, db: Database,
                                   make_user: MakeUser) -> None:
        make_user("bob")
        create(rpc, "devs", owner="bob")
        assert rpc("delete_user", userid="bob")["error"] == "failed to delete user ID:3 bob"
        assert rpc("get_user_group", usergroupid="devs")["result"]["owner"] == "bob"
        rpc("update_user_group", usergroupid="devs", owner="admin")
        assert rpc("delete_user", userid="bob")["error"] is None

    def test_owner_of_a_repository(self, rpc: Rpc, db: Database,
                                   make_user: MakeUser) -> None:
        make_user("bob")
        with db.transaction(write=True) as session:
            session.add(Repository(name="r", owner_id=3))
        assert rpc("delete_user", userid="bob")["error"] == "failed to delete user ID:3 bob"
        assert rpc("get_user", userid="bob")["error"] is None


class TestCreateUsersGroup:
    """RhodeCode 1.2's name: in the Kallithea envelope an alias that also takes ``name``; in
    RhodeCode's id-less envelope its own arguments and answer (API.md §6)."""

    def test_kallithea_envelope_with_name(self, rpc: Rpc) -> None:
        result = rpc("create_users_group", name="devs")["result"]
        assert list(result) == ["msg", "user_group", "id"]
        assert result["msg"] == "created new user group `devs`"
        assert result["id"] == result["user_group"]["users_group_id"] == 1

    def test_kallithea_envelope_with_group_name(self, rpc: Rpc) -> None:
        result = rpc("create_users_group", group_name="devs", description="d",
                     active=False)["result"]
        assert result["user_group"]["group_description"] == "d"
        assert result["user_group"]["active"] is False

    def test_kallithea_envelope_without_a_name(self, rpc: Rpc, make_user: MakeUser) -> None:
        assert rpc("create_users_group")["error"] == (
            "Missing non optional `group_name` arg in JSON DATA")
        # Missing args answer before permissions (API.md §1 rows 12 and 15).
        bob = make_user("bob")
        assert rpc("create_users_group", key=bob.key)["error"] == (
            "Missing non optional `group_name` arg in JSON DATA")

    def test_kallithea_envelope_with_two_different_names(self, rpc: Rpc) -> None:
        assert rpc("create_users_group", name="a", group_name="b")["error"] == (
            "Invalid `name` arg in JSON DATA: must not differ from `group_name` "
            "(they are one argument)")
        assert rpc("create_users_group", name="a", group_name="a")["error"] is None

    def test_rhodecode_envelope(self, client: Client, admin_key: str) -> None:
        body = {"api_key": admin_key, "method": "create_users_group",
                "args": {"name": "devs", "active": False}}
        answer = client.post("/_admin/api", json=body).get_json()
        assert answer == {"result": {"id": 1, "msg": "created new users group devs"},
                          "error": None}
        again = client.post("/_admin/api", json=body).get_json()
        assert again == {"result": None, "error": "user group `devs` already exist"}

    def test_rhodecode_envelope_takes_only_its_args(self, client: Client,
                                                    admin_key: str) -> None:
        body = {"api_key": admin_key, "method": "create_users_group",
                "args": {"group_name": "devs"}}
        answer = client.post("/_admin/api", json=body).get_json()
        assert answer == {"result": None,
                          "error": "Missing non optional `name` arg in JSON DATA"}

    def test_rhodecode_envelope_is_admin_only(self, client: Client, db: Database,
                                              make_user: MakeUser) -> None:
        bob = make_user("bob")
        grant_global(db, bob.id, "hg.usergroup.create.true")
        body = {"api_key": bob.key, "method": "create_users_group", "args": {"name": "devs"}}
        answer = client.post("/_admin/api", json=body).get_json()
        assert answer == {"result": None, "error": "Access was denied to this resource."}


def test_expired_key_cannot_call(rpc: Rpc, make_user: MakeUser) -> None:
    old = make_user("old", expires_on=dt.datetime(2000, 1, 1))
    assert rpc("get_user_groups", key=old.key)["error"] == "Invalid API key"
