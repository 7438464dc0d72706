"""The worked example of docs/permissions.md, as it is written there."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rpcserver.db.database import Database
from rpcserver.db.models import Level, Repository, User, UserGroupRepoPerm, UserRepoPerm
from rpcserver.domain.access import resolve
from rpcserver.domain.context import Actor
from rpcserver.domain.grants import REPO
from tests.conftest import ApiUser, Rpc


def test_worked_example(rpc: Rpc, db: Database, make_user: Callable[..., ApiUser]) -> None:
    users = {name: make_user(name) for name in ("alice", "bob", "carol")}
    for group, members in (("devs", ("alice", "bob")), ("ops", ("carol",))):
        assert rpc("create_user_group", group_name=group)["error"] is None
        for member in members:
            rpc("add_user_to_user_group", usergroupid=group, userid=member)
    rpc("update_user_group", usergroupid="ops", active=False)
    with db.transaction(write=True) as session:
        web = Repository(name="web", owner_id=2)
        secret = Repository(name="secret", owner_id=2, private=True)
        tools = Repository(name="tools", owner_id=users["alice"].id)
        session.add_all([web, secret, tools])
        session.flush()
        session.add_all([
            UserRepoPerm(user_id=1, repo_id=web.id, level=Level.READ),
            UserGroupRepoPerm(group_id=1, repo_id=web.id, level=Level.WRITE),
            UserRepoPerm(user_id=users["bob"].id, repo_id=web.id, level=Level.READ),
            UserRepoPerm(user_id=1, repo_id=secret.id, level=Level.WRITE),
            UserGroupRepoPerm(group_id=2, repo_id=secret.id, level=Level.ADMIN),
            UserRepoPerm(user_id=1, repo_id=tools.id, level=Level.READ),
        ])

    def level(user: str, repo: str) -> Level:
        with db.transaction(write=False) as session:
            caller = session.get(User, users[user].id)
            assert caller is not None
            found = resolve(session.connection(), Actor.of(caller), REPO, repo)
            assert found is not None
            return found[1]

    assert level("bob", "web") is Level.WRITE
    assert level("carol", "web") is Level.READ
    assert level("carol", "secret") is Level.NONE
    assert level("alice", "tools") is Level.ADMIN

    permissions: dict[str, Any] = rpc("get_user", key=users["bob"].key)["result"]["permissions"]
    assert permissions == {
        "global": ["group.read", "hg.create.repository", "hg.extern_activate.auto",
                   "hg.fork.repository", "hg.register.manual_activate", "repository.read",
                   "usergroup.read"],
        "repositories": {"tools": "repository.read", "web": "repository.write"},
        "repositories_groups": {},
        "user_groups": {"devs": "usergroup.read", "ops": "usergroup.read"},
    }

    rpc("update_user_group", usergroupid="ops", active=True)
    assert level("carol", "secret") is Level.ADMIN
