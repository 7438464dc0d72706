"""Roundabout ways for a non-admin to reach what it may not: through forks, moves, user
groups and grants."""

from __future__ import annotations

from collections.abc import Callable

from rpcserver.core.config import Config
from rpcserver.db.database import Database
from rpcserver.db.models import GlobalPermission
from tests.conftest import ApiUser, Rpc
from tests.gitremotes import on_disk
from tests.security.conftest import err, ok

DENIED = "Access was denied to this resource."


def test_deleting_with_forks_needs_admin_on_every_fork(rpc: Rpc, config: Config,
                                                      make_user: Callable[..., ApiUser]
                                                      ) -> None:
    bob, carol = make_user("bob"), make_user("carol")
    ok(rpc("create_repo", repo_name="src", key=bob.key))
    ok(rpc("fork_repo", repoid="src", fork_name="carols", private=True, key=carol.key))
    assert err(rpc("delete_repo", repoid="src", forks="delete", key=bob.key)) == DENIED
    assert sorted(on_disk(config.repos_root)) == ["carols", "src"]
    # Detaching leaves carol's fork whole (Kallithea lets a repository's admin detach).
    ok(rpc("delete_repo", repoid="src", forks="detach", key=bob.key))
    assert ok(rpc("get_repo", repoid="carols", key=carol.key))["fork_of"] is None


def test_moving_needs_write_on_the_destination(rpc: Rpc, make_user: Callable[..., ApiUser]
                                              ) -> None:
    bob = make_user("bob")
    ok(rpc("create_repo", repo_name="bobs", key=bob.key))
    ok(rpc("create_repo_group", group_name="readonly"))
    ok(rpc("create_repo_group", group_name="hidden"))
    ok(rpc("grant_user_permission_to_repo_group", repogroupid="hidden", userid="default",
           perm="group.none"))
    assert err(rpc("update_repo", repoid="bobs", group="readonly", key=bob.key)) == \
        "no permission to create repo in readonly"
    assert err(rpc("update_repo", repoid="bobs", name="readonly/bobs", key=bob.key)) == \
        "no permission to create repo in readonly"
    assert err(rpc("update_repo", repoid="bobs", group="hidden", key=bob.key)) == \
        "repository group `hidden` does not exist"
    assert err(rpc("update_repo", repoid="bobs", name="hidden/bobs", key=bob.key)) == \
        "repo group `hidden` not found"
    assert err(rpc("fork_repo", repoid="bobs", fork_name="hidden/f", key=bob.key)) == \
        "repo group `hidden` not found"
    assert ok(rpc("get_repo", repoid="bobs", key=bob.key))["repo_name"] == "bobs"


def test_a_users_own_user_group_gains_it_nothing(rpc: Rpc, db: Database,
                                                 make_user: Callable[..., ApiUser]) -> None:
    bob = make_user("bob")
    with db.transaction(write=True) as session:
        session.add(GlobalPermission(user_id=bob.id, name="hg.usergroup.create.true"))
    ok(rpc("create_repo", repo_name="secret", private=True))
    ok(rpc("create_repo", repo_name="public"))
    ok(rpc("create_repo_group", group_name="g"))
    ok(rpc("grant_user_permission_to_repo_group", repogroupid="g", userid="default",
           perm="group.none"))
    # bob creates a user group, so administers it, and puts himself in it...
    ok(rpc("create_user_group", group_name="bobs-team", key=bob.key))
    ok(rpc("add_user_to_user_group", usergroupid="bobs-team", userid="bob", key=bob.key))
    # ...but cannot give it anything on objects he does not administer,
    assert err(rpc("grant_user_group_permission", repoid="secret", usergroupid="bobs-team",
                   perm="repository.admin", key=bob.key)) == \
        "repository `secret` does not exist"
    assert err(rpc("grant_user_group_permission", repoid="public", usergroupid="bobs-team",
                   perm="repository.admin", key=bob.key)) == DENIED
    assert err(rpc("grant_user_group_permission_to_repo_group", repogroupid="g",
                   usergroupid="bobs-team", perm="group.admin", key=bob.key)) == \
        "repository group `g` does not exist"
    # nor himself, nor take ownership.
    assert err(rpc("grant_user_permission", repoid="public", userid="bob",
                   perm="repository.admin", key=bob.key)) == DENIED
    assert err(rpc("update_repo", repoid="public", owner="bob", key=bob.key)) == DENIED
    assert err(rpc("update_user_group", usergroupid="bobs-team", owner="admin",
                   key=bob.key)) == "Only Kallithea admin can specify `owner` param"
    perms = ok(rpc("get_user", key=bob.key))["permissions"]
    assert perms["repositories"] == {"public": "repository.read"}
    assert "g" not in perms["repositories_groups"]
