"""Grants on repositories and repository groups, with apply_to_children."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import delete

from rpcserver.db.database import Database
from rpcserver.db.models import UserUserGroupPerm
from tests.answers import err, ok
from tests.conftest import ApiUser, Rpc


def members(rpc: Rpc, method: str, **args: Any) -> dict[str, str]:
    found = ok(rpc(method, **args))["members"]
    return {f"{m['type']}:{m['name']}": m["permission"] for m in found}


@pytest.fixture
def bob(make_user: Callable[..., ApiUser]) -> ApiUser:
    return make_user("bob")


@pytest.fixture
def devs(rpc: Rpc) -> str:
    ok(rpc("create_user_group", group_name="devs"))
    return "devs"


def test_user_grants_on_a_repository(rpc: Rpc, bob: ApiUser) -> None:
    ok(rpc("create_repo", repo_name="r", private=True))
    assert err(rpc("get_repo", repoid="r", key=bob.key)) == "repository `r` does not exist"
    assert ok(rpc("grant_user_permission", repoid="r", userid="bob",
                  perm="repository.read")) == {
        "msg": "Granted perm: `repository.read` for user: `bob` in repo: `r`", "success": True}
    ok(rpc("get_repo", repoid="r", key=bob.key))
    ok(rpc("grant_user_permission", repoid="r", userid=bob.id, perm="repository.write"))
    assert members(rpc, "get_repo", repoid="r")["user:bob"] == "repository.write"
    assert ok(rpc("revoke_user_permission", repoid="r", userid="bob")) == {
        "msg": "Revoked perm for user: `bob` in repo: `r`", "success": True}
    assert "user:bob" not in members(rpc, "get_repo", repoid="r")
    assert err(rpc("get_repo", repoid="r", key=bob.key)) == "repository `r` does not exist"
    ok(rpc("revoke_user_permission", repoid="r", userid="bob"))  # nothing to revoke: fine


def test_grant_errors(rpc: Rpc, bob: ApiUser) -> None:
    ok(rpc("create_repo", repo_name="r"))
    ok(rpc("create_repo_group", group_name="g"))
    assert err(rpc("grant_user_permission", repoid="r", userid="bob", perm="repository.god")) \
        == "permission `repository.god` does not exist"
    assert err(rpc("grant_user_permission", repoid="r", userid="bob", perm="group.read")) == \
        "permission `group.read` is invalid, should start with repository."
    assert err(rpc("grant_user_permission", repoid="r", userid="nobody",
                   perm="repository.read")) == "user `nobody` does not exist"
    assert err(rpc("grant_user_permission", repoid="nope", userid="bob",
                   perm="repository.read")) == "repository `nope` does not exist"
    assert err(rpc("grant_user_permission_to_repo_group", repogroupid="g", userid="bob",
                   perm="repository.read")) == \
        "permission `repository.read` is invalid, should start with group."
    assert err(rpc("grant_user_permission_to_repo_group", repogroupid="g", userid="bob",
                   perm="group.read", apply_to_children="bogus")).startswith(
        "Invalid `apply_to_children` arg in JSON DATA: must be one of none, repos, groups, all")
    assert err(rpc("grant_user_permission", repoid="r", userid="bob", perm="repository.read",
                   key=bob.key)) == "Access was denied to this resource."


def test_user_group_grants_on_a_repository(rpc: Rpc, bob: ApiUser, devs: str) -> None:
    ok(rpc("create_repo", repo_name="r", private=True))
    ok(rpc("add_user_to_user_group", usergroupid=devs, userid="bob"))
    assert ok(rpc("grant_user_group_permission", repoid="r", usergroupid=devs,
                  perm="repository.write")) == {
        "msg": "Granted perm: `repository.write` for user group: `devs` in repo: `r`",
        "success": True}
    assert members(rpc, "get_repo", repoid="r")["user_group:devs"] == "repository.write"
    ok(rpc("get_repo", repoid="r", key=bob.key))
    assert ok(rpc("revoke_user_group_permission", repoid="r", usergroupid=devs)) == {
        "msg": "Revoked perm for user group: `devs` in repo: `r`", "success": True}
    assert err(rpc("get_repo", repoid="r", key=bob.key)) == "repository `r` does not exist"


def test_a_repository_admin_may_grant_to_a_user_group_it_can_read(
        rpc: Rpc, bob: ApiUser, devs: str, db: Database) -> None:
    ok(rpc("create_repo", repo_name="r"))
    ok(rpc("grant_user_permission", repoid="r", userid="bob", perm="repository.admin"))
    ok(rpc("grant_user_group_permission", repoid="r", usergroupid=devs,
           perm="repository.read", key=bob.key))
    ok(rpc("create_user_group", group_name="secret"))
    with db.transaction(write=True) as session:  # nobody but its owner may read it
        session.execute(delete(UserUserGroupPerm))
    assert err(rpc("grant_user_group_permission", repoid="r", usergroupid="secret",
                   perm="repository.read", key=bob.key)) == \
        "user group `secret` does not exist"
    # grants to users stay admin-only
    assert err(rpc("grant_user_permission", repoid="r", userid="bob",
                   perm="repository.read", key=bob.key)) == \
        "Access was denied to this resource."


@pytest.fixture
def tree(rpc: Rpc) -> None:
    """g/{r1, secret (private), sub/{r2}}"""
    ok(rpc("create_repo_group", group_name="g"))
    ok(rpc("create_repo_group", group_name="sub", parent="g"))
    ok(rpc("create_repo", repo_name="g/r1"))
    ok(rpc("create_repo", repo_name="g/secret", private=True))
    ok(rpc("create_repo", repo_name="g/sub/r2"))


@pytest.mark.parametrize(("children", "repos", "groups"), [
    ("none", [], ["g"]),
    ("repos", ["g/r1", "g/secret", "g/sub/r2"], ["g"]),
    ("groups", [], ["g", "g/sub"]),
    ("all", ["g/r1", "g/secret", "g/sub/r2"], ["g", "g/sub"]),
])
def test_apply_to_children(rpc: Rpc, bob: ApiUser, tree: None, children: str,
                           repos: list[str], groups: list[str]) -> None:
    assert ok(rpc("grant_user_permission_to_repo_group", repogroupid="g", userid="bob",
                  perm="group.write", apply_to_children=children)) == {
        "msg": f"Granted perm: `group.write` (recursive:{children}) for user: `bob` in repo "
               "group: `g`", "success": True}
    for name in ("g/r1", "g/secret", "g/sub/r2"):
        expected = "repository.write" if name in repos else None
        assert members(rpc, "get_repo", repoid=name).get("user:bob") == expected
    for name in ("g", "g/sub"):
        expected = "group.write" if name in groups else None
        assert members(rpc, "get_repo_group", repogroupid=name).get("user:bob") == expected
    assert ok(rpc("revoke_user_permission_from_repo_group", repogroupid="g", userid="bob",
                  apply_to_children=children)) == {
        "msg": f"Revoked perm (recursive:{children}) for user: `bob` in repo group: `g`",
        "success": True}
    assert all("user:bob" not in members(rpc, "get_repo", repoid=n)
               for n in ("g/r1", "g/secret", "g/sub/r2"))
    assert all("user:bob" not in members(rpc, "get_repo_group", repogroupid=n)
               for n in ("g", "g/sub"))


def test_default_is_never_granted_on_a_private_repository(rpc: Rpc, tree: None) -> None:
    ok(rpc("grant_user_permission_to_repo_group", repogroupid="g", userid="default",
           perm="group.write", apply_to_children="all"))
    assert members(rpc, "get_repo", repoid="g/r1")["user:default"] == "repository.write"
    assert members(rpc, "get_repo", repoid="g/secret")["user:default"] == "repository.none"


def test_user_group_grants_on_a_repository_group(rpc: Rpc, bob: ApiUser, devs: str,
                                                 tree: None) -> None:
    assert ok(rpc("grant_user_group_permission_to_repo_group", repogroupid="g",
                  usergroupid=devs, perm="group.read", apply_to_children="repos")) == {
        "msg": "Granted perm: `group.read` (recursive:repos) for user group: `devs` in repo "
               "group: `g`", "success": True}
    assert members(rpc, "get_repo", repoid="g/secret")["user_group:devs"] == "repository.read"
    ok(rpc("add_user_to_user_group", usergroupid=devs, userid="bob"))
    ok(rpc("get_repo", repoid="g/secret", key=bob.key))
    assert ok(rpc("revoke_user_group_permission_from_repo_group", repogroupid="g",
                  usergroupid=devs, apply_to_children="all")) == {
        "msg": "Revoked perm (recursive:all) for user group: `devs` in repo group: `g`",
        "success": True}
    assert err(rpc("get_repo", repoid="g/secret", key=bob.key)) == \
        "repository `g/secret` does not exist"


def test_a_group_admin_may_grant_on_its_group(rpc: Rpc, bob: ApiUser, tree: None,
                                              make_user: Callable[..., ApiUser]) -> None:
    make_user("carol")
    assert err(rpc("grant_user_permission_to_repo_group", repogroupid="g", userid="carol",
                   perm="group.read", key=bob.key)) == "Access was denied to this resource."
    ok(rpc("grant_user_permission_to_repo_group", repogroupid="g", userid="bob",
           perm="group.admin"))
    ok(rpc("grant_user_permission_to_repo_group", repogroupid="g", userid="carol",
           perm="group.read", key=bob.key))
    assert members(rpc, "get_repo_group", repogroupid="g")["user:carol"] == "group.read"
