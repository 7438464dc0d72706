"""JSON Schema building blocks for method arguments.

Every bound is explicit: strings have a maximum length and lists a maximum size, so no request
can make the server store or loop over something unbounded.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

#: Largest id we accept; beyond it the databases' integer columns overflow.
MAX_ID = 2**31 - 1
NAME_MAX = 255
TEXT_MAX = 10_000
#: The deepest nesting of lists and objects an argument value (and an envelope's ``id``) may
#: have: ``[[1]]`` is 2. Checked without recursion before anything recurses over the value
#: (jsonschema, the answer's encoder), whose recursion a value of ~1,000 levels exhausts.
MAX_NESTING = 32


def nested_deeper_than(value: Any, limit: int = MAX_NESTING) -> bool:
    """Whether ``value`` nests lists and objects more than ``limit`` deep; stops as soon as
    it knows, and never recurses."""
    stack = [(value, 0)] if isinstance(value, (dict, list)) else []
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        depth += 1
        if depth > limit:
            return True
        stack.extend((child, depth) for child in children if isinstance(child, (dict, list)))
    return False


def obj(*, required: tuple[str, ...] = (), **properties: Schema) -> Schema:
    """An args object; the order of ``properties`` is the method's parameter order."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
    }


def string(max_length: int = NAME_MAX, *, min_length: int = 0, **extra: Any) -> Schema:
    return {"type": "string", "minLength": min_length, "maxLength": max_length, **extra}


def text(max_length: int = TEXT_MAX) -> Schema:
    return string(max_length)


#: Marks a boolean argument that may also arrive as the string "true" or "false".
STRING_BOOLEAN = "x-string-boolean"


def boolean() -> Schema:
    """true or false; also the strings "true"/"false" (any case), because Kallithea's own
    ``kallithea-api`` can only send strings (``with_revision_names:true``). The registry turns
    such a string into a real boolean before the method sees it."""
    return {
        "anyOf": [{"type": "boolean"},
                  {"type": "string", "pattern": r"^(?i:true|false)\Z"}],
        STRING_BOOLEAN: True,
    }


def integer(minimum: int = 0, maximum: int = MAX_ID) -> Schema:
    return {"type": "integer", "minimum": minimum, "maximum": maximum}


def one_of_values(*values: str) -> Schema:
    return {"type": "string", "enum": list(values)}


def id_or_name(max_length: int = NAME_MAX) -> Schema:
    """An object reference: an integer id, or a name (a digit-only string is an id)."""
    return {
        "anyOf": [
            {"type": "integer", "minimum": 0, "maximum": MAX_ID},
            {"type": "string", "minLength": 1, "maxLength": max_length},
        ],
    }


def nullable(schema: Schema) -> Schema:
    return {"anyOf": [{"type": "null"}, schema]}


def not_null() -> Schema:
    """Any JSON value but null (an answer's result must never be null)."""
    return {"not": {"type": "null"}}


# jsonschema matches patterns with Python's re, where `$` also matches before a final newline:
# `\Z` is the real end of the string.
USERNAME = string(NAME_MAX, min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@+-]*\Z")
EMAIL = string(NAME_MAX, min_length=3, pattern=r"^[^@\s]+@[^@\s]+\Z")
PASSWORD = string(1024)
