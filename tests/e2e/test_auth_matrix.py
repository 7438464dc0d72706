"""Every way to authenticate x every state a key can be in, against a real ``rpcserver serve``
over HTTP; then the server's whole log is scanned for every secret the test made.

Ways: the body's ``api_key``, ``Authorization: Bearer``, ``Authorization: Basic``, and an
exchanged token (as ``api_key`` and as Bearer). States: valid, expired, revoked, rotated away,
wrong (a well-formed key nobody has), of an inactive user, from an address the key's rules
refuse. Only "valid" answers; every other answers ``Invalid API key``, whichever the way.
"""

from __future__ import annotations

import base64
import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import text

from rpcserver.db.database import Database
from rpcserver.domain.key_format import new_api_key
from tests.databases import scratch_database, server_url
from tests.server_process import ServerProcess

INVALID = "Invalid API key"
STATES = ("valid", "expired", "revoked", "rotated", "wrong", "inactive user", "address refused")
WAYS = ("body", "bearer", "basic", "token as api_key", "token as bearer")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    base = tmp_path_factory.mktemp("auth-matrix")
    with scratch_database(base, "authm", server_url()) as url:
        # The matrix fails 30 logins from one address on purpose: above the default limit
        # (tests/api/test_login_failures.py tests the limit itself).
        process = ServerProcess(instance=base / "instance", database_url=url,
                                extra_env={"RPCSERVER_MAX_FAILED_LOGINS": "1000"}).start()
        try:
            yield process
        finally:
            process.stop()


def rpc(server: ServerProcess, method: str, **args: Any) -> Any:
    answer = server.call(method, **args)
    assert answer["error"] is None, answer
    return answer["result"]


def exchange(server: ServerProcess, username: str, key: str) -> str | None:
    response = requests.get(server.url + "/_admin/token", params={"scope": "read"},
                            auth=(username, key), timeout=30)
    return response.json()["token"] if response.status_code == 200 else None


def make_keys(server: ServerProcess) -> dict[str, tuple[str, str]]:
    """state -> (username, key) in that state."""
    rpc(server, "create_user", username="alice", email="alice@example.com")
    rpc(server, "create_user", username="ina", email="ina@example.com")

    def key(username: str, **args: Any) -> tuple[str, dict[str, Any]]:
        made = rpc(server, "create_api_key", userid=username, **args)
        return made["api_key"], made["key"]

    keys = {"valid": ("alice", key("alice")[0])}
    expired, record = key("alice", expires=3600)
    db = Database.connect(server.database_url)
    try:
        with db.transaction(write=True) as session:
            session.execute(text("UPDATE api_keys SET expires_on = :past WHERE id = :id"),
                            {"past": dt.datetime(2001, 1, 1), "id": record["key_id"]})
    finally:
        db.dispose()
    keys["expired"] = ("alice", expired)
    revoked, record = key("alice")
    rpc(server, "revoke_api_key", key_id=record["key_id"])
    keys["revoked"] = ("alice", revoked)
    rotated, record = key("alice")
    rpc(server, "rotate_api_key", key_id=record["key_id"])
    keys["rotated"] = ("alice", rotated)
    keys["wrong"] = ("alice", new_api_key())
    inactive, _record = key("ina")
    keys["inactive user"] = ("ina", inactive)
    fenced, _record = key("alice", ip_ranges=["192.0.2.0/24"])
    keys["address refused"] = ("alice", fenced)
    return keys


def present(way: str, username: str, key: str,
            tokens: Callable[[str, str], str | None]) -> tuple[dict[str, Any], dict[str, str]]:
    """The body and headers of a get_user call presenting ``key`` in ``way``."""
    body: dict[str, Any] = {"id": 7, "method": "get_user", "args": {}}
    headers: dict[str, str] = {}
    secret: str | None = key
    if way.startswith("token"):
        secret = tokens(username, key)
    if secret is None:  # no token to be had for this key: present the key itself
        secret = key
    if way in ("body", "token as api_key"):
        body["api_key"] = secret
    elif way in ("bearer", "token as bearer"):
        headers["Authorization"] = f"Bearer {secret}"
    else:
        pair = base64.b64encode(f"{username}:{secret}".encode()).decode()
        headers["Authorization"] = f"Basic {pair}"
    return body, headers


def test_every_way_in_every_state(server: ServerProcess) -> None:
    keys = make_keys(server)
    made_tokens: dict[str, str | None] = {}

    def tokens(username: str, key: str) -> str | None:
        if key not in made_tokens:
            made_tokens[key] = exchange(server, username, key)
        return made_tokens[key]

    rpc(server, "update_user", userid="ina", active=False)  # her key was made while active
    # A token exists only for a usable key: the exchange itself refuses the others (401).
    assert tokens(*keys["valid"]) is not None
    for state in STATES[1:]:
        assert tokens(*keys[state]) is None, state
    failures = []
    for state in STATES:
        username, key = keys[state]
        for way in WAYS:
            body, headers = present(way, username, key, tokens)
            response = requests.post(server.api_url, json=body, headers=headers, timeout=30)
            answer = response.json()
            assert response.status_code == 200 and list(answer) == ["id", "result", "error"]
            if state == "valid":
                ok = answer["error"] is None and answer["result"]["username"] == username
            else:
                ok = answer == {"id": 7, "result": None, "error": INVALID}
            if not ok:
                failures.append(f"{state} / {way}: {answer}")
    assert not failures, "\n".join(failures)
    # A token dies with its key.
    token = tokens(*keys["valid"])
    key_id = next(k for k in rpc(server, "get_api_keys", userid="alice")
                  if k["key_suffix"] == keys["valid"][1][-4:])["key_id"]
    rpc(server, "revoke_api_key", key_id=key_id)
    answer = requests.post(server.api_url, json={"id": 1, "api_key": token,
                                                 "method": "get_user", "args": {}},
                           timeout=30).json()
    assert answer["error"] == INVALID
    # No secret the test made reached the server's log.
    secrets = [key for _user, key in keys.values()] + [t for t in made_tokens.values() if t]
    secrets.append(server.admin_key)
    log = Path(server.instance / "server.log").read_text(errors="replace")
    assert log, "the server logged nothing"
    leaked = [s[:9] + "..." for s in secrets if s in log or s[5:] in log]
    assert not leaked, f"secrets in the server log: {leaked}"


def test_revoking_a_key_while_its_calls_are_in_flight(server: ServerProcess) -> None:
    """Calls that began before the revocation commits may finish; every call that begins
    after it is refused, its tokens' too; none fails any other way, and each write either
    happened whole (its answer says so) or not at all."""
    rpc(server, "create_user", username="flight", email="flight@example.com")
    made = rpc(server, "create_api_key", userid="flight", description="in flight")
    key, key_id = made["api_key"], made["key"]["key_id"]
    token = exchange(server, "flight", key)
    assert token is not None
    answers: list[tuple[float, float, str, dict[str, Any]]] = []
    stop = threading.Event()

    def keep_calling(secret: str, method: str) -> None:
        with requests.Session() as session:
            n = 0
            while not stop.is_set():
                n += 1
                args = {"description": f"w-{threading.get_ident()}-{n}"} \
                    if method == "create_api_key" else {}
                started = time.monotonic()
                answer = session.post(server.api_url, json={
                    "id": n, "api_key": secret, "method": method, "args": args},
                    timeout=60).json()
                answers.append((started, time.monotonic(), method, answer))

    callers = [threading.Thread(target=keep_calling, args=args) for args in (
        (key, "get_user"), (key, "get_user"), (token, "get_user"), (key, "create_api_key"))]
    for thread in callers:
        thread.start()
    deadline = time.monotonic() + 30
    while sum(a[3]["error"] is None for a in answers) < 40 and time.monotonic() < deadline:
        time.sleep(0.05)
    revoking = time.monotonic()
    rpc(server, "revoke_api_key", key_id=key_id)
    revoked = time.monotonic()
    time.sleep(0.5)
    stop.set()
    for thread in callers:
        thread.join(timeout=60)

    for started, ended, method, answer in answers:
        if answer["error"] is not None:
            assert answer["error"] == INVALID, answer
            assert ended > revoking, (ended, revoking, answer)
        elif method == "get_user":
            assert answer["result"]["username"] == "flight"
        if started > revoked:
            assert answer["error"] == INVALID, (started, revoked, answer)
    assert sum(a[3]["error"] is None for a in answers) >= 40
    assert sum(a[0] > revoked for a in answers) >= 4
    written = {a[3]["result"]["key"]["description"] for a in answers
               if a[2] == "create_api_key" and a[3]["error"] is None}
    listed = {k["description"] for k in rpc(server, "get_api_keys", userid="flight")
              if k["description"].startswith("w-")}
    assert listed == written and written
