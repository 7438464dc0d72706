"""The Python library, `client.ApiClient`: against the live server and a misbehaving stub."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

import client
from client import ApiClient, ApiError, ConnectError, InvalidApiKey, ProtocolError, Timeout
from tests.client.conftest import StubServer
from tests.server_process import ServerProcess


def test_public_surface_is_the_declared_list() -> None:
    assert sorted(client.__all__) == sorted(
        [
            "DEFAULT_TIMEOUT",
            "ApiClient",
            "ApiError",
            "ClientError",
            "ConnectError",
            "InvalidApiKey",
            "ProtocolError",
            "Timeout",
            "TransportError",
        ]
    )
    for name in client.__all__:
        assert getattr(client, name) is not None


def test_call_returns_the_result(live_server: ServerProcess) -> None:
    with ApiClient(live_server.url, live_server.admin_key) as api:
        assert api.call("test", args={"a": [1, None]}) == {"a": [1, None]}
        assert api.call("get_user")["username"] == "admin"


@pytest.mark.parametrize("suffix", ["", "/", "/_admin/api", "/_admin/api/"])
def test_base_url_and_endpoint_url_both_work(live_server: ServerProcess, suffix: str) -> None:
    with ApiClient(live_server.url + suffix, live_server.admin_key) as api:
        assert api.url == live_server.api_url
        assert api.call("test", args="ok") == "ok"


def test_error_answer_raises_api_error_with_the_server_text(live_server: ServerProcess) -> None:
    with (
        ApiClient(live_server.url, live_server.admin_key) as api,
        pytest.raises(ApiError) as caught,
    ):
        api.call("no_such_thing")
    assert str(caught.value) == "No such method: no_such_thing"
    assert caught.value.message == "No such method: no_such_thing"
    assert caught.value.method == "no_such_thing"
    assert not isinstance(caught.value, InvalidApiKey)


def test_bad_key_raises_invalid_api_key(live_server: ServerProcess) -> None:
    api = ApiClient(live_server.url, "rpck_not-a-real-key")
    with api, pytest.raises(InvalidApiKey) as caught:
        api.call("get_user")
    assert str(caught.value) == "Invalid API key"


def test_an_argument_named_method_is_sent_as_an_argument(stub_server: StubServer) -> None:
    with ApiClient(stub_server.url, "k") as api:
        assert api.call("test", method="x", api_key="y") == {"method": "x", "api_key": "y"}
    assert stub_server.requests[0]["method"] == "test"
    assert stub_server.requests[0]["api_key"] == "k"


def test_one_session_reuses_the_connection(stub_server: StubServer) -> None:
    with ApiClient(stub_server.url, "k") as api:
        for n in range(3):
            api.call("test", args=n)
    assert len(stub_server.ports) == 3
    assert len(set(stub_server.ports)) == 1


def test_each_call_sends_a_fresh_id(stub_server: StubServer) -> None:
    with ApiClient(stub_server.url, "k") as api:
        api.call("test", args=1)
        api.call("test", args=2)
    ids = [request["id"] for request in stub_server.requests]
    assert ids[0] != ids[1]


def _answer(**fields: Any) -> Callable[[dict[str, Any]], tuple[int, bytes]]:
    def respond(body: dict[str, Any]) -> tuple[int, bytes]:
        answer = {"id": body["id"], "result": None, "error": None, **fields}
        return 200, json.dumps(answer).encode()

    return respond


def test_mismatched_id_is_a_protocol_error(stub_server: StubServer) -> None:
    stub_server.respond = _answer(id="someone else's", result=1)
    with ApiClient(stub_server.url, "k") as api, pytest.raises(ProtocolError) as caught:
        api.call("test", args=1)
    assert 'answer id "someone else\'s" does not match request id' in str(caught.value)


def test_error_without_id_still_shows_the_server_text(stub_server: StubServer) -> None:
    # The server answers id null when it cannot read the body (e.g. too large).
    stub_server.respond = _answer(id=None, error="Request body too large")
    with ApiClient(stub_server.url, "k") as api, pytest.raises(ApiError) as caught:
        api.call("test", args=1)
    assert str(caught.value) == "Request body too large"


@pytest.mark.parametrize(
    ("status", "payload", "expected"),
    [
        (404, b"<html>Not Found</html>", "HTTP 404 Not Found from "),
        (200, b"<html>login</html>", "is not JSON: not an API endpoint"),
        (200, b'{"hello": "world"}', "is not a JSON-RPC answer"),
        (200, b"[1, 2]", "is not a JSON-RPC answer"),
    ],
)
def test_non_api_answers_are_protocol_errors(
    stub_server: StubServer, status: int, payload: bytes, expected: str
) -> None:
    stub_server.respond = lambda body: (status, payload)
    with ApiClient(stub_server.url, "k") as api, pytest.raises(ProtocolError) as caught:
        api.call("test", args=1)
    assert expected in str(caught.value)


def test_redirect_is_reported_not_followed(stub_server: StubServer) -> None:
    # requests would turn the POST into a bodiless GET; the server would answer nonsense.
    stub_server.respond = lambda body: (301, b"")
    stub_server.headers["Location"] = "https://example.com/_admin/api"
    with ApiClient(stub_server.url, "k") as api, pytest.raises(ProtocolError) as caught:
        api.call("test", args=1)
    assert str(caught.value) == (
        f"{stub_server.url}/_admin/api redirects to https://example.com/_admin/api; "
        "use the final URL as the API host"
    )
    assert len(stub_server.requests) == 1


def test_refused_connection_raises_connect_error(refused_url: str) -> None:
    with ApiClient(refused_url, "k") as api, pytest.raises(ConnectError) as caught:
        api.call("test", args=1)
    assert str(caught.value).startswith(f"cannot connect to {refused_url}/_admin/api: ")
    assert "refused" in str(caught.value).lower()


def test_slow_answer_raises_timeout(stub_server: StubServer) -> None:
    stub_server.delay = 5
    with ApiClient(stub_server.url, "k", timeout=0.3) as api, pytest.raises(Timeout) as caught:
        api.call("test", args=1)
    assert str(caught.value) == (
        f"no answer from {stub_server.url}/_admin/api within 0.3s "
        "(the call may still complete on the server)"
    )


@pytest.mark.parametrize("url", ["127.0.0.1:5000", "ftp://host", "http://", ""])
def test_unusable_url_is_refused_up_front(url: str) -> None:
    with pytest.raises(ValueError, match="must be an http:// or https:// URL"):
        ApiClient(url, "k")


def test_repr_never_shows_the_key_or_a_url_password() -> None:
    api = ApiClient("https://bot:s3cret@example.com", "rpck_secret-key")
    assert repr(api) == "ApiClient('https://bot:***@example.com/_admin/api')"
    api.close()
