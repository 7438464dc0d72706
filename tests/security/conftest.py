"""Shared helpers of the adversarial tests: each test attacks the server through the API."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest


def ok(answer: dict[str, Any]) -> Any:
    assert answer["error"] is None, answer["error"]
    return answer["result"]


def err(answer: dict[str, Any]) -> str:
    assert answer["result"] is None, answer["result"]
    assert answer["error"] != "Internal server error"
    return str(answer["error"])


@pytest.fixture
def no_name_lookups(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """A tripwire for the fuzz tests: a host name the server tries to resolve is recorded and
    refused, and the test fails (no generated body may make the server dial anything)."""
    tried: list[str] = []
    real = socket.getaddrinfo

    def refuse(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host in ("127.0.0.1", "::1", "localhost"):
            return real(host, *args, **kwargs)
        tried.append(str(host))
        raise socket.gaierror(socket.EAI_NONAME, "name lookups are off during the fuzz")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    yield tried
    assert tried == [], f"the fuzz made the server resolve {tried[:5]}"
