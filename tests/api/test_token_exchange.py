"""``GET /_admin/token``: a key exchanged for a short-lived token bound to a scope (the Docker
registry token spec; docs/authentication.md)."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from werkzeug.test import Client

from rpcserver.core.config import Config, ConfigError
from rpcserver.domain.key_format import is_key_shaped
from tests.conftest import ApiUser, Rpc

INVALID = "Invalid API key"


def basic(username: str, key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{key}".encode()).decode()}


def exchange(client: Client, username: str, key: str, *scopes: str,
             service: str | None = "rpcserver") -> tuple[int, dict[str, Any], Any]:
    query = [("scope", s) for s in scopes]
    if service is not None:
        query.append(("service", service))
    response = client.get("/_admin/token", query_string=query, headers=basic(username, key))
    return response.status_code, response.get_json(), response.headers


def call(client: Client, token: str, method: str, *, bearer: bool = False,
         **args: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"id": 1, "method": method, "args": args}
    headers = {}
    if bearer:
        headers["Authorization"] = f"Bearer {token}"
    else:
        body["api_key"] = token
    answer: dict[str, Any] = client.post("/_admin/api", json=body, headers=headers).get_json()
    return answer


def test_a_token_for_one_repository(client: Client, rpc: Rpc, admin_key: str) -> None:
    rpc("create_repo", repo_name="r")
    rpc("create_repo", repo_name="s")
    status, answer, _headers = exchange(client, "admin", admin_key, "repository:r:pull")
    assert status == 200
    assert list(answer) == ["token", "access_token", "scope", "expires_in", "issued_at"]
    token = answer["token"]
    assert token == answer["access_token"] and token.startswith("rpct_")
    assert is_key_shaped(token)
    assert answer["scope"] == "repository:r:pull" and answer["expires_in"] == 3600
    issued = dt.datetime.fromisoformat(answer["issued_at"].removesuffix("Z"))
    assert abs((dt.datetime.now(dt.UTC).replace(tzinfo=None) - issued).total_seconds()) < 60
    for bearer in (False, True):
        assert call(client, token, "get_repo", bearer=bearer, repoid="r")["result"][
            "repo_name"] == "r"
        assert call(client, token, "get_repo", bearer=bearer, repoid="s")["error"] == \
            "API key scope does not allow `get_repo`"
    # tokens are no keys to list or manage
    assert all(k["key_suffix"] != token[-4:] for k in rpc("get_api_keys")["result"])


def test_no_scope_is_a_token_that_can_call_nothing(client: Client, admin_key: str) -> None:
    status, answer, _headers = exchange(client, "admin", admin_key)
    assert status == 200 and answer["scope"] == ""
    assert call(client, answer["token"], "get_user")["error"] == \
        "API key scope does not allow `get_user`"


def test_the_grant_is_the_intersection(client: Client, rpc: Rpc,
                                       make_user: Callable[..., ApiUser]) -> None:
    bob = make_user("bob")
    rpc("create_repo", repo_name="shared")
    rpc("grant_user_permission", repoid="shared", userid="bob", perm="repository.read")
    rpc("create_repo", repo_name="hidden", private=True)
    read = rpc("create_api_key", key=bob.key, scopes=["read"])["result"]["api_key"]
    status, answer, _headers = exchange(client, "bob", read, "write",
                                        "repository:shared:pull,push",
                                        "repository:hidden:pull", "repository:ghost:pull")
    assert status == 200
    # the key is read-only, bob only reads `shared`, and `hidden`/`ghost` are nothing to him
    assert answer["scope"] == "read repository:shared:pull"
    token = answer["token"]
    assert call(client, token, "get_repo", repoid="shared")["result"]["repo_name"] == "shared"
    assert call(client, token, "create_repo", repo_name="x")["error"] == \
        "API key scope does not allow `create_repo`"


def test_bad_credentials_are_401(client: Client, admin_key: str, rpc: Rpc) -> None:
    for username, key in (("admin", "rpck_" + "A" * 43), ("bob", admin_key)):
        status, answer, headers = exchange(client, username, key, "read")
        assert status == 401 and headers["WWW-Authenticate"] == 'Basic realm="rpcserver"'
        assert answer["errors"][0]["code"] == "UNAUTHORIZED"
    response = client.get("/_admin/token", query_string={"scope": "read"})
    assert response.status_code == 401 and "WWW-Authenticate" in response.headers
    _status, token, _headers = exchange(client, "admin", admin_key, "read")
    status, _answer, _headers = exchange(client, "admin", token["token"], "read")
    assert status == 401  # a token is not exchanged for another
    assert client.post("/_admin/token").status_code == 405


def test_bad_service_or_scope_is_400(client: Client, admin_key: str) -> None:
    status, answer, _headers = exchange(client, "admin", admin_key, "read", service="other")
    assert status == 400 and answer["errors"][0]["code"] == "UNSUPPORTED"
    status, answer, _headers = exchange(client, "admin", admin_key, "repository:x:delete")
    assert status == 400 and "pull or pull,push" in answer["errors"][0]["message"]


def test_revoking_or_rotating_the_key_ends_its_tokens(client: Client, rpc: Rpc) -> None:
    made = rpc("create_api_key", description="parent")["result"]
    _status, first, _headers = exchange(client, "admin", made["api_key"], "read")
    assert call(client, first["token"], "get_user")["error"] is None
    rotated = rpc("rotate_api_key", key_id=made["key"]["key_id"])["result"]
    assert call(client, first["token"], "get_user")["error"] == INVALID
    _status, second, _headers = exchange(client, "admin", rotated["api_key"], "read")
    rpc("revoke_api_key", key_id=rotated["key"]["key_id"])
    assert call(client, second["token"], "get_user")["error"] == INVALID


def test_a_token_lives_no_longer_than_its_key(client: Client, rpc: Rpc) -> None:
    soon = rpc("create_api_key", expires=600)["result"]["api_key"]
    _status, answer, _headers = exchange(client, "admin", soon, "read")
    assert 590 <= answer["expires_in"] <= 600


def test_a_token_makes_no_keys(client: Client, admin_key: str) -> None:
    _status, answer, _headers = exchange(client, "admin", admin_key, "admin")
    assert answer["scope"] == "admin"
    assert call(client, answer["token"], "create_api_key")["error"] == \
        "API key scope does not allow `create_api_key`"


@pytest.mark.parametrize("seconds", [0, 59])
def test_tokens_live_at_least_a_minute(seconds: int) -> None:
    with pytest.raises(ConfigError, match="token_expires_in must be at least 60 seconds"):
        Config.load(env={"RPCSERVER_TOKEN_EXPIRES_IN": str(seconds)})
