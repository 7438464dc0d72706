"""Repositories through the WSGI app: create, read, update, fork, delete — on real disk."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rpcserver.api.repos import MAX_REVISION_NAMES
from rpcserver.core.config import Config
from tests import gitremotes
from tests.answers import err, ok
from tests.conftest import ApiUser, Rpc
from tests.gitremotes import (
    GitDaemon,
    SmartHttp,
    Upstream,
    api_caller,
    leftovers,
    on_disk,
    refs_of,
)

#: Shared fixtures (real remotes on loopback).
remotes = gitremotes.remotes
upstream = gitremotes.upstream
daemon = gitremotes.daemon
http_remote = gitremotes.http_remote

EMPTY = {"short_id": "000000000000", "raw_id": "0" * 40, "revision": -1, "message": "",
         "date": "1970-01-01T00:00:00", "author": ""}
REPO_KEYS = ["repo_id", "repo_name", "repo_type", "clone_uri", "private", "created_on",
             "description", "landing_rev", "owner", "fork_of", "enable_statistics",
             "enable_downloads", "last_changeset"]


@pytest.fixture
def config(config: Config) -> Config:
    return dataclasses.replace(config, clone_uri_allow_private_hosts=True)


def root(config: Config) -> Path:
    return Path(config.repos_root)


# -- create ------------------------------------------------------------------------------


def test_create_an_empty_repository(rpc: Rpc, config: Config) -> None:
    assert ok(rpc("create_repo", repo_name="alpha")) == {
        "msg": "Created new repository `alpha`", "success": True}  # Kallithea's two keys
    repo = ok(rpc("get_repo", repoid="alpha"))
    assert list(repo)[:13] == REPO_KEYS
    assert repo["repo_name"] == "alpha" and repo["repo_type"] == "git"
    assert repo["description"] == "alpha"  # empty description: the name
    assert repo["landing_rev"] == ["rev", "tip"]
    assert repo["owner"] == "admin" and repo["fork_of"] is None and repo["clone_uri"] is None
    assert repo["last_changeset"] == EMPTY
    assert repo["members"] == [{"name": "default", "type": "user",
                                "permission": "repository.read"}]
    assert [f["username"] for f in repo["followers"]] == ["admin"]
    assert on_disk(config.repos_root) == ["alpha"]
    assert refs_of(root(config) / "alpha") == {"HEAD": "refs/heads/master"}
    assert leftovers(config.repos_root) == []


def test_create_by_cloning_over_git_and_http(rpc: Rpc, config: Config, upstream: Upstream,
                                             daemon: GitDaemon,
                                             http_remote: SmartHttp) -> None:
    ok(rpc("create_repo", repo_name="viagit", clone_uri=daemon.url("up")))
    url = http_remote.url("up", "bob", "s3cr3t")
    ok(rpc("create_repo", repo_name="viahttp", clone_uri=url, description="mirror"))
    for name in ("viagit", "viahttp"):
        repo = ok(rpc("get_repo", repoid=name, with_revision_names=True))
        assert repo["last_changeset"]["raw_id"] == upstream.ref("master")
        assert repo["last_changeset"]["revision"] == 2
        assert repo["branches"] == {"master": upstream.ref("master")}
        assert repo["tags"] == {"v1": upstream.ref("master")}
        assert repo["bookmarks"] == {}
        assert refs_of(root(config) / name)["refs/heads/master"] == upstream.ref("master")
    masked = ok(rpc("get_repo", repoid="viahttp"))["clone_uri"]
    assert masked == url.replace("s3cr3t", "***") and "s3cr3t" not in masked


def test_revision_names_are_bounded(rpc: Rpc, config: Config) -> None:
    """Anyone who can push can create refs without end; get_repo lists at most 10,000."""
    ok(rpc("create_repo", repo_name="many"))
    path = root(config) / "many"
    [tip] = Upstream(path).commit()  # master, like a push would make it

    def tags(n: int) -> None:
        (path / "packed-refs").write_text(
            "".join(f"{tip} refs/tags/t{i:05d}\n" for i in range(n)))

    tags(MAX_REVISION_NAMES - 1)
    repo = ok(rpc("get_repo", repoid="many", with_revision_names=True))
    assert repo["branches"] == {"master": tip}
    assert len(repo["tags"]) == MAX_REVISION_NAMES - 1
    tags(MAX_REVISION_NAMES)
    assert err(rpc("get_repo", repoid="many", with_revision_names=True)) == (
        "repository `many` has more than 10,000 branches and tags: too many to list")
    assert ok(rpc("get_repo", repoid="many"))["repo_name"] == "many"


def test_create_inside_groups(rpc: Rpc, config: Config) -> None:
    assert err(rpc("create_repo", repo_name="g/r")) == "repo group `g` not found"
    ok(rpc("create_repo_group", group_name="g"))
    ok(rpc("create_repo_group", group_name="sub", parent="g"))
    ok(rpc("create_repo", repo_name="g/sub/r"))
    assert ok(rpc("get_repo", repoid="g/sub/r"))["repo_name"] == "g/sub/r"
    assert on_disk(config.repos_root) == ["g/sub/r"]
    assert ok(rpc("get_repo_group", repogroupid="g/sub"))["repositories"] == ["g/sub/r"]


def test_create_refuses_taken_names(rpc: Rpc) -> None:
    ok(rpc("create_repo", repo_name="r"))
    ok(rpc("create_repo_group", group_name="g"))
    assert err(rpc("create_repo", repo_name="r")) == "repo `r` already exist"
    assert err(rpc("create_repo", repo_name="g")) == "repo `g` already exist"


@pytest.mark.parametrize("name", ["../evil", "/abs", "a//b", "-rf", "r.git", "a/./b", ".x",
                                  "has space", "x\n", "123", "a/..", "é"])
def test_create_refuses_names_that_are_not_safe_paths(rpc: Rpc, config: Config,
                                                      name: str) -> None:
    assert err(rpc("create_repo", repo_name=name)).startswith(
        "Invalid `repo_name` arg in JSON DATA: ")
    assert on_disk(config.repos_root) == []


def test_private_repositories_grant_default_nothing(rpc: Rpc, make_user: Callable[..., ApiUser]
                                                    ) -> None:
    bob = make_user("bob")
    ok(rpc("create_repo", repo_name="secret", private=True))
    ok(rpc("create_repo", repo_name="open"))
    assert ok(rpc("get_repo", repoid="secret"))["members"] == [
        {"name": "default", "type": "user", "permission": "repository.none"}]
    assert err(rpc("get_repo", repoid="secret", key=bob.key)) == \
        "repository `secret` does not exist"
    assert [r["repo_name"] for r in ok(rpc("get_repos", key=bob.key))] == ["open"]
    assert [r["repo_name"] for r in ok(rpc("get_repos"))] == ["secret", "open"]


def test_who_may_create_where(rpc: Rpc, make_user: Callable[..., ApiUser]) -> None:
    bob = make_user("bob")
    ok(rpc("create_repo_group", group_name="team"))
    assert err(rpc("create_repo", repo_name="x", owner="admin", key=bob.key)) == \
        "Only Kallithea admin can specify `owner` param"
    # default holds hg.create.repository: top level is allowed.
    ok(rpc("create_repo", repo_name="bobs", key=bob.key))
    assert ok(rpc("get_repo", repoid="bobs", key=bob.key))["owner"] == "bob"
    assert err(rpc("create_repo", repo_name="team/r", key=bob.key)) == \
        "no permission to create repo in team"
    ok(rpc("grant_user_permission_to_repo_group", repogroupid="team", userid="bob",
           perm="group.write"))
    ok(rpc("create_repo", repo_name="team/r", key=bob.key))
    ok(rpc("create_repo_group", group_name="hidden"))
    ok(rpc("grant_user_permission_to_repo_group", repogroupid="hidden", userid="default",
           perm="group.none"))
    assert err(rpc("create_repo", repo_name="hidden/r", key=bob.key)) == \
        "repo group `hidden` not found"
    ok(rpc("create_repo", repo_name="forcarol", owner=bob.id))
    made_for_bob = ok(rpc("get_repo", repoid="forcarol"))
    assert made_for_bob["owner"] == "bob"
    # The owner follows; the admin who created it does not (as Kallithea).
    assert [f["username"] for f in made_for_bob["followers"]] == ["bob"]


def test_without_create_permission_top_level_is_refused(
        rpc: Rpc, make_user: Callable[..., ApiUser], db: Any) -> None:
    from sqlalchemy import delete

    from rpcserver.db.models import GlobalPermission

    with db.transaction(write=True) as session:
        session.execute(delete(GlobalPermission).where(
            GlobalPermission.name == "hg.create.repository"))
    bob = make_user("bob")
    assert err(rpc("create_repo", repo_name="r", key=bob.key)) == \
        "no permission to create top level repo"


def test_create_with_a_refused_clone_uri_creates_nothing(rpc: Rpc, config: Config) -> None:
    answer = rpc("create_repo", repo_name="r", clone_uri="ext::sh -c id")
    assert err(answer) == ("Invalid `clone_uri` arg in JSON DATA: git transport helpers "
                           "(`<transport>::<address>`) are not allowed")
    assert err(rpc("create_repo", repo_name="r", clone_uri="/etc")).startswith(
        "Invalid `clone_uri` arg in JSON DATA: local paths are not allowed")
    assert err(rpc("get_repo", repoid="r")) == "repository `r` does not exist"
    assert on_disk(config.repos_root) == [] and leftovers(config.repos_root) == []


def test_create_from_an_unreachable_remote_creates_nothing(rpc: Rpc, config: Config,
                                                          remotes: Path,
                                                          daemon: GitDaemon) -> None:
    assert err(rpc("create_repo", repo_name="r", clone_uri=daemon.url("missing"))) == \
        "failed to create repository `r`"
    assert on_disk(config.repos_root) == [] and leftovers(config.repos_root) == []
    assert err(rpc("get_repo", repoid="r")) == "repository `r` does not exist"


def test_private_hosts_are_refused_by_default(client: Any, admin_key: str, config: Config,
                                              database: Any, db: Any) -> None:
    from werkzeug.test import Client

    from rpcserver.api import build_registry
    from rpcserver.web.app import create_app

    strict = dataclasses.replace(config, clone_uri_allow_private_hosts=False)
    app = create_app(strict, registry=build_registry(), db=db)
    body = {"id": 1, "api_key": admin_key, "method": "create_repo",
            "args": {"repo_name": "r", "clone_uri": "http://127.0.0.1:9/r"}}
    answer = Client(app).post("/_admin/api", json=body).get_json()
    assert answer["error"] == ("Invalid `clone_uri` arg in JSON DATA: host `127.0.0.1` is on a "
                               "loopback, private or link-local network (see "
                               "clone_uri_allow_private_hosts)")


# -- update ------------------------------------------------------------------------------


def test_rename_and_move_between_groups_moves_the_directory(rpc: Rpc, config: Config,
                                                           upstream: Upstream,
                                                           daemon: GitDaemon) -> None:
    ok(rpc("create_repo", repo_name="r", clone_uri=daemon.url("up")))
    ok(rpc("create_repo_group", group_name="g"))
    repo_id = ok(rpc("get_repo", repoid="r"))["repo_id"]
    result = ok(rpc("update_repo", repoid="r", name="renamed"))
    assert result["msg"] == f"updated repo ID:{repo_id} renamed"
    assert result["repository"]["repo_name"] == "renamed"
    assert on_disk(config.repos_root) == ["renamed"]
    ok(rpc("update_repo", repoid=repo_id, group="g"))
    assert on_disk(config.repos_root) == ["g/renamed"]
    assert ok(rpc("get_repo_group", repogroupid="g"))["repositories"] == ["g/renamed"]
    ok(rpc("update_repo", repoid=repo_id, name="g/again"))
    assert on_disk(config.repos_root) == ["g/again"]
    ok(rpc("update_repo", repoid=repo_id, group=""))
    assert on_disk(config.repos_root) == ["again"]
    again = ok(rpc("get_repo", repoid="again"))
    assert again["last_changeset"]["raw_id"] == upstream.ref("master")
    assert refs_of(root(config) / "again")["refs/heads/master"] == upstream.ref("master")


def test_update_fields(rpc: Rpc, make_user: Callable[..., ApiUser]) -> None:
    make_user("bob")
    ok(rpc("create_repo", repo_name="r"))
    repo = ok(rpc("update_repo", repoid="r", description="d", private=True,
                  landing_rev="branch:main", enable_statistics=True, enable_downloads=True,
                  owner="bob", clone_uri="https://u:pw@127.0.0.1/x"))["repository"]
    assert (repo["description"], repo["private"], repo["landing_rev"]) == (
        "d", True, ["branch", "main"])
    assert repo["enable_statistics"] and repo["enable_downloads"] and repo["owner"] == "bob"
    assert repo["clone_uri"] == "https://u:***@127.0.0.1/x"
    assert ok(rpc("update_repo", repoid="r", clone_uri=""))["repository"]["clone_uri"] is None


def test_update_refusals(rpc: Rpc, config: Config, make_user: Callable[..., ApiUser]) -> None:
    bob = make_user("bob")
    ok(rpc("create_repo", repo_name="a"))
    ok(rpc("create_repo", repo_name="b"))
    assert err(rpc("update_repo", repoid="a", name="b")) == "failed to update repo `a`"
    assert err(rpc("update_repo", repoid="a", group="nope")) == \
        "repository group `nope` does not exist"
    assert err(rpc("update_repo", repoid="a", name="x/y", group="g")).startswith(
        "Invalid `name` arg in JSON DATA:")
    assert err(rpc("update_repo", repoid="a", name="../up")).startswith(
        "Invalid `name` arg in JSON DATA:")
    assert err(rpc("update_repo", repoid="a", clone_uri="--upload-pack=x")) == \
        "Invalid `clone_uri` arg in JSON DATA: must not start with `-`"
    assert err(rpc("update_repo", repoid="a", description="x", key=bob.key)) == \
        "Access was denied to this resource."
    assert on_disk(config.repos_root) == ["a", "b"]


# -- fork ----------------------------------------------------------------------------------


def test_fork_is_a_real_clone(rpc: Rpc, config: Config, upstream: Upstream,
                              daemon: GitDaemon, make_user: Callable[..., ApiUser]) -> None:
    ok(rpc("create_repo", repo_name="src", clone_uri=daemon.url("up")))
    ok(rpc("grant_user_permission", repoid="src", userid=make_user("bob").id,
           perm="repository.write"))
    assert ok(rpc("fork_repo", repoid="src", fork_name="myfork", copy_permissions=True)) == {
        "msg": "Created fork of `src` as `myfork`", "success": True}
    fork = ok(rpc("get_repo", repoid="myfork"))
    assert fork["fork_of"] == "src"
    assert fork["last_changeset"] == ok(rpc("get_repo", repoid="src"))["last_changeset"]
    assert {m["name"]: m["permission"] for m in fork["members"]} == {
        "default": "repository.read", "bob": "repository.write"}
    source_refs = refs_of(root(config) / "src")
    assert refs_of(root(config) / "myfork") == source_refs
    assert err(rpc("fork_repo", repoid="src", fork_name="myfork")) == "fork `myfork` already exist"
    assert err(rpc("fork_repo", repoid="myfork", fork_name="src")) == "repo `src` already exist"


def test_fork_rules(rpc: Rpc, make_user: Callable[..., ApiUser]) -> None:
    bob = make_user("bob")
    ok(rpc("create_repo", repo_name="src"))
    ok(rpc("create_repo", repo_name="closed", private=True))
    ok(rpc("create_repo_group", group_name="g"))
    ok(rpc("fork_repo", repoid="src", fork_name="bobfork", key=bob.key))
    assert ok(rpc("get_repo", repoid="bobfork", key=bob.key))["owner"] == "bob"
    assert err(rpc("fork_repo", repoid="closed", fork_name="x", key=bob.key)) == \
        "repository `closed` does not exist"
    assert err(rpc("fork_repo", repoid="src", fork_name="g/x", key=bob.key)) == \
        "no permission to create repo in g"
    assert err(rpc("fork_repo", repoid="src", fork_name="x", owner="admin", key=bob.key)) == \
        "Only Kallithea admin can specify `owner` param"


# -- delete --------------------------------------------------------------------------------


def test_delete_removes_the_directory(rpc: Rpc, config: Config) -> None:
    ok(rpc("create_repo_group", group_name="g"))
    ok(rpc("create_repo", repo_name="g/r"))
    assert ok(rpc("delete_repo", repoid="g/r")) == {"msg": "Deleted repository `g/r`",
                                                    "success": True}
    assert on_disk(config.repos_root) == [] and leftovers(config.repos_root) == []
    assert (root(config) / "g").is_dir()
    assert err(rpc("get_repo", repoid="g/r")) == "repository `g/r` does not exist"


def test_delete_with_forks(rpc: Rpc, config: Config) -> None:
    ok(rpc("create_repo", repo_name="p"))
    ok(rpc("fork_repo", repoid="p", fork_name="f1"))
    ok(rpc("fork_repo", repoid="p", fork_name="f2"))
    ok(rpc("fork_repo", repoid="f1", fork_name="f1a"))
    assert err(rpc("delete_repo", repoid="p")) == \
        "Cannot delete `p` it still contains attached forks"
    assert err(rpc("delete_repo", repoid="p", forks="bogus")).startswith(
        "Invalid `forks` arg in JSON DATA: must be one of")
    assert ok(rpc("delete_repo", repoid="f1", forks="detach"))["msg"] == \
        "Deleted repository `f1` Detached 1 forks"
    assert ok(rpc("get_repo", repoid="f1a"))["fork_of"] is None
    assert ok(rpc("fork_repo", repoid="f2", fork_name="f2a"))
    assert ok(rpc("delete_repo", repoid="p", forks="delete"))["msg"] == \
        "Deleted repository `p` Deleted 1 forks"
    assert on_disk(config.repos_root) == ["f1a"]
    assert [r["repo_name"] for r in ok(rpc("get_repos"))] == ["f1a"]
    assert leftovers(config.repos_root) == []


def test_delete_needs_admin_on_the_repository(rpc: Rpc, config: Config,
                                              make_user: Callable[..., ApiUser]) -> None:
    bob = make_user("bob")
    ok(rpc("create_repo", repo_name="r"))
    assert err(rpc("delete_repo", repoid="r", key=bob.key)) == \
        "Access was denied to this resource."
    ok(rpc("grant_user_permission", repoid="r", userid="bob", perm="repository.admin"))
    ok(rpc("delete_repo", repoid="r", key=bob.key))
    assert on_disk(config.repos_root) == []


# -- races between the two phases of create ------------------------------------------------


def test_a_create_that_loses_the_race_for_its_name_leaves_nothing(
        config: Config, db: Any, admin_key: str, rpc: Rpc, upstream: Upstream,
        http_remote: SmartHttp) -> None:
    http_remote.behaviour, http_remote.stall_for = "stall", 1.0
    answers: list[dict[str, Any]] = []
    slow = api_caller(config, db, admin_key)
    cloning = threading.Thread(target=lambda: answers.append(slow(
        "create_repo", repo_name="r", clone_uri=http_remote.url("up", "bob", "s3cr3t"))))
    cloning.start()
    time.sleep(0.3)
    ok(rpc("create_repo", repo_name="r"))
    cloning.join()
    assert answers[0]["error"] == "repo `r` already exist"
    assert on_disk(config.repos_root) == ["r"]
    assert refs_of(root(config) / "r") == {"HEAD": "refs/heads/master"}  # the empty one
    assert leftovers(config.repos_root) == []


def test_a_repository_created_while_its_group_moves_follows_the_group(
        config: Config, db: Any, admin_key: str, rpc: Rpc, upstream: Upstream,
        http_remote: SmartHttp) -> None:
    ok(rpc("create_repo_group", group_name="g"))
    http_remote.behaviour, http_remote.stall_for = "stall", 1.0
    answers: list[dict[str, Any]] = []
    slow = api_caller(config, db, admin_key)
    cloning = threading.Thread(target=lambda: answers.append(slow(
        "create_repo", repo_name="g/r", clone_uri=http_remote.url("up", "bob", "s3cr3t"))))
    cloning.start()
    time.sleep(0.3)
    ok(rpc("update_repo_group", repogroupid="g", group_name="h"))
    cloning.join()
    assert answers[0]["result"]["msg"] == "Created new repository `h/r`"
    assert on_disk(config.repos_root) == ["h/r"]
    assert ok(rpc("get_repo", repoid="h/r"))["last_changeset"]["raw_id"] == \
        upstream.ref("master")
