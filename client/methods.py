"""The API's methods, for `rpc-api --list-methods` and shell completion.

Loaded from methods.json, which `make docs` generates from rpcserver's method registry (a test
fails when it is stale). The client never imports rpcserver: it runs on admins' machines. So
the table is what rpcserver offers, not what a particular server supports: any method name can
still be called, and a server without it answers `No such method: ...`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True)
class Method:
    """One API method: its name, its arguments (required first), what it is for and the
    key scope it needs (``read``, ``write`` or ``admin``)."""

    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    summary: str
    scope: str = ""

    @property
    def signature(self) -> str:
        """`repoid [clone_uri]`: the arguments as people read them in a usage line."""
        return " ".join([*self.required, *(f"[{name}]" for name in self.optional)])


def _load() -> tuple[Method, ...]:
    text = resources.files("client").joinpath("methods.json").read_text(encoding="utf-8")
    return tuple(
        Method(m["name"], tuple(m["required"]), tuple(m["optional"]), m["summary"],
               m.get("scope", ""))
        for m in json.loads(text)["methods"]
    )


METHODS: tuple[Method, ...] = _load()

BY_NAME: dict[str, Method] = {method.name: method for method in METHODS}
