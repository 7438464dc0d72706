"""Reading an API answer in a test: the result of one that must succeed, the error text of one
that must fail (each assertion shows what came instead)."""

from __future__ import annotations

from typing import Any


def ok(answer: dict[str, Any]) -> Any:
    assert answer["error"] is None, answer["error"]
    return answer["result"]


def err(answer: dict[str, Any]) -> str:
    assert answer["result"] is None, answer["result"]
    return str(answer["error"])
