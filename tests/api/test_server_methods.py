"""test, get_server_info, get_ip/show_ip."""

from __future__ import annotations

import platform
import subprocess
from collections.abc import Callable
from typing import Any

import pytest

from rpcserver import __version__
from rpcserver.db.database import Database
from rpcserver.db.models import UserIpRule
from tests.conftest import ApiUser, Rpc


@pytest.mark.parametrize("args", [1, "x", [1, {"a": None}], {"deep": {"list": [True]}}])
def test_test_echoes_args(rpc: Rpc, args: Any) -> None:
    assert rpc("test", args=args)["result"] == args


def test_test_refuses_null(rpc: Rpc) -> None:
    assert rpc("test", args=None)["error"] == "Invalid `args` arg in JSON DATA: must not be null"


def test_server_info(rpc: Rpc) -> None:
    result = rpc("get_server_info")["result"]
    assert list(result) == ["modules", "py_version", "platform", "kallithea_version",
                            "git_version", "git_path"]
    assert ["rpcserver", __version__] in result["modules"]
    assert all(isinstance(m, list) and len(m) == 2 for m in result["modules"])
    assert result["kallithea_version"] == "0.7.0"
    assert result["py_version"] == platform.python_version()
    assert result["git_path"] == "git"
    git = subprocess.run(["git", "--version"], capture_output=True, text=True, check=True)
    assert git.stdout.strip().endswith(result["git_version"])


@pytest.mark.parametrize("method", ["test", "get_server_info", "get_ip", "show_ip"])
def test_admin_only(rpc: Rpc, user_key: str, method: str) -> None:
    args = {"args": 1} if method == "test" else {}
    assert rpc(method, key=user_key, **args)["error"] == "Access was denied to this resource."


@pytest.mark.parametrize("method", ["get_ip", "show_ip"])
def test_get_ip(rpc: Rpc, db: Database, make_user: Callable[..., ApiUser], method: str) -> None:
    carol = make_user("carol")
    with db.transaction(write=True) as session:
        session.add(UserIpRule(user_id=carol.id, ip_addr="10.1.0.0/16"))
        session.add(UserIpRule(user_id=carol.id, ip_addr="127.0.0.1"))
    assert rpc(method)["result"] == {"server_ip_addr": "127.0.0.1", "user_ips": []}
    assert rpc(method, userid="carol")["result"] == {
        "server_ip_addr": "127.0.0.1",
        "user_ips": [{"ip_addr": "10.1.0.0/16", "ip_range": ["10.1.0.0", "10.1.255.255"]},
                     {"ip_addr": "127.0.0.1", "ip_range": ["127.0.0.1", "127.0.0.1"]}]}
    assert rpc(method, userid="ghost")["error"] == "user `ghost` does not exist"
