"""Uniqueness holds under concurrency: the database decides, and the loser gets the API's
"already exist" text, never an internal error."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import requests

from tests.server_process import ServerProcess

CALLERS = 20


def race(server: ServerProcess, make_args: object) -> list[dict[str, object]]:
    barrier = threading.Barrier(CALLERS)

    def one(i: int) -> dict[str, object]:
        args = make_args(i)  # type: ignore[operator]
        body = {"id": i, "api_key": server.admin_key, "method": "create_user", "args": args}
        with requests.Session() as session:
            barrier.wait()
            response = session.post(server.api_url, json=body, timeout=60)
        assert response.status_code == 200
        answer: dict[str, object] = response.json()
        assert answer["id"] == i
        return answer

    with ThreadPoolExecutor(CALLERS) as pool:
        return list(pool.map(one, range(CALLERS)))


def test_concurrent_create_user_of_one_name(live_server: ServerProcess) -> None:
    name = f"racer-{uuid.uuid4().hex[:8]}"
    answers = race(live_server, lambda i: {"username": name, "email": f"{name}-{i}@example.com"})
    winners = [a for a in answers if a["error"] is None]
    assert len(winners) == 1
    assert sorted({str(a["error"]) for a in answers if a["error"] is not None}) == [
        f"user `{name}` already exist"]
    found = live_server.call("get_user", userid=name)["result"]
    assert found["email"] == winners[0]["result"]["user"]["email"]  # type: ignore[index]


def test_concurrent_create_user_of_case_variants(live_server: ServerProcess) -> None:
    name = f"case-{uuid.uuid4().hex[:8]}"
    variants = [name.upper() if i % 2 else name for i in range(CALLERS)]
    answers = race(live_server,
                   lambda i: {"username": variants[i], "email": f"{name}-{i}@example.com"})
    assert sum(a["error"] is None for a in answers) == 1
    expected = {f"user `{name}` already exist", f"user `{name.upper()}` already exist"}
    assert all(a["error"] in expected for a in answers if a["error"] is not None)


def test_concurrent_create_user_of_one_email(live_server: ServerProcess) -> None:
    tag = uuid.uuid4().hex[:8]
    answers = race(live_server,
                   lambda i: {"username": f"mail-{tag}-{i}", "email": f"shared-{tag}@example.com"})
    assert sum(a["error"] is None for a in answers) == 1
    assert {a["error"] for a in answers if a["error"] is not None} == {
        f"email `shared-{tag}@example.com` already exist"}
