"""The API reference (docs/api.md) and the client's method table (client/methods.json),
generated from the registry so they cannot drift.

``python -m rpcserver.admin.apidoc > docs/api.md`` and
``python -m rpcserver.admin.apidoc --client-table > client/methods.json`` (both: ``make docs``);
a test fails when either file is stale.
"""

from __future__ import annotations

import argparse
import inspect
import json
import re
from collections.abc import Iterator
from typing import Any

from rpcserver.api import build_registry
from rpcserver.core.registry import RHODECODE, Method, Registry
from rpcserver.core.schemas import STRING_BOOLEAN

HEADER = """# API reference

Generated from the method registry by `make docs` (`python -m rpcserver.admin.apidoc`); do not edit
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
    scope = f"Key scope: `{method.scope}`"
    if method.repository_right is not None:
        scope += (f", or `repository:<name>:{method.repository_right}` on the repository "
                  f"`{method.repository_arg}` names")
    lines += [scope + " (docs/authentication.md).", ""]
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


def first_sentence(text: str) -> str:
    """Up to the first full stop that ends a sentence (one followed by a capital or a ``)."""
    return re.split(r"(?<=\.)\s+(?=[A-Z`])", text, maxsplit=1)[0]


def arguments(method: Method) -> tuple[list[str], list[str]]:
    """The method's required and optional arguments, each in the handler's signature order."""
    names = list(inspect.signature(method.handler).parameters)[1:]  # after ctx
    defaults = method.defaults()
    return [n for n in names if n not in defaults], [n for n in names if n in defaults]


def client_methods(registry: Registry
                   ) -> Iterator[tuple[str, list[str], list[str], str, str]]:
    """(name, required, optional, summary, scope) for every name a client can call, aliases
    included.

    The RhodeCode 1.2 dialect is left out: it answers only id-less envelopes, and the client
    always sends an id (every RhodeCode name also exists in the Kallithea dialect).
    """
    for name, method in registry:
        if method.dialect == RHODECODE:
            continue
        required, optional = arguments(method)
        yield name, required, optional, first_sentence(method.summary), method.scope


def client_table(registry: Registry) -> str:
    """client/methods.json: the table behind `rpc-api --list-methods` and its completion."""
    table = {
        "generated_by": "make docs (python -m rpcserver.admin.apidoc --client-table); do not edit",
        "methods": [{"name": name, "required": required, "optional": optional,
                     "summary": summary, "scope": scope}
                    for name, required, optional, summary, scope
                    in client_methods(registry)],
    }
    return json.dumps(table, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m rpcserver.admin.apidoc",
                                     description="Print docs/api.md (the default) or, with "
                                     "--client-table, client/methods.json.")
    parser.add_argument("--client-table", action="store_true",
                        help="print the client's method table (JSON) instead")
    options = parser.parse_args(argv)
    registry = build_registry()
    print(client_table(registry) if options.client_table else render(registry), end="")


if __name__ == "__main__":  # pragma: no cover
    main()
