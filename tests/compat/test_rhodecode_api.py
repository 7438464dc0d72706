"""A RhodeCode 1.2-era script against a real rpcserver (API.md §6).

Such scripts POST `{"api_key", "method", "args"}` with no `id` and read `{"result", "error"}`.
The body is built and sent as those scripts did (json.dumps, urllib, a text/plain body).
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

from tests.compat.conftest import Mirrors
from tests.server_process import ServerProcess

pytestmark = pytest.mark.e2e


def rhodecode_call(server: ServerProcess, api_key: str, method: str, **args: Any) -> Any:
    """What a RhodeCode 1.2 script did: urllib2.urlopen(url, json.dumps(data))."""
    data = {"api_key": api_key, "method": method, "args": args}
    request = urllib.request.Request(server.api_url, data=json.dumps(data).encode(),
                                     headers={"Content-Type": "text/plain"})
    with urllib.request.urlopen(request, timeout=120) as response:
        assert response.status == 200
        assert response.headers.get_content_type() == "application/json"
        answer = json.loads(response.read())
    assert list(answer) == ["result", "error"]  # no id: this is a RhodeCode answer
    assert (answer["result"] is None) != (answer["error"] is None)
    return answer


def test_create_user(live_server: ServerProcess, unique: Callable[[str], str]) -> None:
    key, name = live_server.admin_key, unique("rhodie")
    answer = rhodecode_call(live_server, key, "create_user", username=name,
                            password="s3cret-pass", active=True, admin=False, name="Rho",
                            lastname="Code", email=f"{name}@example.com")
    result = answer["result"]
    assert list(result) == ["id", "msg"]
    assert result["msg"] == f"created new user {name}"
    assert isinstance(result["id"], int)

    user = live_server.call("get_user", userid=result["id"])["result"]
    assert isinstance(user, dict)
    assert {k: user[k] for k in ("username", "firstname", "lastname", "email", "active",
                                 "admin")} == {
        "username": name, "firstname": "Rho", "lastname": "Code",
        "email": f"{name}@example.com", "active": True, "admin": False}

    again = rhodecode_call(live_server, key, "create_user", username=name, password="x" * 8,
                           active=True, admin=False, name="", lastname="",
                           email=f"other-{name}@example.com")
    assert again == {"result": None, "error": f"user `{name}` already exist"}


def test_create_user_inactive_admin(live_server: ServerProcess,
                                    unique: Callable[[str], str]) -> None:
    name = unique("rhoadmin")
    answer = rhodecode_call(live_server, live_server.admin_key, "create_user", username=name,
                            password="s3cret-pass", active=False, admin=True, name="R",
                            lastname="A", email=f"{name}@example.com")
    user = live_server.call("get_user", userid=answer["result"]["id"])["result"]
    assert isinstance(user, dict)
    assert (user["active"], user["admin"]) == (False, True)


def test_create_users_group(live_server: ServerProcess, unique: Callable[[str], str]) -> None:
    key = live_server.admin_key
    name, idle = unique("rhogroup"), unique("rhoidle")
    answer = rhodecode_call(live_server, key, "create_users_group", name=name, active=True)
    result = answer["result"]
    assert list(result) == ["id", "msg"]
    assert result["msg"] == f"created new users group {name}"
    group = live_server.call("get_user_group", usergroupid=result["id"])["result"]
    assert isinstance(group, dict)
    assert (group["group_name"], group["active"]) == (name, True)

    off = rhodecode_call(live_server, key, "create_users_group", name=idle, active=False)
    assert off["result"]["msg"] == f"created new users group {idle}"
    group = live_server.call("get_user_group", usergroupid=idle)["result"]
    assert isinstance(group, dict)
    assert group["active"] is False

    # `active` is optional (default true).
    default = rhodecode_call(live_server, key, "create_users_group", name=unique("rhodefault"))
    group = live_server.call("get_user_group", usergroupid=default["result"]["id"])["result"]
    assert isinstance(group, dict)
    assert group["active"] is True

    assert rhodecode_call(live_server, key, "create_users_group", name=name) == {
        "result": None, "error": f"user group `{name}` already exist"}


def test_pull(mirror_server: ServerProcess, mirrors: Mirrors,
              unique: Callable[[str], str]) -> None:
    key, repo = mirror_server.admin_key, unique("rhomirror")
    made = mirror_server.call("create_repo", repo_name=repo, repo_type="git",
                              clone_uri=mirrors.url)
    assert made["error"] is None

    assert rhodecode_call(mirror_server, key, "pull", repo=repo) == {
        "result": f"Pulled from {repo}", "error": None}
    fetched = mirror_server.call("get_repo", repoid=repo)["result"]
    assert isinstance(fetched, dict)
    assert fetched["last_changeset"]["raw_id"] == mirrors.upstream.ref("refs/heads/master")

    plain = unique("rhoplain")
    mirror_server.call("create_repo", repo_name=plain, repo_type="git")
    assert rhodecode_call(mirror_server, key, "pull", repo=plain) == {
        "result": None, "error": f"Unable to pull changes from `{plain}`"}
    assert rhodecode_call(mirror_server, key, "pull", repo="no-such-repo") == {
        "result": None, "error": "repository `no-such-repo` does not exist"}


def test_errors_come_back_without_id(live_server: ServerProcess,
                                     unique: Callable[[str], str]) -> None:
    key = live_server.admin_key
    assert rhodecode_call(live_server, "not-a-key", "pull", repo="x") == {
        "result": None, "error": "Invalid API key"}
    assert rhodecode_call(live_server, key, "no_such_method") == {
        "result": None, "error": "No such method: no_such_method"}
    assert rhodecode_call(live_server, key, "create_users_group") == {
        "result": None, "error": "Missing non optional `name` arg in JSON DATA"}

    name = unique("rhouser")
    live_server.call("create_user", username=name, email=f"{name}@example.com")
    user_key = live_server.rpcserver("create-api-key", name).stdout.strip()
    assert rhodecode_call(live_server, user_key, "create_users_group", name=unique("g")) == {
        "result": None, "error": "Access was denied to this resource."}

    with urllib.request.urlopen(live_server.api_url, data=b"{}", timeout=60) as raw:
        assert json.loads(raw.read()) == {
            "result": None, "error": "Incorrect JSON query missing 'api_key'"}
