"""How rpc-api prints results: `json` for machines, `pretty` for people."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from client.api import API_PATH
from client.methods import Method

PRETTY = "pretty"
JSON = "json"
FORMATS = (PRETTY, JSON)


def render(result: Any, output_format: str) -> str:
    """The result as stdout shows it.

    `json` is one line of plain JSON, so `rpc-api --format json ... | jq` always works.
    `pretty` keeps the server's key order (it puts ids and names first, which reads better than
    kallithea-api's sorted keys), shows non-ASCII as is, and prints a text result as text.
    """
    if output_format == JSON:
        return json.dumps(result)
    if isinstance(result, str):
        return result
    return json.dumps(result, indent=4, ensure_ascii=False)


def clone_url(api_url: str, method: str, result: Any) -> str | None:
    """The clone URL of the repository a `get_repo` answered: `<server>/<full name>`, the
    server being the one rpc-api talks to, without any credentials in its URL. Only the
    pretty output shows it; the answer itself is the server's, untouched."""
    if method != "get_repo" or not isinstance(result, dict):
        return None
    name = result.get("repo_name")
    if not isinstance(name, str):
        return None
    parts = urlsplit(api_url)
    host = parts.netloc.rpartition("@")[2]
    path = parts.path.removesuffix(API_PATH).rstrip("/")
    return urlunsplit((parts.scheme, host, f"{path}/{name}", "", ""))


def render_methods(methods: tuple[Method, ...], output_format: str) -> str:
    """The method table for --list-methods."""
    if output_format == JSON:
        return json.dumps(
            [
                {
                    "name": m.name,
                    "required": list(m.required),
                    "optional": list(m.optional),
                    "summary": m.summary,
                    "scope": m.scope,
                }
                for m in methods
            ]
        )
    lines = []
    for m in methods:
        lines.append(f"{m.name} {m.signature}".rstrip())
        lines.append(f"    {m.summary} (scope: {m.scope})" if m.scope else f"    {m.summary}")
    return "\n".join(lines)
