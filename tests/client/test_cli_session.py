"""A complete scripted admin session through `rpc-api --format json`, as a shell script runs it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from client.exitcodes import ExitCode
from tests.client.conftest import RpcApi
from tests.server_process import ServerProcess


def test_scripted_session(
    rpc_api: RpcApi, live_server: ServerProcess, unique: Callable[[str], str]
) -> None:
    saved = rpc_api(
        f"--apihost={live_server.url}", f"--apikey={live_server.admin_key}", "--save-config"
    )
    assert saved.returncode == ExitCode.OK

    def api(method: str, *args: str) -> Any:
        done = rpc_api("--format", "json", method, *args)
        assert done.returncode == ExitCode.OK, done.stderr
        assert done.stderr == ""
        return json.loads(done.stdout)

    user, group, repo = unique("alice"), unique("devs"), unique("tools")

    created = api("create_user", f"username:{user}", f"email:{user}@Example.com", "active:=true")
    assert created["msg"] == f"created new user `{user}`"
    assert created["user"]["email"] == f"{user}@example.com"
    user_id = created["user"]["user_id"]

    made = api("create_user_group", f"group_name:{group}", "description:Developers")
    assert made["msg"] == f"created new user group `{group}`"
    assert made["user_group"]["group_name"] == group

    added = api("add_user_to_user_group", f"usergroupid:{group}", f"userid:{user_id}")
    assert added == {"success": True, "msg": f"added member `{user}` to user group `{group}`"}
    members = api("get_user_group", f"usergroupid:{group}")["members"]
    assert [m["username"] for m in members] == [user]

    new_repo = api("create_repo", f"repo_name:{repo}", "repo_type:git", "private:=false")
    assert new_repo["msg"] == f"Created new repository `{repo}`"

    fetched = api("get_repo", f"repoid:{repo}")
    assert fetched["repo_name"] == repo
    assert fetched["repo_type"] == "git"
    assert fetched["private"] is False
    assert fetched["last_changeset"]["revision"] == -1  # empty repository
    assert fetched["description"] == repo  # an empty description becomes the name
    assert "admin" in [f["username"] for f in fetched["followers"]]
