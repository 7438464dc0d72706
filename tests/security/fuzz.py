"""Hostile request bodies for the envelope fuzz, from a seeded ``random.Random``, and the
invariants every answer keeps (API.md §1): HTTP 200 JSON, keys in order, the id echoed,
exactly one of result/error, never ``Internal server error``, no traceback.

Nothing generated can make the server dial out: no generated body carries a ``clone_uri``
argument (``strip_clone_uri``), and the database the fuzz runs on holds no repository with one.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from typing import Any

from werkzeug.test import Client

#: Odd text: controls, NUL, BOM, RTL marks, combining marks, emoji, private use, non-BMP.
ODD_TEXT = ["", "\x00", "\x01", "\x7f", "\ufeff", "\u202e", "e\u0301", "\U0001f600", "\ue000",
            "\U0010ffff", "\u2028", "\u0131", "ß", "Ω", "../..", "%00", "a" * 300, "_x", "1", "0",
            "-1", "true", "null", "default", "admin", "  ", "\t\n", "\\", '"', "'", "$(id)"]
#: JSON text that no Python value produces: escapes, huge and odd numbers, constants.
RAW_VALUES = ['"\\ud800"', '"\\udfff\\ud800"', '"\\u0000"', '"\\uD83D\\uDE00"', "1e400",
              "-1e400", "1" * 5000, "-" + "9" * 400, "0.0000001e-400", "1E+2", "-0", "NaN",
              "Infinity", "-Infinity", "2147483648", "-2147483649", "9" * 30, "1.5",
              "[]", "{}", "[[]]", '{"": {}}', "true", "false", "null", '"\\/"']
ID_VALUES: list[Any] = [None, 0, -1, 1.5, 2**70, "x", "", True, False, [], {}, [1, {"a": None}],
                        {"id": 1}, "\U0001f600"]


def strip_clone_uri(args: Any) -> Any:
    """The args without ``clone_uri``: a generated URL must never be fetched or resolved."""
    if isinstance(args, dict):
        args.pop("clone_uri", None)
    return args


def carries_clone_uri(body: bytes) -> bool:
    """Whether the server would see a ``clone_uri`` argument in ``body`` (parsed as it parses,
    duplicate keys and escapes included)."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError):
        return False
    return (isinstance(data, dict) and isinstance(data.get("args"), dict)
            and "clone_uri" in data["args"])


class Bodies:
    """A seeded generator of hostile bodies; ``valid`` gives well-formed envelopes (with one of
    ``keys``) to mutate."""

    def __init__(self, seed: int, keys: list[str], methods: list[str],
                 params: dict[str, list[str]]) -> None:
        self.rng = random.Random(seed)  # noqa: S311 (reproducible, not secret)
        self.keys = keys
        self.methods = methods
        self.params = params

    # -- values --------------------------------------------------------------------------

    def text(self) -> str:
        r = self.rng
        kind = r.random()
        if kind < 0.4:
            return r.choice(ODD_TEXT)
        if kind < 0.7:
            return "".join(r.choice("ab1_./-@ ") for _ in range(r.randint(0, 12)))
        return "".join(chr(r.choice([r.randint(1, 0x7f), r.randint(0x80, 0xd7ff),
                                     r.randint(0xe000, 0x10ffff)]))
                       for _ in range(r.randint(0, 8)))

    def value(self, depth: int = 0) -> Any:
        """Random JSON of any type; containers rarely and shallowly."""
        r = self.rng
        kind = r.randrange(10 if depth < 3 else 8)
        if kind == 0:
            return None
        if kind == 1:
            return r.random() < 0.5
        if kind == 2:
            return r.choice([0, 1, -1, 2, 3, 2**31 - 1, 2**31, 2**63, -(2**63), 10**30,
                             r.randint(-10**6, 10**6)])
        if kind == 3:
            return r.choice([0.0, -0.0, 1.5, 1e308, -1e-308, r.uniform(-1e6, 1e6)])
        if kind in (4, 5, 6, 7):
            return self.text()
        if kind == 8:
            return [self.value(depth + 1) for _ in range(r.randint(0, 3))]
        return {self.text(): self.value(depth + 1) for _ in range(r.randint(0, 3))}

    def args(self, method: str) -> dict[str, Any]:
        """Some of the method's own parameters, with random values, maybe a stray one."""
        r = self.rng
        names = self.params.get(method, [])
        chosen = r.sample(names, r.randint(0, len(names))) if names else []
        args = {name: self.value() for name in chosen}
        if r.random() < 0.1:
            args[self.text()] = self.value()
        return strip_clone_uri(args)

    def method(self) -> Any:
        r = self.rng
        if r.random() < 0.85:
            return r.choice(self.methods)
        return r.choice([self.text(), "_private", "Test", self.value()])

    def valid(self) -> dict[str, Any]:
        method = self.rng.choice(self.methods)
        envelope: dict[str, Any] = {"id": self.rng.choice(ID_VALUES),
                                    "api_key": self.rng.choice(self.keys),
                                    "method": method, "args": self.args(method)}
        if self.rng.random() < 0.1:
            del envelope["id"]  # a RhodeCode 1.2 request
        return envelope

    # -- bodies --------------------------------------------------------------------------

    def random_bytes(self) -> bytes:
        r = self.rng
        return bytes(r.randrange(256) for _ in range(r.randint(1, 200)))

    def truncated(self) -> bytes:
        body = json.dumps(self.valid()).encode()
        return body[:self.rng.randint(1, max(1, len(body) - 1))]

    def mutated(self) -> bytes:
        """A valid envelope with a few bytes flipped, inserted, deleted or duplicated."""
        r = self.rng
        body = bytearray(json.dumps(self.valid(), ensure_ascii=r.random() < 0.5).encode())
        for _ in range(r.randint(1, 4)):
            at = r.randrange(len(body))
            action = r.randrange(4)
            if action == 0:
                body[at] = r.randrange(256)
            elif action == 1:
                body.insert(at, r.choice(b'{}[]",:\\0123456789-+.eEtfn \x00\xff\xc3'))
            elif action == 2 and len(body) > 1:
                del body[at]
            else:
                end = min(len(body), at + r.randint(1, 8))
                body[at:at] = body[at:end]
        return bytes(body)

    def field_swapped(self) -> bytes:
        """A valid envelope with one field (or one argument) set to random JSON."""
        r = self.rng
        envelope = self.valid()
        field = r.choice(["id", "api_key", "method", "args", "arg", "arg", "extra", "drop"])
        if field == "arg" and envelope["args"]:
            envelope["args"][r.choice(list(envelope["args"]))] = self.value()
        elif field == "extra":
            envelope[r.choice(["jsonrpc", "auth_token", self.text()])] = self.value()
        elif field == "drop":
            envelope.pop(r.choice(["id", "api_key", "method", "args"]), None)
        elif field != "arg":
            envelope[field] = self.value()
        strip_clone_uri(envelope.get("args"))
        return json.dumps(envelope, ensure_ascii=r.random() < 0.5).encode()

    def raw_text(self) -> bytes:
        """Hand-built JSON text: duplicate keys, raw values (huge numbers, escapes, NaN),
        deep nesting; what ``json.dumps`` never writes."""
        r = self.rng
        method = r.choice(self.methods)
        names = self.params.get(method, []) or ["x"]
        # 900-1000: around where the parser's recursion ends (~950 under pytest), where a
        # value used to parse and then exhaust the validator's recursion.
        depth = r.choice([1, 31, 32, 33, 100, 2000, 50_000] if r.random() < 0.5
                         else [r.randint(900, 1000)])
        deep = "[" * depth + "]" * depth if r.random() < 0.5 else '{"a":' * depth + "1" + \
            "}" * depth
        value = r.choice(RAW_VALUES) if r.random() < 0.5 else deep
        key = json.dumps(r.choice(self.keys))
        # Every parameter given ("1" fits most), so that the odd value reaches validation.
        chosen = r.choice(names)
        args = ", ".join(json.dumps(name) + ": " + (value if name == chosen else '"1"')
                         for name in names)
        members = [f'"id": {r.choice(["1", value])}', f'"api_key": {key}',
                   f'"method": {json.dumps(method)}', f'"args": {{{args}}}']
        if r.random() < 0.5:  # duplicate keys: the last one wins, as in Kallithea
            members.append(r.choice(members[:4]).replace(value, r.choice(RAW_VALUES)))
        r.shuffle(members)
        return ("{" + ", ".join(members) + "}").encode()

    def unicode_body(self) -> bytes:
        """A valid envelope whose strings are odd unicode, in UTF-8 or in other encodings."""
        r = self.rng
        envelope = self.valid()
        envelope["method"] = r.choice([envelope["method"], self.text()])
        text = json.dumps(envelope, ensure_ascii=False)
        encoding = r.choice(["utf-8", "utf-8", "utf-16", "utf-32", "latin-1", "utf-8-sig"])
        try:
            return text.encode(encoding)
        except UnicodeEncodeError:
            return text.encode("utf-8", "surrogatepass")

    def well_formed(self) -> bytes:
        """A valid envelope with random arguments: reaches the methods' checks."""
        return json.dumps(self.valid()).encode()

    def kinds(self) -> list[Callable[[], bytes]]:
        """Each kind of body, as often as it appears here."""
        return [self.random_bytes, self.truncated, self.mutated, self.mutated,
                self.field_swapped, self.field_swapped, self.raw_text, self.unicode_body,
                self.well_formed, self.well_formed, self.well_formed]

    def __iter__(self) -> Iterator[bytes]:
        kinds = self.kinds()
        while True:
            body = self.rng.choice(kinds)()
            if body and not carries_clone_uri(body):
                yield body


def check_answer(client: Client, body: bytes) -> dict[str, Any]:
    """Post ``body``; assert API.md §1's promises; the answer."""
    response = client.post("/_admin/api", data=body)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert b"Traceback" not in response.data
    answer: dict[str, Any] = json.loads(response.data)
    sent = _parsed(body)
    id_less = isinstance(sent, dict) and "id" not in sent and "jsonrpc" not in sent
    keys = list(answer)
    assert keys in (["id", "result", "error"], ["result", "error"])
    assert (answer["result"] is None) != (answer["error"] is None)
    error = answer["error"]
    if error is not None:
        assert isinstance(error, str)
        assert error != "Internal server error"
    if id_less and not (error or "").startswith("JSON parse error"):
        assert keys == ["result", "error"]  # a RhodeCode 1.2 request, answered without id
    if "id" in answer:
        if error is not None and (error.startswith("JSON parse error")
                                  or error == "Incorrect JSON query missing 'api_key'"
                                  or error.startswith("Incorrect JSON query: body must")):
            assert answer["id"] is None
        else:
            assert isinstance(sent, dict)
            assert answer["id"] == sent.get("id")
    else:
        assert id_less
    return answer


def _parsed(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError):
        return None
