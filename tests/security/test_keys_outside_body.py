"""API keys outside the body (``?api_key=``, ``Authorization``): a wrong one refuses the call,
even when the body's key is good, and a valid one must be the body key's user's
(docs/protocol.md, "API keys outside the body"). Kallithea answers HTTP 403 for a wrong one; we
answer the envelope's ``Invalid API key`` (docs/compatibility.md)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import socket
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest
from werkzeug.test import Client

from rpcserver.core.credentials import (
    BASIC,
    BEARER,
    KEY_PREFIX,
    QUERY_API_KEY,
    ApiRequest,
    Credential,
)
from rpcserver.db.database import Database
from rpcserver.db.models import User, utcnow
from rpcserver.domain.auth import MAX_OUTSIDE_KEYS, KeyLookup, issue_api_key
from rpcserver.web.app import ApiApp
from tests.conftest import ApiUser
from tests.server_process import ServerProcess

INVALID = "Invalid API key"
UNKNOWN = KEY_PREFIX + "u" * 43
KALLITHEA_SHAPED = "0123456789abcdef0123456789abcdef01234567"


def call(client: Client, body_key: Any, *, query: str = "",
         headers: dict[str, str] | None = None, method: str = "get_user") -> dict[str, Any]:
    body = {"id": 41, "api_key": body_key, "method": method, "args": {}}
    response = client.post("/_admin/api" + query, data=json.dumps(body), headers=headers or {})
    assert response.status_code == 200  # always, also when refused (our rule, not Kallithea's)
    assert response.mimetype == "application/json"
    answer: dict[str, Any] = response.get_json()
    assert answer["id"] == 41 and (answer["result"] is None) != (answer["error"] is None)
    return answer


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def basic(username: str, key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{key}".encode()).decode()}


def second_key(db: Database, username: str, **fields: Any) -> str:
    with db.transaction(write=True) as session:
        user = session.query(User).filter_by(username=username).one()
        key, row = issue_api_key(session, user)
        for name, value in fields.items():
            setattr(row, name, value)
    return key


@pytest.mark.parametrize("value", [UNKNOWN, KALLITHEA_SHAPED, "", "garbage", "rpck_cut"])
def test_a_wrong_query_key_refuses_a_call_with_a_good_body_key(client: Client, admin_key: str,
                                                               value: str) -> None:
    assert call(client, admin_key, query=f"?api_key={quote(value)}")["error"] == INVALID


def test_a_bare_or_repeated_query_key_counts(client: Client, admin_key: str) -> None:
    assert call(client, admin_key, query="?api_key")["error"] == INVALID
    # Every one counts, in whatever order (Kallithea checks only the last)
    assert call(client, admin_key, query=f"?api_key={UNKNOWN}&api_key={admin_key}")["error"] \
        == INVALID
    assert call(client, admin_key, query=f"?api_key={admin_key}&api_key={UNKNOWN}")["error"] \
        == INVALID


@pytest.mark.parametrize("header", [
    f"Bearer {UNKNOWN}", f"bearer {UNKNOWN}", f"BEARER {UNKNOWN}", f"Bearer  {UNKNOWN} ",
    f"Bearer {KALLITHEA_SHAPED}", "Bearer rpck_cut",
    # two Authorization headers arrive joined by a comma: neither may hide the other
    f"Bearer {UNKNOWN}, Basic dXNlcjpwYXNz", f"Basic dXNlcjpwYXNz, Bearer {UNKNOWN}",
])
def test_a_wrong_bearer_key_refuses_the_call(client: Client, admin_key: str,
                                             header: str) -> None:
    assert call(client, admin_key, headers={"Authorization": header})["error"] == INVALID


def test_a_wrong_basic_key_refuses_the_call(client: Client, admin_key: str) -> None:
    assert call(client, admin_key, headers=basic("admin", UNKNOWN))["error"] == INVALID
    assert call(client, admin_key, headers=basic("admin", KALLITHEA_SHAPED))["error"] == INVALID


@pytest.mark.parametrize("header", [
    "Basic " + base64.b64encode(b"proxyuser:hunter2").decode(),  # a proxy's own Basic auth
    "Basic !!!", "Basic", "Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig",  # a proxy's JWT
    "Bearer", "Token " + UNKNOWN, UNKNOWN, "Digest username=\"a\"",
])
def test_an_authorization_header_without_a_key_is_none_of_the_apis_business(
        client: Client, admin_key: str, header: str) -> None:
    answer = call(client, admin_key, headers={"Authorization": header})
    assert answer["result"]["username"] == "admin"


def test_other_places_are_not_read(client: Client, admin_key: str) -> None:
    """As Kallithea: only ``api_key`` (case-sensitive) in the query, only Authorization."""
    assert call(client, admin_key, query=f"?API_KEY={UNKNOWN}&key={UNKNOWN}",
                headers={"X-Api-Key": UNKNOWN})["result"]["username"] == "admin"


def test_the_body_key_repeated_outside_is_accepted(client: Client, admin_key: str) -> None:
    for query, headers in [(f"?api_key={admin_key}", {}), ("", bearer(admin_key)),
                           ("", basic("admin", admin_key)),
                           (f"?api_key={admin_key}&api_key={admin_key}", bearer(admin_key))]:
        assert call(client, admin_key, query=query,
                    headers=headers)["result"]["username"] == "admin"


def test_another_valid_key_of_the_same_user_is_accepted(client: Client, db: Database,
                                                        admin_key: str) -> None:
    other = second_key(db, "admin")
    assert call(client, admin_key, query=f"?api_key={other}")["error"] is None
    assert call(client, admin_key, headers=bearer(other))["error"] is None


def test_a_valid_key_of_another_user_refuses_the_call(client: Client, admin_key: str,
                                                      make_user: Callable[..., ApiUser]) -> None:
    """Kallithea answers such a call as the body's user; we refuse it, both ways round: an
    outside key never chooses, and never adds to, who calls."""
    alice = make_user("alice")
    assert call(client, admin_key, query=f"?api_key={alice.key}")["error"] == INVALID
    assert call(client, alice.key, query=f"?api_key={admin_key}")["error"] == INVALID
    assert call(client, admin_key, headers=bearer(alice.key))["error"] == INVALID
    assert call(client, alice.key, headers=basic("admin", admin_key))["error"] == INVALID


def test_basic_must_name_the_keys_user(client: Client, admin_key: str,
                                       make_user: Callable[..., ApiUser]) -> None:
    make_user("alice")
    assert call(client, admin_key, headers=basic("alice", admin_key))["error"] == INVALID
    assert call(client, admin_key, headers=basic("Admin", admin_key))["error"] == INVALID


def test_a_revoked_expired_or_deactivated_outside_key_refuses(client: Client, db: Database,
                                                              admin_key: str) -> None:
    revoked = second_key(db, "admin", revoked_on=utcnow())
    expired = second_key(db, "admin", expires_on=utcnow() - dt.timedelta(seconds=1))
    assert call(client, admin_key, query=f"?api_key={revoked}")["error"] == INVALID
    assert call(client, admin_key, headers=bearer(expired))["error"] == INVALID


def test_a_query_key_does_not_replace_the_body_key(client: Client, admin_key: str) -> None:
    """A query key is checked, never used, as in Kallithea: the body still needs its own."""
    assert call(client, "not a key", query=f"?api_key={admin_key}")["error"] == INVALID
    body = {"id": 3, "method": "test", "args": {"args": 1}}
    response = client.post(f"/_admin/api?api_key={admin_key}", data=json.dumps(body))
    assert response.get_json() == {"id": None, "result": None,
                                   "error": "Incorrect JSON query missing 'api_key'"}


def test_a_header_key_authenticates_without_one_in_the_body(client: Client, admin_key: str,
                                                            db: Database) -> None:
    """Bearer and Basic make the body's api_key optional (docs/authentication.md); any other
    key the request presents must still be one of the same user's."""
    body = json.dumps({"id": 3, "method": "get_user", "args": {}})
    for headers in (bearer(admin_key), basic("admin", admin_key)):
        answer = client.post("/_admin/api", data=body, headers=headers).get_json()
        assert answer["error"] is None and answer["result"]["username"] == "admin"
    assert client.post("/_admin/api", data=body,
                       headers=basic("bob", admin_key)).get_json()["error"] == INVALID
    other = second_key(db, "admin")
    answer = client.post(f"/_admin/api?api_key={other}", data=body,
                         headers=bearer(admin_key)).get_json()
    assert answer["result"]["username"] == "admin"
    answer = client.post("/_admin/api?api_key=rpck_wrong", data=body,
                         headers=bearer(admin_key)).get_json()
    assert answer["error"] == INVALID


def test_too_many_keys_outside_are_refused(client: Client, admin_key: str) -> None:
    many = "&".join([f"api_key={admin_key}"] * (MAX_OUTSIDE_KEYS + 1))
    assert call(client, admin_key, query="?" + many)["error"] == INVALID
    fine = "&".join([f"api_key={admin_key}"] * MAX_OUTSIDE_KEYS)
    assert call(client, admin_key, query="?" + fine)["error"] is None


def test_one_statement_per_distinct_key(client: Client, db: Database, admin_key: str,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    other = second_key(db, "admin")
    looked_up: list[str] = []
    real = KeyLookup._fetch

    def counting(self: KeyLookup, digest: str) -> Any:
        looked_up.append(digest)
        return real(self, digest)

    monkeypatch.setattr(KeyLookup, "_fetch", counting)
    call(client, admin_key, query=f"?api_key={admin_key}&api_key={admin_key}",
         headers=basic("admin", admin_key))
    assert len(looked_up) == 1
    looked_up.clear()
    assert call(client, admin_key, query=f"?api_key={other}&api_key={other}",
                headers=bearer(other))["error"] is None
    assert len(looked_up) == 2
    looked_up.clear()
    assert call(client, admin_key, query="?api_key=garbage")["error"] == INVALID
    assert looked_up == []  # a malformed key costs no statement


def test_a_refused_outside_key_costs_no_transaction(client: Client, db: Database,
                                                    admin_key: str) -> None:
    from sqlalchemy import event

    begun: list[object] = []

    def record(conn: object) -> None:
        begun.append(conn)

    for engine in db.engines:
        event.listen(engine, "begin", record)
    try:
        assert call(client, admin_key, query=f"?api_key={UNKNOWN}")["error"] == INVALID
        assert call(client, admin_key, headers=bearer(UNKNOWN))["error"] == INVALID
        assert begun == []
    finally:
        for engine in db.engines:
            event.remove(engine, "begin", record)


def test_the_fallback_lookup_checks_outside_keys_too(app: ApiApp, client: Client,
                                                     admin_key: str,
                                                     make_user: Callable[..., ApiUser],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """When the look-up before the transaction cannot ask the database, the call's
    transaction authenticates: it checks the keys outside the body the same way."""
    monkeypatch.setattr(app.dispatcher.keys, "find", lambda *args: None)
    alice = make_user("alice")
    assert call(client, admin_key, query=f"?api_key={UNKNOWN}")["error"] == INVALID
    assert call(client, admin_key, headers=bearer(alice.key))["error"] == INVALID
    assert call(client, admin_key, headers=basic("alice", admin_key))["error"] == INVALID
    assert call(client, admin_key, query=f"?api_key={admin_key}")["error"] is None
    assert call(client, admin_key, headers=bearer(admin_key))["error"] is None


def test_the_reason_is_logged_without_the_key(client: Client, admin_key: str,
                                              make_user: Callable[..., ApiUser],
                                              caplog: pytest.LogCaptureFixture) -> None:
    alice = make_user("alice")
    with caplog.at_level(logging.DEBUG):
        call(client, admin_key, query=f"?api_key={UNKNOWN}")
        call(client, admin_key, headers=bearer(alice.key))
        call(client, admin_key, headers=basic("admin", KALLITHEA_SHAPED))
    assert "the api_key query parameter: unknown key" in caplog.text
    assert f"the Authorization header (Bearer): a key of user id {alice.id}" in caplog.text
    assert "the Authorization header (Basic): malformed key" in caplog.text
    for secret in (UNKNOWN, alice.key, admin_key, KALLITHEA_SHAPED):
        assert secret not in caplog.text


def test_a_refused_write_changes_nothing(client: Client, db: Database, admin_key: str) -> None:
    body = {"id": 5, "api_key": admin_key, "method": "create_user",
            "args": {"username": "mallory", "email": "m@example.com"}}
    response = client.post(f"/_admin/api?api_key={UNKNOWN}", data=json.dumps(body))
    assert response.get_json()["error"] == INVALID
    with db.transaction(write=False) as session:
        assert session.query(User).filter_by(username="mallory").count() == 0


class TestWhatTheRequestPresents:
    """``ApiRequest.outside_body``: the HTTP layer's part, no database."""

    def kinds(self, **request: Any) -> list[tuple[str, object, str | None]]:
        return [(c.kind, c.secret, c.username)
                for c in ApiRequest(b"{}", **request).outside_body()]

    def test_query_and_headers(self) -> None:
        key = KEY_PREFIX + "k" * 43
        assert self.kinds(query=(("x", "1"), ("api_key", ""), ("api_key", key)),
                          headers={"authorization": f"Bearer {key}"}) == [
            (QUERY_API_KEY, "", None), (QUERY_API_KEY, key, None), (BEARER, key, None)]
        token = base64.b64encode(f"ann:{key}".encode()).decode()
        assert self.kinds(headers={"AUTHORIZATION": f"Basic {token}"}) == [(BASIC, key, "ann")]

    def test_the_secret_never_shows(self) -> None:
        assert UNKNOWN not in repr(Credential(BEARER, secret=UNKNOWN))


@pytest.mark.e2e
class TestOnTheWire:
    """Against a real ``rpcserver serve``: what waitress hands on (a repeated header, the
    query string) is what is checked."""

    def exchange(self, server: ServerProcess, target: str, headers: list[str],
                 body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        data = json.dumps(body).encode()
        head = "".join(f"{h}\r\n" for h in [f"POST {target} HTTP/1.1", "Host: x",
                                               f"Content-Length: {len(data)}",
                                               "Connection: close", *headers])
        host, port = server.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(head.encode() + b"\r\n" + data)
            out = b""
            while chunk := sock.recv(65536):
                out += chunk
        status_line, _, rest = out.partition(b"\r\n")
        return int(status_line.split()[1]), json.loads(rest.partition(b"\r\n\r\n")[2])

    def test_wrong_keys_outside_the_body_are_refused(self, live_server: ServerProcess) -> None:
        key = live_server.admin_key
        body = {"id": 9, "api_key": key, "method": "test", "args": {"args": "x"}}
        refused = {"id": 9, "result": None, "error": INVALID}
        for target, headers in [
            (f"/_admin/api?api_key={KALLITHEA_SHAPED}", []),
            ("/_admin/api", [f"Authorization: Bearer {KALLITHEA_SHAPED}"]),
            ("/_admin/api", [f"Authorization: Bearer {key}",
                             f"Authorization: Bearer {UNKNOWN}"]),
            ("/_admin/api", [f"Authorization: Bearer {UNKNOWN}",
                             f"Authorization: Bearer {key}"]),
        ]:
            assert self.exchange(live_server, target, headers, body) == (200, refused)
        answered = {"id": 9, "result": "x", "error": None}
        assert self.exchange(live_server, f"/_admin/api?api_key={key}",
                             [f"Authorization: Bearer {key}"], body) == (200, answered)
