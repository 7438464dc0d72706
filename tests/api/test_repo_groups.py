"""Repository groups: directories on disk, renamed and moved with everything inside."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest

from rpcserver.core.config import Config
from tests.answers import err, ok
from tests.conftest import ApiUser, Rpc
from tests.gitremotes import leftovers, on_disk

GROUP_KEYS = ["group_id", "group_name", "group_description", "parent_group", "repositories",
              "owner"]


@pytest.fixture
def config(config: Config) -> Config:
    return dataclasses.replace(config, clone_uri_allow_private_hosts=True)


def dirs(config: Config) -> list[str]:
    """Directories under the root that are neither repositories nor inside one: groups."""
    root = Path(config.repos_root)

    def in_repository(path: Path) -> bool:
        return any((p / "HEAD").is_file() for p in (path, *path.parents) if p != root
                   and root in p.parents)

    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if p.is_dir() and ".rpcserver" not in p.parts and not in_repository(p))


def test_create_and_read(rpc: Rpc, config: Config, make_user: Callable[..., ApiUser]) -> None:
    make_user("bob")
    created = ok(rpc("create_repo_group", group_name="top", description="the top"))
    assert created["msg"] == "created new repo group `top`"
    assert list(created["repo_group"]) == GROUP_KEYS
    assert created["repo_group"]["group_name"] == "top"
    assert created["repo_group"]["parent_group"] is None
    child = ok(rpc("create_repo_group", group_name="child", parent="top", owner="bob"))
    assert child["msg"] == "created new repo group `child`"  # the name as given ...
    assert child["repo_group"]["group_name"] == "top/child"  # ... the full path here
    assert child["repo_group"]["parent_group"] == "top"
    assert child["repo_group"]["owner"] == "bob"
    ok(rpc("create_repo_group", group_name="deep", parent="top/child"))
    ok(rpc("create_repo", repo_name="top/r"))
    group = ok(rpc("get_repo_group", repogroupid="top"))
    assert group["repositories"] == ["top/r"]
    assert group["group_description"] == "the top"
    assert group["members"] == [{"name": "default", "type": "user", "permission": "group.read"}]
    by_id = ok(rpc("get_repo_group", repogroupid=group["group_id"]))
    assert by_id["group_name"] == "top"
    assert [g["group_name"] for g in ok(rpc("get_repo_groups"))] == [
        "top", "top/child", "top/child/deep"]
    assert dirs(config) == ["top", "top/child", "top/child/deep"]


def test_create_refusals(rpc: Rpc, config: Config, make_user: Callable[..., ApiUser]) -> None:
    bob = make_user("bob")
    ok(rpc("create_repo_group", group_name="g"))
    ok(rpc("create_repo", repo_name="r"))
    assert err(rpc("create_repo_group", group_name="g")) == "repo group `g` already exist"
    assert err(rpc("create_repo_group", group_name="g", parent=None)) == \
        "repo group `g` already exist"
    assert err(rpc("create_repo_group", group_name="r")) == "failed to create repo group `r`"
    assert err(rpc("create_repo_group", group_name="x", parent="nope")) == \
        "repository group `nope` does not exist"
    # As Kallithea: one name; a nested group is made with `parent`.
    assert err(rpc("create_repo_group", group_name="a/b")) == \
        "failed to create repo group `a/b`"
    ok(rpc("create_repo_group", group_name="a"))
    assert err(rpc("create_repo_group", group_name="a/b")) == \
        "failed to create repo group `a/b`"
    ok(rpc("delete_repo_group", repogroupid="a"))
    assert err(rpc("create_repo_group", group_name="../x")).startswith(
        "Invalid `group_name` arg in JSON DATA:")
    assert err(rpc("create_repo_group", group_name="z", key=bob.key)) == \
        "Access was denied to this resource."
    assert dirs(config) == ["g"]


def test_copy_permissions_from_the_parent(rpc: Rpc, make_user: Callable[..., ApiUser]) -> None:
    make_user("bob")
    ok(rpc("create_repo_group", group_name="p"))
    ok(rpc("grant_user_permission_to_repo_group", repogroupid="p", userid="bob",
           perm="group.admin"))
    ok(rpc("create_repo_group", group_name="c", parent="p", copy_permissions=True))
    members = ok(rpc("get_repo_group", repogroupid="p/c"))["members"]
    assert {m["name"]: m["permission"] for m in members} == {
        "default": "group.read", "bob": "group.admin"}
    ok(rpc("create_repo", repo_name="p/r", copy_permissions=True))
    members = ok(rpc("get_repo", repoid="p/r"))["members"]
    assert {m["name"]: m["permission"] for m in members} == {
        "default": "repository.read", "bob": "repository.admin"}


def test_rename_moves_directories_and_every_name_inside(rpc: Rpc, config: Config) -> None:
    ok(rpc("create_repo_group", group_name="a"))
    ok(rpc("create_repo_group", group_name="b", parent="a"))
    ok(rpc("create_repo_group", group_name="other"))
    ok(rpc("create_repo", repo_name="a/r1"))
    ok(rpc("create_repo", repo_name="a/b/r2"))
    ok(rpc("create_repo", repo_name="ab"))  # shares the prefix, not the path
    group_id = ok(rpc("get_repo_group", repogroupid="a"))["group_id"]
    result = ok(rpc("update_repo_group", repogroupid="a", group_name="z", description="d"))
    assert result["msg"] == f"updated repository group ID:{group_id} z"
    assert result["repo_group"]["group_name"] == "z"
    assert result["repo_group"]["repositories"] == ["z/r1"]
    assert on_disk(config.repos_root) == ["ab", "z/b/r2", "z/r1"]
    assert ok(rpc("get_repo", repoid="z/b/r2"))["repo_name"] == "z/b/r2"
    assert ok(rpc("get_repo_group", repogroupid="z/b"))["parent_group"] == "z"
    moved = ok(rpc("update_repo_group", repogroupid="z", parent="other"))["repo_group"]
    assert (moved["group_name"], moved["parent_group"]) == ("other/z", "other")
    assert on_disk(config.repos_root) == ["ab", "other/z/b/r2", "other/z/r1"]
    ok(rpc("update_repo_group", repogroupid=group_id, parent=""))
    assert on_disk(config.repos_root) == ["ab", "z/b/r2", "z/r1"]
    ok(rpc("update_repo_group", repogroupid=group_id, group_name="other/y"))
    assert on_disk(config.repos_root) == ["ab", "other/y/b/r2", "other/y/r1"]
    assert [g["group_name"] for g in ok(rpc("get_repo_groups"))] == [
        "other/y", "other/y/b", "other"]
    assert leftovers(config.repos_root) == []


def test_update_refusals(rpc: Rpc, config: Config) -> None:
    ok(rpc("create_repo_group", group_name="a"))
    ok(rpc("create_repo_group", group_name="b", parent="a"))
    ok(rpc("create_repo_group", group_name="c"))
    ok(rpc("create_repo", repo_name="taken"))
    assert err(rpc("update_repo_group", repogroupid="a", parent="a/b")) == \
        "failed to update repository group `a`"
    assert err(rpc("update_repo_group", repogroupid="a", parent="a")) == \
        "failed to update repository group `a`"
    assert err(rpc("update_repo_group", repogroupid="a", group_name="c")) == \
        "failed to update repository group `a`"
    assert err(rpc("update_repo_group", repogroupid="a", group_name="taken")) == \
        "failed to update repository group `a`"
    assert err(rpc("update_repo_group", repogroupid="a", parent="nope")) == \
        "repository group `nope` does not exist"
    assert err(rpc("update_repo_group", repogroupid="a", group_name="x/y", parent="c")).startswith(
        "Invalid `group_name` arg in JSON DATA:")
    assert dirs(config) == ["a", "a/b", "c"]


def test_delete_only_when_empty(rpc: Rpc, config: Config) -> None:
    ok(rpc("create_repo_group", group_name="g"))
    ok(rpc("create_repo_group", group_name="sub", parent="g"))
    ok(rpc("create_repo", repo_name="g/r"))
    assert err(rpc("delete_repo_group", repogroupid="g")) == "repository group `g` is not empty"
    ok(rpc("delete_repo", repoid="g/r"))
    assert err(rpc("delete_repo_group", repogroupid="g")) == "repository group `g` is not empty"
    sub_id = ok(rpc("get_repo_group", repogroupid="g/sub"))["group_id"]
    assert ok(rpc("delete_repo_group", repogroupid="g/sub")) == {
        "msg": f"deleted repo group ID:{sub_id} g/sub", "repo_group": None}
    (Path(config.repos_root) / "g" / "stray").mkdir()
    assert err(rpc("delete_repo_group", repogroupid="g")) == "repository group `g` is not empty"
    (Path(config.repos_root) / "g" / "stray").rmdir()
    ok(rpc("delete_repo_group", repogroupid="g"))
    assert dirs(config) == [] and leftovers(config.repos_root) == []
    assert err(rpc("get_repo_group", repogroupid="g")) == "repository group `g` does not exist"


def test_groups_are_for_admins(rpc: Rpc, make_user: Callable[..., ApiUser]) -> None:
    bob = make_user("bob")
    ok(rpc("create_repo_group", group_name="g"))
    for method, args in (("get_repo_group", {"repogroupid": "g"}), ("get_repo_groups", {}),
                         ("update_repo_group", {"repogroupid": "g", "description": "x"}),
                         ("delete_repo_group", {"repogroupid": "g"})):
        assert err(rpc(method, key=bob.key, **args)) == "Access was denied to this resource."
