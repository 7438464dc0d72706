"""Deeply nested JSON never reaches code that recurses over it: an argument value nested more
than ``MAX_NESTING`` deep answers API.md §8's ``nested too deeply``, an ``id`` or a body nested
deeper answers the parse error (row 4) — never ``Internal server error``."""

from __future__ import annotations

import json
from typing import Any

import pytest
from werkzeug.test import Client

from rpcserver.core.schemas import MAX_NESTING

PARSE = "JSON parse error ERR:nesting too deep"
#: Around the depth where the parser's recursion ends (~950 under pytest): below it, the value
#: used to reach jsonschema, whose recursion it exhausted.
NEAR_THE_PARSERS_LIMIT = range(600, 1100)


def nested(depth: int, brackets: str = "[]") -> str:
    opener, closer = ('{"a":', "}") if brackets == "{}" else ("[", "]")
    return opener * depth + "1" + closer * depth


def post(client: Client, body: str | bytes) -> dict[str, Any]:
    response = client.post("/_admin/api", data=body.encode() if isinstance(body, str) else body)
    assert response.status_code == 200
    assert b"Traceback" not in response.data
    answer: dict[str, Any] = json.loads(response.data)
    return answer


def call(client: Client, key: str, method: str, args: str, request_id: str = "1") -> Any:
    return post(client, f'{{"id": {request_id}, "api_key": "{key}", "method": "{method}", '
                        f'"args": {args}}}')


@pytest.mark.parametrize(("method", "arg"), [("test", "args"), ("get_user", "userid")])
def test_every_depth_near_the_parsers_limit(client: Client, admin_key: str, method: str,
                                            arg: str) -> None:
    too_deep = f"Invalid `{arg}` arg in JSON DATA: nested too deeply"
    seen = set()
    for depth in NEAR_THE_PARSERS_LIMIT:
        answer = call(client, admin_key, method, f'{{"{arg}": {nested(depth)}}}')
        assert answer["error"] in (too_deep, PARSE), (depth, answer["error"])
        seen.add(answer["error"])
    assert seen == {too_deep, PARSE}  # both sides of the parser's limit were reached


@pytest.mark.parametrize("brackets", ["[]", "{}"])
@pytest.mark.parametrize(("method", "arg"), [("test", "args"), ("get_repos", "limit"),
                                             ("create_repo", "repo_name"),
                                             ("update_user", "userid")])
def test_the_bound(client: Client, admin_key: str, method: str, arg: str,
                   brackets: str) -> None:
    extra = ', "email": "x@example.com"' if method == "update_user" else ""
    for depth in (MAX_NESTING + 1, 100, 500):
        answer = call(client, admin_key, method, f'{{"{arg}": {nested(depth, brackets)}{extra}}}')
        assert answer == {"id": 1, "result": None,
                          "error": f"Invalid `{arg}` arg in JSON DATA: nested too deeply"}


def test_at_the_bound_the_value_is_accepted(client: Client, admin_key: str) -> None:
    value = json.loads(nested(MAX_NESTING))
    assert call(client, admin_key, "test", f'{{"args": {nested(MAX_NESTING)}}}') == {
        "id": 1, "result": value, "error": None}


def test_nesting_is_checked_before_the_type_of_a_later_arg(client: Client,
                                                           admin_key: str) -> None:
    answer = call(client, admin_key, "get_repos", f'{{"limit": {nested(40)}, "offset": "x"}}')
    assert answer["error"] == "Invalid `limit` arg in JSON DATA: nested too deeply"


@pytest.mark.parametrize("opener", [b"[", b'{"a":', b'{"id":'])
def test_a_hundred_thousand_levels_are_a_parse_error(client: Client, opener: bytes) -> None:
    assert post(client, opener * 100_000) == {"id": None, "result": None, "error": PARSE}


def test_escaped_text_deep_inside_args(client: Client, admin_key: str) -> None:
    # A body with escapes is walked for NUL and lone surrogates: that walk does not recurse.
    for depth in NEAR_THE_PARSERS_LIMIT[::7]:
        args = '{"args": ' + "[" * depth + '"\\u00e9"' + "]" * depth + "}"
        answer = call(client, admin_key, "test", args)
        assert answer["error"] in ("Invalid `args` arg in JSON DATA: nested too deeply", PARSE)


def test_a_deep_id(client: Client, admin_key: str) -> None:
    at_bound = call(client, admin_key, "test", '{"args": 1}', request_id=nested(MAX_NESTING))
    assert at_bound == {"id": json.loads(nested(MAX_NESTING)), "result": 1, "error": None}
    for depth in (MAX_NESTING + 1, 500, *NEAR_THE_PARSERS_LIMIT[::5]):
        for brackets in ("[]", "{}"):
            answer = call(client, admin_key, "test", '{"args": 1}',
                          request_id=nested(depth, brackets))
            assert answer == {"id": None, "result": None, "error": PARSE}, depth
