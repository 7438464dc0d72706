"""Method arguments from the command line: `key:value` and `key:=json`, and args files.

`key:value` is kallithea-api's syntax and always sends a string, so old scripts keep sending
what they sent. `key:=json` (httpie's separator) sends any JSON value: `active:=false`,
`max_revisions:=5`, `add:='["a","b"]'`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import IO, Any


class ArgsError(ValueError):
    """An argument the user typed cannot be turned into a method argument."""


def parse_pairs(tokens: Iterable[str]) -> dict[str, Any]:
    """`["repoid:r", "private:=true"]` -> `{"repoid": "r", "private": True}`."""
    args: dict[str, Any] = {}
    for token in tokens:
        key, sep, rest = token.partition(":")
        if not sep or not key:
            raise ArgsError(f"argument {token!r} is not key:value or key:=json")
        if rest.startswith("="):
            try:
                value: Any = json.loads(rest[1:])
            except ValueError as exc:
                raise ArgsError(
                    f"argument {key!r}: {rest[1:]!r} is not JSON ({exc}); "
                    f"for a string use {key}:value"
                ) from None
        else:
            value = rest
        if key in args:
            # kallithea-api silently kept the last one; a typo should not go unnoticed.
            raise ArgsError(f"argument {key!r} is given twice")
        args[key] = value
    return args


def load_args_file(stream: IO[str], name: str) -> dict[str, Any]:
    """A whole JSON args object from a file or stdin."""
    try:
        data = json.load(stream)
    except ValueError as exc:
        raise ArgsError(f"args file {name} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ArgsError(f"args file {name} must hold a JSON object, not {_json_kind(data)}")
    return data


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    return "a number"
