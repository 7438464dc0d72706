"""get_user's ``permissions`` block shows the user's effective permissions (API.md §3, §4)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import update

from rpcserver.db.database import Database
from rpcserver.db.models import (
    GlobalPermission,
    Level,
    RepoGroup,
    Repository,
    UserGroupRepoGroupPerm,
    UserGroupRepoPerm,
    UserRepoGroupPerm,
    UserRepoPerm,
    UserUserGroupPerm,
)
from rpcserver.domain.grants import DEFAULT_GLOBAL_PERMISSIONS
from tests.conftest import ApiUser, Rpc

MakeUser = Callable[..., ApiUser]


@pytest.fixture
def bob(rpc: Rpc, db: Database, make_user: MakeUser) -> ApiUser:
    """bob (id 3) in the active group `team` (id 1) and the inactive `old` (id 2), with:

    repositories     pub (default read), priv (private, default write), mine (bob owns),
                     granted (bob write), via-team (team admin), via-old (old admin),
                     hidden (nothing), lowered (default write, bob read)
    repo groups      g (default read), g/sub (team write), h (nothing)
    user groups      team, old (created by the API: default read), closed (default none)
    """
    user = make_user("bob")
    for name in ("team", "old", "closed"):
        assert rpc("create_user_group", group_name=name)["error"] is None
    rpc("add_user_to_user_group", usergroupid="team", userid="bob")
    rpc("add_user_to_user_group", usergroupid="old", userid="bob")
    rpc("update_user_group", usergroupid="old", active=False)
    with db.transaction(write=True) as session:
        session.execute(update(UserUserGroupPerm)
                        .where(UserUserGroupPerm.target_group_id == 3).values(level=Level.NONE))
        repos = {name: Repository(name=name, owner_id=user.id if name == "mine" else 2,
                                  private=name == "priv")
                 for name in ("pub", "priv", "mine", "granted", "via-team", "via-old",
                              "hidden", "lowered")}
        groups = {name: RepoGroup(name=name, owner_id=2) for name in ("g", "g/sub", "h")}
        session.add_all([*repos.values(), *groups.values()])
        session.flush()
        session.add_all([
            UserRepoPerm(user_id=1, repo_id=repos["pub"].id, level=Level.READ),
            UserRepoPerm(user_id=1, repo_id=repos["priv"].id, level=Level.WRITE),
            UserRepoPerm(user_id=user.id, repo_id=repos["granted"].id, level=Level.WRITE),
            UserGroupRepoPerm(group_id=1, repo_id=repos["via-team"].id, level=Level.ADMIN),
            UserGroupRepoPerm(group_id=2, repo_id=repos["via-old"].id, level=Level.ADMIN),
            UserRepoPerm(user_id=1, repo_id=repos["lowered"].id, level=Level.WRITE),
            UserRepoPerm(user_id=user.id, repo_id=repos["lowered"].id, level=Level.READ),
            UserRepoGroupPerm(user_id=1, repo_group_id=groups["g"].id, level=Level.READ),
            UserGroupRepoGroupPerm(group_id=1, repo_group_id=groups["g/sub"].id,
                                   level=Level.WRITE),
        ])
    return user


def test_own_effective_permissions(rpc: Rpc, bob: ApiUser) -> None:
    permissions = rpc("get_user", key=bob.key)["result"]["permissions"]
    assert list(permissions) == ["global", "repositories", "repositories_groups", "user_groups"]
    assert permissions == {
        "global": sorted(DEFAULT_GLOBAL_PERMISSIONS),
        "repositories": {"granted": "repository.write", "lowered": "repository.write",
                         "mine": "repository.admin", "pub": "repository.read",
                         "via-team": "repository.admin"},
        "repositories_groups": {"g": "group.read", "g/sub": "group.write"},
        "user_groups": {"old": "usergroup.read", "team": "usergroup.read"},
    }


def test_admin_sees_another_users_permissions(rpc: Rpc, bob: ApiUser) -> None:
    mine = rpc("get_user", key=bob.key)["result"]
    seen_by_admin = rpc("get_user", userid="bob")["result"]
    assert seen_by_admin == mine


def test_own_global_grants_are_listed(rpc: Rpc, db: Database, bob: ApiUser) -> None:
    with db.transaction(write=True) as session:
        session.add(GlobalPermission(user_id=bob.id, name="hg.usergroup.create.true"))
    assert rpc("get_user", key=bob.key)["result"]["permissions"]["global"] == sorted(
        [*DEFAULT_GLOBAL_PERMISSIONS, "hg.usergroup.create.true"])


def test_admin_has_everything(rpc: Rpc, bob: ApiUser) -> None:
    permissions = rpc("get_user")["result"]["permissions"]
    assert permissions["global"] == ["hg.admin"]  # as Kallithea: it implies every other
    assert set(permissions["repositories"].values()) == {"repository.admin"}
    assert len(permissions["repositories"]) == 8
    assert permissions["repositories_groups"] == {"g": "group.admin", "g/sub": "group.admin",
                                                  "h": "group.admin"}
    assert permissions["user_groups"] == {"closed": "usergroup.admin", "old": "usergroup.admin",
                                          "team": "usergroup.admin"}


def test_default_user(rpc: Rpc, bob: ApiUser) -> None:
    permissions = rpc("get_user", userid="default")["result"]["permissions"]
    assert permissions["repositories"] == {"lowered": "repository.write",
                                           "pub": "repository.read"}
    assert permissions["repositories_groups"] == {"g": "group.read"}
    assert permissions["user_groups"] == {"old": "usergroup.read", "team": "usergroup.read"}


def test_inactive_user_seen_by_admin(rpc: Rpc, bob: ApiUser) -> None:
    rpc("update_user", userid="bob", active=False)
    permissions = rpc("get_user", userid="bob")["result"]["permissions"]
    assert permissions["repositories"]["via-team"] == "repository.admin"
