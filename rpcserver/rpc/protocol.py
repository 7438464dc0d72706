"""The Kallithea JSON-RPC envelope: bytes in, ``Envelope`` out; an answer dict out, bytes back.

Only the envelope's own shape is checked here (API.md §1 rows 4-7b); authentication and
everything after it belong to the dispatcher, because the order of checks is part of the
contract.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from rpcserver.core.errors import InvalidRequest
from rpcserver.core.schemas import nested_deeper_than

REQUIRED_KEYS = ("api_key", "method", "args")
#: Row 4 for a body the parser cannot nest into, and for an ``id`` nested deeper than
#: ``schemas.MAX_NESTING``.
NESTING_TOO_DEEP = "JSON parse error ERR:nesting too deep"
_SURROGATE = re.compile("[\ud800-\udfff]")


class ProtocolError(InvalidRequest):
    """An envelope error, with the id the answer must carry."""

    def __init__(self, text: str, *, id: Any = None, has_id: bool = True) -> None:
        super().__init__(text)
        self.id = id
        self.has_id = has_id


@dataclass(frozen=True)
class Envelope:
    id: Any
    #: False for a RhodeCode 1.2 request: no ``id`` (and no ``jsonrpc``) member, and an answer
    #: without ``id``.
    has_id: bool
    api_key: Any
    method: Any
    args: dict[str, Any]


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:20]} is out of range")
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json(body: bytes) -> Any:
    """Parse strict JSON; the error message never contains the body (it may hold a key)."""
    try:
        text = body.decode("utf-8")
        data = json.loads(text, parse_float=_finite_float, parse_constant=_reject_constant)
        if "\\u" in text:  # only escapes can produce what no database can store
            _check_storable(data)
        return data
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"JSON parse error ERR:body is not UTF-8 ({exc.reason} at byte "
                            f"{exc.start})") from None
    except RecursionError:
        raise ProtocolError(NESTING_TOO_DEEP) from None
    except ValueError as exc:  # JSONDecodeError is a ValueError
        raise ProtocolError(f"JSON parse error ERR:{exc}") from None


def _check_storable(value: Any) -> None:
    """Refuse NUL characters and half surrogate pairs (``\\ud800``): JSON can escape them,
    but PostgreSQL cannot store the one and UTF-8 cannot encode the other. Walks without
    recursion: the value may nest as deep as the parser allows."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise ValueError("a string holds a NUL character")
            if _SURROGATE.search(item):
                raise ValueError("a string holds a lone UTF-16 surrogate escape")
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)


def decode(body: bytes, *, key_in_header: bool = False) -> Envelope:
    """The envelope; with ``key_in_header`` (an ``Authorization`` header carries a key) the
    body's ``api_key`` may be left out (API.md §1 row 6; it is then None)."""
    data = parse_json(body)
    if not isinstance(data, dict):
        raise ProtocolError("Incorrect JSON query: body must be a JSON object")
    has_id = "id" in data or "jsonrpc" in data
    id_ = data.get("id")
    if nested_deeper_than(id_):
        # The answer echoes the id: encoding one nested ~1,000 deep exhausts the encoder's
        # recursion. Refused as the parser refuses a deeper one (row 4).
        raise ProtocolError(NESTING_TOO_DEEP)
    for key in REQUIRED_KEYS:
        if key not in data and not (key == "api_key" and key_in_header):
            answer_id = None if key == "api_key" else id_
            raise ProtocolError(f"Incorrect JSON query missing '{key}'", id=answer_id,
                                has_id=has_id)
    args = data["args"]
    if args is None:
        args = {}
    elif not isinstance(args, dict):
        raise ProtocolError("Incorrect JSON query: 'args' must be an object", id=id_,
                            has_id=has_id)
    return Envelope(id=id_, has_id=has_id, api_key=data.get("api_key"), method=data["method"],
                    args=args)


def answer(id: Any, result: Any, error: str | None, *, has_id: bool = True) -> dict[str, Any]:
    """The answer dict, keys in wire order; exactly one of result/error is meaningful."""
    if has_id:
        return {"id": id, "result": result, "error": error}
    return {"result": result, "error": error}


def encode(response: dict[str, Any]) -> bytes:
    # ensure_ascii: non-ASCII is escaped (\u00ef), as Kallithea answers.
    return json.dumps(response).encode("ascii")
