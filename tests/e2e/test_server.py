"""A real ``rpcserver serve`` on a free port, called over HTTP with requests."""

from __future__ import annotations

import requests

from tests.server_process import ServerProcess


def test_served_api_answers_with_the_init_key(live_server: ServerProcess) -> None:
    answer = live_server.call("get_user")
    assert answer["error"] is None
    assert answer["result"]["username"] == "admin"  # type: ignore[index]


def test_served_api_answers_http_200_json_for_garbage(live_server: ServerProcess) -> None:
    response = requests.post(live_server.api_url, data=b"\xff\xfe not json", timeout=10,
                             headers={"Content-Type": "text/plain"})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["error"].startswith("JSON parse error ERR:")


def test_served_api_refuses_other_http_methods(live_server: ServerProcess) -> None:
    response = requests.put(live_server.api_url, data=b"{}", timeout=10)
    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) == {"GET", "POST"}


def test_create_api_key_prints_a_working_key(live_server: ServerProcess) -> None:
    out = live_server.rpcserver("create-api-key", "admin", "--description", "e2e")
    key = out.stdout.strip()
    assert "\n" not in key and key.startswith("rpck_")
    assert live_server.call("get_user", key=key)["error"] is None


def test_served_api_empty_body_is_content_length_zero(live_server: ServerProcess) -> None:
    response = requests.post(live_server.api_url, data=b"", timeout=10)
    assert response.json() == {"id": None, "result": None, "error": "Content-Length is 0"}


def test_served_api_get_without_body_has_no_content_length(live_server: ServerProcess) -> None:
    response = requests.get(live_server.api_url, timeout=10)
    assert response.status_code == 200
    assert response.json()["error"] == "No Content-Length in request"
