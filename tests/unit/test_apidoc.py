"""Docs are tested: the committed API reference and the client's method table are the ones the
registry generates."""

from __future__ import annotations

import json
from pathlib import Path

from rpcserver.admin.apidoc import client_table, first_sentence, render
from rpcserver.api import build_registry

ROOT = Path(__file__).resolve().parents[2]
API_MD = ROOT / "docs" / "api.md"
METHODS_JSON = ROOT / "client" / "methods.json"


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


def test_client_table_is_up_to_date() -> None:
    assert METHODS_JSON.read_text(encoding="utf-8") == client_table(build_registry()), (
        "client/methods.json is stale: run `make docs`")


def test_client_table_lists_every_name_with_its_signature() -> None:
    table = {m["name"]: m for m in json.loads(client_table(build_registry()))["methods"]}
    assert set(table) == {name for name, _method in build_registry()}
    assert table["get_repos"]["optional"] == ["limit", "offset", "n", "last"]
    assert table["show_ip"] == {**table["get_ip"], "name": "show_ip"}
    # The Kallithea dialect's create_users_group, not RhodeCode 1.2's (name, active).
    assert table["create_users_group"]["optional"] == [
        "group_name", "description", "owner", "active", "name"]
    assert table["create_user"]["required"] == ["username", "email"]
    assert all(m["summary"] and "\n" not in m["summary"] for m in table.values())


def test_first_sentence() -> None:
    assert first_sentence("Delete it. A repository with forks needs ``forks``.") == "Delete it."
    assert first_sentence("Change the given fields. ``name`` renames.") == (
        "Change the given fields.")
    assert first_sentence("Re-read it from disk, e.g. after a change.") == (
        "Re-read it from disk, e.g. after a change.")
