"""Failed logins are counted per address and per username; past the limit calls are refused
for the rest of the window, before any key is looked up (docs/security.md)."""

from __future__ import annotations

import base64
import dataclasses
from typing import Any

from werkzeug.test import Client

from rpcserver.domain.login_failures import LoginFailures
from tests.conftest import Rpc

INVALID = "Invalid API key"
WRONG = "rpck_" + "A" * 43


def test_past_the_limit_even_a_good_key_waits(rpc: Rpc, app: Any) -> None:
    app.dispatcher.failures = LoginFailures(limit=3, window=60)
    for _ in range(3):
        assert rpc("get_user", key=WRONG)["error"] == INVALID
    refused = rpc("get_user")["error"]  # the admin's good key, from the same address
    assert refused.startswith("too many failed logins, try again in ")
    assert refused.endswith(" s") and 1 <= int(refused.split(" in ")[1][:-2]) <= 60


def test_the_window_slides() -> None:
    now = [0.0]
    failures = LoginFailures(limit=2, window=10, clock=lambda: now[0])
    failures.record(["address 1"])
    now[0] = 5
    failures.record(["address 1"])
    try:
        failures.check(["address 1"])
    except Exception as exc:
        assert str(exc) == "too many failed logins, try again in 5 s"
    else:
        raise AssertionError("not refused")
    failures.check(["address 2"])  # another address is not held back
    now[0] = 10.5  # the first failure left the window
    failures.check(["address 1"])


def test_a_username_is_counted_too(client: Client, app: Any, admin_key: str) -> None:
    app.dispatcher.failures = LoginFailures(limit=2, window=60)
    wrong = base64.b64encode(f"admin:{WRONG}".encode()).decode()
    good = base64.b64encode(f"admin:{admin_key}".encode()).decode()
    body = {"id": 1, "method": "get_user", "args": {}}
    for _ in range(2):
        answer = client.post("/_admin/api", json=body, headers={"Authorization": f"Basic {wrong}"},
                             environ_base={"REMOTE_ADDR": "10.0.0.1"}).get_json()
        assert answer["error"] == INVALID
    # from another address, naming the same user: held back too
    answer = client.post("/_admin/api", json=body, headers={"Authorization": f"Basic {good}"},
                         environ_base={"REMOTE_ADDR": "10.0.0.2"}).get_json()
    assert answer["error"].startswith("too many failed logins")
    status = client.get("/_admin/token", headers={"Authorization": f"Basic {good}"},
                        environ_base={"REMOTE_ADDR": "10.0.0.3"})
    assert status.status_code == 429 and int(status.headers["Retry-After"]) >= 1


def test_zero_turns_it_off(rpc: Rpc, app: Any) -> None:
    app.dispatcher.failures = LoginFailures(limit=0, window=60)
    for _ in range(30):
        assert rpc("get_user", key=WRONG)["error"] == INVALID
    assert rpc("get_user")["error"] is None
    assert dataclasses.is_dataclass(app.config)
