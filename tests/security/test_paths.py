"""Names that try to leave repos_root, collide, or grow past their bounds."""

from __future__ import annotations

from pathlib import Path

from rpcserver.config import Config
from tests.conftest import Rpc
from tests.gitremotes import on_disk
from tests.security.conftest import err, ok


def test_moving_a_group_cannot_make_a_name_inside_longer_than_allowed(rpc: Rpc,
                                                                     config: Config) -> None:
    # Names are at most 255 characters; a rename or move of a group rewrites every name
    # inside, which must then still fit (PostgreSQL: an internal error; SQLite: a repository
    # whose name no longer maps to a path, so every later call on it failed).
    x, y, r = "x" * 100, "y" * 100, "r" * 100
    ok(rpc("create_repo_group", group_name=x))
    ok(rpc("create_repo_group", group_name="g"))
    ok(rpc("create_repo_group", group_name=y, parent="g"))
    ok(rpc("create_repo", repo_name=f"g/{y}/{r}"))
    too_long = "would be longer than 255 characters"
    assert err(rpc("update_repo_group", repogroupid="g", parent=x)) == (
        f"Invalid `parent` arg in JSON DATA: the full name of `g/{y}/{r}` {too_long}")
    assert err(rpc("update_repo_group", repogroupid="g", group_name=f"{x}/g")) == (
        f"Invalid `group_name` arg in JSON DATA: the full name of `g/{y}/{r}` {too_long}")
    assert err(rpc("update_repo_group", repogroupid="g", group_name="g" * 60)) == (
        f"Invalid `group_name` arg in JSON DATA: the full name of `g/{y}/{r}` {too_long}")
    assert [g["group_name"] for g in ok(rpc("get_repo_groups"))] == [x, "g", f"g/{y}"]
    assert on_disk(config.repos_root) == [f"g/{y}/{r}"]
    assert ok(rpc("get_repo", repoid=f"g/{y}/{r}"))["repo_name"] == f"g/{y}/{r}"
    # What fits still moves.
    ok(rpc("update_repo_group", repogroupid="g", group_name="g" * 50))
    assert on_disk(config.repos_root) == [f"{'g' * 50}/{y}/{r}"]
    assert Path(config.repos_root, "g" * 50, y, r, "HEAD").is_file()
