"""API.md §1, row by row, through the WSGI app: always HTTP 200 JSON, the exact texts."""

from __future__ import annotations

import json
from typing import Any

import pytest
from werkzeug.test import Client

from rpcserver.core.config import Config

API = "/_admin/api"


def post(client: Client, body: bytes | str | dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    data = json.dumps(body) if isinstance(body, dict) else body
    response = client.post(API, data=data, **kwargs)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    answer: dict[str, Any] = json.loads(response.data)
    return answer


def envelope(key: str, method: Any = "get_user", args: Any = None, id: Any = 7,
             **extra: Any) -> dict[str, Any]:
    return {"id": id, "api_key": key, "method": method, "args": args, **extra}


def test_row1_no_content_length(client: Client) -> None:
    response = client.get(API)
    assert response.status_code == 200
    assert response.get_json() == {"id": None, "result": None,
                                   "error": "No Content-Length in request"}


def test_row2_content_length_zero(client: Client) -> None:
    answer = post(client, b"", environ_overrides={"CONTENT_LENGTH": "0"})
    assert answer == {"id": None, "result": None, "error": "Content-Length is 0"}


def test_row3_body_over_the_limit_is_refused_unread(client: Client, config: Config) -> None:
    body = b" " * (config.max_body_bytes + 1)
    assert post(client, body)["error"] == "Request body too large"


def test_row3_body_at_the_limit_is_parsed(client: Client, config: Config,
                                          admin_key: str) -> None:
    body = json.dumps(envelope(admin_key, "test", {"args": "x"})).encode()
    body += b" " * (config.max_body_bytes - len(body))
    assert post(client, body)["result"] == "x"


@pytest.mark.parametrize("body", [b"{", b"nope", b"{'id': 1}", b"\xff\xfe{}", b"[1,]",
                                  b'{"id": NaN}', b'{"id": 1e999}'])
def test_row4_parse_errors_never_echo_the_body(client: Client, body: bytes) -> None:
    answer = post(client, body)
    assert answer["id"] is None and answer["result"] is None
    assert answer["error"].startswith("JSON parse error ERR:")
    assert "nope" not in answer["error"]


def test_row4_parse_error_keeps_the_api_key_out(client: Client, admin_key: str) -> None:
    body = f'{{"api_key": "{admin_key}", "method": "get_user", '
    assert admin_key not in post(client, body)["error"]


def test_row4_deep_nesting_is_a_parse_error(client: Client) -> None:
    answer = post(client, b"[" * 200_000)
    assert answer["error"].startswith("JSON parse error ERR:")


@pytest.mark.parametrize("body", ["[]", "[1, 2]", '"text"', "3", "null", "true"])
def test_row5_json_that_is_not_an_object(client: Client, body: str) -> None:
    assert post(client, body) == {"id": None, "result": None,
                                  "error": "Incorrect JSON query: body must be a JSON object"}


@pytest.mark.parametrize(("missing", "expected_id"), [("api_key", None), ("method", 7),
                                                      ("args", 7)])
def test_row6_missing_keys_in_order(client: Client, admin_key: str, missing: str,
                                    expected_id: Any) -> None:
    body = envelope(admin_key, args={})
    del body[missing]
    answer = post(client, body)
    assert answer == {"id": expected_id, "result": None,
                      "error": f"Incorrect JSON query missing '{missing}'"}


def test_row6_api_key_is_checked_before_method_and_args(client: Client) -> None:
    assert post(client, {"id": 1})["error"] == "Incorrect JSON query missing 'api_key'"


def test_row7_null_args_mean_no_args(client: Client, admin_key: str) -> None:
    answer = post(client, envelope(admin_key, "get_user", None))
    assert answer["error"] is None
    assert answer["result"]["username"] == "admin"


@pytest.mark.parametrize("args", [[], ["x"], "x", 3, True])
def test_row7b_args_that_are_not_an_object(client: Client, admin_key: str, args: Any) -> None:
    assert post(client, envelope(admin_key, "get_user", args)) == {
        "id": 7, "result": None, "error": "Incorrect JSON query: 'args' must be an object"}


@pytest.mark.parametrize("key", ["", "nope", None, 42, ["k"], {"k": 1},
                                 "rpck_" + "A" * 43, "x" * 100_000])
def test_row8_bad_keys_get_one_text(client: Client, key: Any) -> None:
    assert post(client, envelope(key, "get_user", {})) == {
        "id": 7, "result": None, "error": "Invalid API key"}


def test_row8_is_checked_before_the_method(client: Client) -> None:
    answer = post(client, envelope("bad", "no_such_thing", {}))
    assert answer["error"] == "Invalid API key"


@pytest.mark.parametrize("method", [None, 3, ["get_user"], {"name": "get_user"}, True])
def test_row9_method_not_a_string(client: Client, admin_key: str, method: Any) -> None:
    assert post(client, envelope(admin_key, method, {}))["error"] == (
        "Incorrect JSON query: 'method' must be a string")


@pytest.mark.parametrize("method", ["_private", "__init__", "_"])
def test_row10_underscore_methods(client: Client, admin_key: str, method: str) -> None:
    assert post(client, envelope(admin_key, method, {}))["error"] == "Method not allowed"


@pytest.mark.parametrize("method", ["no_such", "GET_USER", "get_user ", ""])
def test_row11_unknown_methods_are_case_sensitive(client: Client, admin_key: str,
                                                  method: str) -> None:
    assert post(client, envelope(admin_key, method, {}))["error"] == f"No such method: {method}"


def test_row12_missing_arg_names_the_last_missing_one(client: Client, admin_key: str) -> None:
    answer = post(client, envelope(admin_key, "create_user", {}))
    assert answer["error"] == "Missing non optional `email` arg in JSON DATA"
    answer = post(client, envelope(admin_key, "create_user", {"email": "a@b.c"}))
    assert answer["error"] == "Missing non optional `username` arg in JSON DATA"


def test_row12_comes_before_unknown_args(client: Client, admin_key: str) -> None:
    answer = post(client, envelope(admin_key, "create_user", {"bogus": 1}))
    assert answer["error"] == "Missing non optional `email` arg in JSON DATA"


def test_row13_unknown_args_sorted(client: Client, admin_key: str) -> None:
    args = {"zeta": 1, "alpha": 2, "userid": 2}
    assert post(client, envelope(admin_key, "get_user", args))["error"] == (
        "Unknown `alpha`, `zeta` arg in JSON DATA")


def test_row13_comes_before_type_errors(client: Client, admin_key: str) -> None:
    args = {"userid": True, "extra": 1}
    assert post(client, envelope(admin_key, "get_user", args))["error"] == (
        "Unknown `extra` arg in JSON DATA")


@pytest.mark.parametrize(("args", "error"), [
    ({"username": "u", "email": "u@x.org", "active": "no"},
     "Invalid `active` arg in JSON DATA: must be a boolean (true or false)"),
    ({"username": "u", "email": "u@x.org", "admin": 1},
     "Invalid `admin` arg in JSON DATA: must be a boolean (true or false)"),
    ({"username": "u" * 256, "email": "u@x.org"},
     "Invalid `username` arg in JSON DATA: must be at most 255 characters long"),
    ({"username": "../u", "email": "u@x.org"},
     "Invalid `username` arg in JSON DATA: contains characters that are not allowed"),
    ({"username": "u", "email": "no-at-sign"},
     "Invalid `email` arg in JSON DATA: contains characters that are not allowed"),
    ({"username": "u", "email": "u@x.org", "password": 12345},
     "Invalid `password` arg in JSON DATA: must be a string"),
])
def test_row14_wrong_types_and_ranges(client: Client, admin_key: str, args: dict[str, Any],
                                      error: str) -> None:
    assert post(client, envelope(admin_key, "create_user", args))["error"] == error


def test_row14_reason_never_echoes_the_value(client: Client, admin_key: str) -> None:
    args = {"username": "u", "email": "u@x.org", "password": ["hunter2-secret"]}
    answer = post(client, envelope(admin_key, "create_user", args))
    assert "hunter2" not in answer["error"]


def test_row14_true_is_not_an_id(client: Client, admin_key: str) -> None:
    answer = post(client, envelope(admin_key, "get_user", {"userid": True}))
    assert answer["error"] == "Invalid `userid` arg in JSON DATA: must be an integer or a string"


def test_row15_non_admin_gets_access_denied(client: Client, user_key: str) -> None:
    answer = post(client, envelope(user_key, "get_users", {}))
    assert answer == {"id": 7, "result": None, "error": "Access was denied to this resource."}


def test_row15_comes_after_argument_checks(client: Client, user_key: str) -> None:
    answer = post(client, envelope(user_key, "get_users", {"bogus": 1}))
    assert answer["error"] == "Unknown `bogus` arg in JSON DATA"


@pytest.mark.parametrize("request_id", [0, -1, 2**80, 1.5, "abc", "", None, True, False,
                                        [1, "a"], {"nested": {"x": [None]}}, "\u00ef"])
def test_id_is_echoed_verbatim(client: Client, admin_key: str, request_id: Any) -> None:
    answer = post(client, envelope(admin_key, "test", {"args": 1}, id=request_id))
    assert answer == {"id": request_id, "result": 1, "error": None}


def test_answer_keys_in_wire_order_and_non_ascii_escaped(client: Client,
                                                        admin_key: str) -> None:
    response = client.post(API, data=json.dumps(envelope(admin_key, "test",
                                                         {"args": "na\u00efve"})))
    assert response.data == b'{"id": 7, "result": "na\\u00efve", "error": null}'


def test_get_is_answered_like_post(client: Client, admin_key: str) -> None:
    response = client.get(API, data=json.dumps(envelope(admin_key, "test", {"args": 5})))
    assert response.status_code == 200
    assert response.get_json()["result"] == 5


def test_trailing_slash_is_the_same_endpoint(client: Client, admin_key: str) -> None:
    response = client.post(API + "/", data=json.dumps(envelope(admin_key, "test", {"args": 5})))
    assert response.get_json()["result"] == 5


@pytest.mark.parametrize("http_method", ["PUT", "DELETE", "PATCH"])
def test_other_http_methods_get_405(client: Client, http_method: str) -> None:
    response = client.open(API, method=http_method, data=b"{}")
    assert response.status_code == 405
    assert sorted(response.headers["Allow"].split(", ")) == ["GET", "POST"]


@pytest.mark.parametrize("query", ["_method=PUT", "_method=DELETE", "_method=POST", "_method=",
                                   "_method", "x=1&_method=PUT", "_method=PUT&_method=GET"])
@pytest.mark.parametrize("http_method", ["POST", "GET"])
def test_a_method_override_gets_405(client: Client, admin_key: str, query: str,
                                    http_method: str) -> None:
    """Kallithea refuses TurboGears' ``_method`` override with 405, whatever its value, before
    it reads the body or the key; so do we, with the Allow header a 405 must carry."""
    for key in (admin_key, "not a key"):
        response = client.open(f"{API}?{query}", method=http_method,
                               data=json.dumps(envelope(key, "test", {"args": 5})))
        assert response.status_code == 405
        assert sorted(response.headers["Allow"].split(", ")) == ["GET", "POST"]
        assert b"_method" in response.data
    assert client.post(f"{API}?_method=PUT", data=b"{nope").status_code == 405


@pytest.mark.parametrize(("query", "headers"), [
    ("_METHOD=PUT", {}),  # the parameter's name is case-sensitive, as Kallithea's
    ("x_method=PUT", {}),
    ("", {"X-HTTP-Method-Override": "DELETE"}),
    ("", {"X-HTTP-Method": "PUT"}),
    ("", {"X-Method-Override": "PUT"}),
])
def test_what_kallithea_does_not_take_for_an_override_is_answered(
        client: Client, admin_key: str, query: str, headers: dict[str, str]) -> None:
    response = client.post(f"{API}?{query}", headers=headers,
                           data=json.dumps(envelope(admin_key, "test", {"args": 5})))
    assert response.status_code == 200
    assert response.get_json()["result"] == 5


def test_a_form_body_naming_method_is_still_json_to_us(client: Client, admin_key: str) -> None:
    """The body is JSON whatever its Content-Type, so a ``_method`` there is only text."""
    body = envelope(admin_key, "test", {"args": "&_method=PUT&"})
    answer = post(client, body, content_type="application/x-www-form-urlencoded")
    assert answer["result"] == "&_method=PUT&"


def test_content_type_is_not_checked(client: Client, admin_key: str) -> None:
    answer = post(client, envelope(admin_key, "test", {"args": 5}), content_type="text/plain")
    assert answer["result"] == 5


def test_other_paths_are_404(client: Client) -> None:
    assert client.post("/_admin/apix", data=b"{}").status_code == 404


class TestRhodeCodeEnvelope:
    """No ``id`` and no ``jsonrpc`` member: a RhodeCode 1.2 request, answered without id."""

    def test_empty_object(self, client: Client) -> None:
        assert post(client, {}) == {"result": None,
                                    "error": "Incorrect JSON query missing 'api_key'"}

    def test_bad_key(self, client: Client) -> None:
        assert post(client, {"api_key": "x", "method": "get_user", "args": {}}) == {
            "result": None, "error": "Invalid API key"}

    def test_kallithea_methods_work_too(self, client: Client, admin_key: str) -> None:
        answer = post(client, {"api_key": admin_key, "method": "test", "args": {"args": [1]}})
        assert answer == {"result": [1], "error": None}

    def test_jsonrpc_member_means_an_id_is_answered(self, client: Client,
                                                    admin_key: str) -> None:
        answer = post(client, {"jsonrpc": "2.0", "api_key": admin_key, "method": "test",
                               "args": {"args": 1}})
        assert answer == {"id": None, "result": 1, "error": None}


@pytest.mark.parametrize("escape", ["\\ud800", "\\udfff", "x\\ud83d"])
def test_row4_lone_surrogate_escapes_are_a_parse_error(client: Client, admin_key: str,
                                                       escape: str) -> None:
    args = {"username": "bob", "email": "b@example.com", "firstname": "@@"}
    body = json.dumps(envelope(admin_key, "create_user", args)).replace("@@", escape)
    answer = post(client, body)
    assert answer["error"] == (
        "JSON parse error ERR:a string holds a lone UTF-16 surrogate escape")


def test_surrogate_pairs_are_fine(client: Client, admin_key: str) -> None:
    body = '{"id": 1, "api_key": "%s", "method": "test", "args": {"args": "\\ud83d\\ude00"}}'
    assert post(client, body % admin_key)["result"] == "\U0001f600"


def test_row4_nul_characters_are_a_parse_error(client: Client, admin_key: str) -> None:
    body = '{"id": 1, "api_key": "%s", "method": "test", "args": {"args": "a\\u0000b"}}'
    assert post(client, body % admin_key)["error"] == (
        "JSON parse error ERR:a string holds a NUL character")


@pytest.mark.parametrize(("field", "value"), [("username", "alice\n"),
                                              ("email", "alice@example.com\n")])
def test_row14_a_trailing_newline_is_not_the_end_of_a_name(client: Client, admin_key: str,
                                                           field: str, value: str) -> None:
    args = {"username": "alice", "email": "alice@example.com", field: value}
    answer = post(client, envelope(admin_key, "create_user", args))
    assert answer["error"] == (
        f"Invalid `{field}` arg in JSON DATA: contains characters that are not allowed")
