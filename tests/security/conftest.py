"""Shared helpers of the adversarial tests: each test attacks the server through the API."""

from __future__ import annotations

from typing import Any


def ok(answer: dict[str, Any]) -> Any:
    assert answer["error"] is None, answer["error"]
    return answer["result"]


def err(answer: dict[str, Any]) -> str:
    assert answer["result"] is None, answer["result"]
    assert answer["error"] != "Internal server error"
    return str(answer["error"])
