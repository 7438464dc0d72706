"""`rpc-api --auth`, `--user` and `token`: the key in a header, and exchanged tokens.

What goes over the wire is checked against the stub server; that the server takes it, against a
real `rpcserver serve`.
"""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Callable

import pytest

from client import ApiClient, InvalidApiKey
from client.exitcodes import ExitCode
from tests.client.conftest import RPC_API, RpcApi, StubServer
from tests.server_process import ServerProcess


def test_body_is_the_default_and_sends_no_header(rpc_api: RpcApi, stub_server: StubServer) -> None:
    rpc_api.json("--apihost", stub_server.url, "--apikey", "K1", "get_user")
    assert stub_server.requests[0]["api_key"] == "K1"
    assert "Authorization" not in stub_server.request_headers[0]


def test_bearer_sends_the_key_in_the_header_only(rpc_api: RpcApi, stub_server: StubServer) -> None:
    rpc_api.json("--apihost", stub_server.url, "--apikey", "K2", "--auth", "bearer", "get_user")
    assert "api_key" not in stub_server.requests[0]
    assert stub_server.request_headers[0]["Authorization"] == "Bearer K2"


def test_basic_from_the_environment(rpc_api: RpcApi, stub_server: StubServer) -> None:
    rpc_api.json("get_user", env={"RPC_API_HOST": stub_server.url, "RPC_API_KEY": "K3",
                                  "RPC_API_AUTH": "basic", "RPC_API_USER": "alice"})
    scheme, _, value = stub_server.request_headers[0]["Authorization"].partition(" ")
    assert scheme == "Basic" and base64.b64decode(value) == b"alice:K3"
    assert "api_key" not in stub_server.requests[0]


def test_basic_and_token_need_a_username(rpc_api: RpcApi, stub_server: StubServer) -> None:
    for args in (["--auth", "basic", "get_user"], ["token", "--scope", "read"]):
        done = rpc_api("--apihost", stub_server.url, "--apikey", "K", *args)
        assert done.returncode == ExitCode.USAGE, args
        assert "needs the key's username" in done.stderr
    assert stub_server.requests == []


def test_scope_belongs_to_token(rpc_api: RpcApi, stub_server: StubServer) -> None:
    done = rpc_api("--apihost", stub_server.url, "--apikey", "K", "get_user", "--scope", "read")
    assert done.returncode == ExitCode.USAGE and "go with token" in done.stderr
    done = rpc_api("--apihost", stub_server.url, "--apikey", "K", "--user", "a", "token", "x:1")
    assert done.returncode == ExitCode.USAGE and "not arguments" in done.stderr
    assert stub_server.requests == []


def test_saved_username_goes_with_the_saved_key_only(
    rpc_api: RpcApi, stub_server: StubServer
) -> None:
    save = rpc_api("--apihost", stub_server.url, "--apikey", "SAVED", "--user", "alice",
                   "--save-config")
    assert save.returncode == 0, save.stderr
    assert json.loads(rpc_api.config_file.read_text())["username"] == "alice"
    rpc_api.json("--auth", "basic", "get_user")
    assert base64.b64decode(stub_server.request_headers[-1]["Authorization"].split()[1]) == (
        b"alice:SAVED")
    # Another key must come with its own username.
    done = rpc_api("--apikey", "OTHER", "--auth", "basic", "get_user")
    assert done.returncode == ExitCode.USAGE and "username" in done.stderr


@pytest.fixture
def alice(live_server: ServerProcess, unique: Callable[[str], str]) -> tuple[str, str]:
    """A plain user on the live server and a key of hers."""
    name = unique("alice")
    created = live_server.call("create_user", username=name, email=f"{name}@example.com",
                               password="a-long-password-1")
    assert created["error"] is None, created
    made = live_server.call("create_api_key", userid=name, description="cli")
    assert made["error"] is None, made
    return name, str(made["result"]["api_key"])  # type: ignore[index]


@pytest.mark.parametrize("auth", ["body", "bearer", "basic"])
def test_each_way_reaches_the_real_server(
    rpc_api: RpcApi, live_server: ServerProcess, alice: tuple[str, str], auth: str
) -> None:
    name, key = alice
    me = rpc_api.json("--apihost", live_server.url, "--apikey", key, "--auth", auth,
                      "--user", name, "get_user")
    assert me["username"] == name


def test_a_wrong_username_is_an_invalid_key(
    rpc_api: RpcApi, live_server: ServerProcess, alice: tuple[str, str]
) -> None:
    _name, key = alice
    done = rpc_api("--apihost", live_server.url, "--apikey", key, "--auth", "basic",
                   "--user", "admin", "get_user")
    assert done.returncode == ExitCode.INVALID_API_KEY, done.stderr


def test_token_is_scoped_and_works_as_a_key(
    rpc_api: RpcApi, live_server: ServerProcess, alice: tuple[str, str]
) -> None:
    name, key = alice
    env = {"RPC_API_HOST": live_server.url, "RPC_API_KEY": key, "RPC_API_USER": name}
    answer = rpc_api.json("token", "--scope", "read", "--scope", "repository:nothing:pull",
                          env=env)
    assert set(answer) == {"token", "access_token", "scope", "expires_in", "issued_at"}
    assert answer["token"].startswith("rpct_") and answer["expires_in"] >= 60
    assert "read" in answer["scope"]
    token_env = {**env, "RPC_API_KEY": answer["token"]}
    assert rpc_api.json("get_user", env=token_env)["username"] == name
    assert rpc_api.json("get_user", "--auth", "bearer", env=token_env)["username"] == name
    refused = rpc_api("create_repo", "repo_name:t-" + name, env=token_env)
    assert refused.returncode == ExitCode.API_ERROR
    assert "scope" in refused.stderr and "Invalid API key" not in refused.stderr


def test_token_errors(rpc_api: RpcApi, live_server: ServerProcess,
                      alice: tuple[str, str]) -> None:
    name, key = alice
    env = {"RPC_API_HOST": live_server.url, "RPC_API_USER": name}
    wrong = rpc_api("token", env={**env, "RPC_API_KEY": key[:-1] + ("x" if key[-1] != "x"
                                                                     else "y")})
    assert wrong.returncode == ExitCode.INVALID_API_KEY
    assert wrong.stdout == ""
    bad = rpc_api("token", "--scope", "repository:x:delete", env={**env, "RPC_API_KEY": key})
    assert bad.returncode == ExitCode.API_ERROR and "ERROR:" in bad.stderr
    service = rpc_api("token", "--service", "elsewhere", env={**env, "RPC_API_KEY": key})
    assert service.returncode == ExitCode.API_ERROR and "rpcserver" in service.stderr


def test_library_token_and_bearer(live_server: ServerProcess, alice: tuple[str, str]) -> None:
    name, key = alice
    with ApiClient(live_server.url, key, auth="basic", username=name) as api:
        token = api.token(["read"])["token"]
        assert api.call("get_user")["username"] == name
    with ApiClient(live_server.url, token, auth="bearer") as api:
        assert api.call("get_user")["username"] == name
    with ApiClient(live_server.url, "rpck_" + "0" * 38, username=name) as api, \
            pytest.raises(InvalidApiKey):
        api.token()


def test_completion_offers_scopes_and_shows_each_methods_scope(rpc_api: RpcApi) -> None:
    env = {"_RPC_API_COMPLETE": "zsh_complete", "COMP_WORDS": "rpc-api --scope ",
           "COMP_CWORD": "2"}
    done = subprocess.run([str(RPC_API)], env={**rpc_api.env, **env}, capture_output=True,
                          text=True, timeout=60, check=False)
    assert "repository:" in done.stdout and "\nread\n" in done.stdout
    env.update(COMP_WORDS="rpc-api create_u", COMP_CWORD="1")
    done = subprocess.run([str(RPC_API)], env={**rpc_api.env, **env}, capture_output=True,
                          text=True, timeout=60, check=False)
    assert "create_user" in done.stdout and "(scope: admin)" in done.stdout
    env.update(COMP_WORDS="rpc-api tok", COMP_CWORD="1")
    done = subprocess.run([str(RPC_API)], env={**rpc_api.env, **env}, capture_output=True,
                          text=True, timeout=60, check=False)
    assert "token" in done.stdout
