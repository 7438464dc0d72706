"""Property tests: whatever a client sends, the answer is HTTP 200 JSON with the id echoed and
exactly one of result/error set (API.md §1)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.test import Client

from rpcserver.api import build_registry

PROPERTY_SETTINGS = settings(max_examples=300, deadline=None,
                             suppress_health_check=[HealthCheck.function_scoped_fixture])

# Storable text: NUL and lone surrogates are parse errors by design (see test_envelope).
texts = st.text(st.characters(exclude_characters="\x00", exclude_categories=["Cs"]))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False,
                                                          allow_infinity=False) | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=20,
)
method_names = st.sampled_from(sorted({name for name, _ in build_registry()})) | texts


def check(client: Client, body: bytes, expect_id: Any = None, has_id: bool = True) -> None:
    response = client.post("/_admin/api", data=body)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert b"Traceback" not in response.data
    answer = json.loads(response.data)
    if has_id:
        assert list(answer) == ["id", "result", "error"]
        assert answer["id"] == expect_id
    else:
        assert list(answer) == ["result", "error"]
    assert (answer["result"] is None) != (answer["error"] is None)
    if answer["error"] is not None:
        assert isinstance(answer["error"], str)
        assert answer["error"] != "Internal server error"


@PROPERTY_SETTINGS
@given(body=st.binary(max_size=300))
def test_arbitrary_bytes(client: Client, body: bytes) -> None:
    response = client.post("/_admin/api", data=body)
    assert response.status_code == 200
    answer = json.loads(response.data)
    assert (answer["result"] is None) != (answer["error"] is None)


@PROPERTY_SETTINGS
@given(request_id=json_values, method=method_names, args=json_values, good_key=st.booleans(),
       key_text=texts)
def test_arbitrary_envelopes(client: Client, admin_key: str, request_id: Any, method: str,
                             args: Any, good_key: bool, key_text: str) -> None:
    body = {"id": request_id, "api_key": admin_key if good_key else key_text,
            "method": method, "args": args}
    check(client, json.dumps(body).encode(), expect_id=request_id)


@PROPERTY_SETTINGS
@given(method=method_names, args=st.dictionaries(texts, json_values, max_size=5))
def test_arbitrary_args_for_real_methods(client: Client, admin_key: str, method: str,
                                         args: dict[str, Any]) -> None:
    body = {"id": 1, "api_key": admin_key, "method": method, "args": args}
    check(client, json.dumps(body).encode(), expect_id=1)


@PROPERTY_SETTINGS
@given(envelope=st.dictionaries(st.sampled_from(["api_key", "method", "args", "x"]),
                                json_values, max_size=4))
def test_id_less_envelopes(client: Client, envelope: dict[str, Any]) -> None:
    check(client, json.dumps(envelope).encode(), has_id=False)
