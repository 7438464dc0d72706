"""Docs are tested: the committed API reference is the one the registry generates."""

from __future__ import annotations

from pathlib import Path

from rpcserver.api import build_registry
from rpcserver.apidoc import render

API_MD = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def test_every_registered_method_is_documented() -> None:
    text = API_MD.read_text()
    for name, method in build_registry():
        assert f"### `{method.name}`" in text, f"{method.name} is missing from docs/api.md"
        assert method.summary in text
        if name != method.name:
            assert f"`{name}`" in text, f"alias {name} is missing from docs/api.md"


def test_reference_is_up_to_date() -> None:
    assert API_MD.read_text() == render(build_registry()), (
        "docs/api.md is stale: run `make docs`")
