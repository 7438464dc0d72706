"""The API reference (docs/api.md), generated from the registry so it cannot drift.

``python -m rpcserver.apidoc > docs/api.md``; a test fails when the file is stale.
"""

from __future__ import annotations

import json
from typing import Any

from .api import build_registry
from .registry import RHODECODE, Method, Registry
from .schemas import STRING_BOOLEAN

HEADER = """# API reference

Generated from the method registry by `make docs` (`python -m rpcserver.apidoc`); do not edit
by hand. Every method is called as described in [the protocol](protocol.md): `POST /_admin/api`
with `{"id", "api_key", "method", "args"}`. Ids may be given as an integer or a name wherever
an argument is "id or name"; a digit-only string is an id.
"""


def describe(schema: dict[str, Any]) -> str:
    """A short, human description of an argument's JSON Schema."""
    if schema.get(STRING_BOOLEAN):
        return 'boolean (or the string "true" / "false")'
    if "anyOf" in schema:
        parts = [describe(sub) for sub in schema["anyOf"]]
        return " or ".join(p for p in parts if p != "null") + (
            " (or null)" if "null" in parts else "")
    if schema.get("not") == {"type": "null"}:
        return "any JSON value but null"
    if "enum" in schema:
        return "one of " + ", ".join(f"`{v}`" for v in schema["enum"])
    kind = schema.get("type", "any")
    if kind == "string":
        bounds = f"{schema.get('minLength', 0)}-{schema['maxLength']} chars" if (
            "maxLength" in schema) else ""
        return f"string ({bounds})" if bounds else "string"
    if kind == "integer":
        return f"integer {schema.get('minimum', '')}..{schema.get('maximum', '')}"
    if kind == "array":
        return f"list (at most {schema.get('maxItems', '?')} items)"
    return str(kind)


def method_section(name: str, method: Method) -> str:
    title = f"### `{name}`" + (" (RhodeCode 1.2 envelope)" if method.dialect == RHODECODE
                               else "")
    lines = [title, "", method.summary, ""]
    if method.aliases:
        lines += [f"Also callable as: {', '.join(f'`{a}`' for a in method.aliases)}.", ""]
    lines += [f"Who may call: {method.permission.description}.", ""]
    if method.params:
        defaults = method.defaults()
        lines += ["| argument | type | required / default |", "|---|---|---|"]
        for param in method.params:
            if param in method.required:
                need = "required"
            elif defaults.get(param) is None:
                need = "optional"
            else:
                need = f"`{json.dumps(defaults[param])}`"
            lines.append(f"| `{param}` | {describe(method.schema['properties'][param])} "
                         f"| {need} |")
    else:
        lines.append("No arguments.")
    return "\n".join(lines) + "\n"


def render(registry: Registry) -> str:
    seen: set[tuple[str, str]] = set()
    sections = []
    for name, method in registry:
        key = (method.name, method.dialect)
        if key in seen:  # an alias: listed under the method's own name
            continue
        seen.add(key)
        sections.append(method_section(name, method))
    index = "\n".join(f"- [`{n}`](#{n})" for n, m in registry
                      if n == m.name and m.dialect != RHODECODE)
    return HEADER + "\n## Methods\n\n" + index + "\n\n" + "\n".join(sections)


if __name__ == "__main__":  # pragma: no cover
    print(render(build_registry()), end="")
