from __future__ import annotations

import json

import pytest

from rpcserver.rpc.protocol import Envelope, ProtocolError, answer, decode, encode


def test_decode_kallithea_envelope() -> None:
    body = b'{"id": 3, "api_key": "k", "method": "m", "args": {"a": 1}}'
    assert decode(body) == Envelope(id=3, has_id=True, api_key="k", method="m", args={"a": 1})


def test_decode_rhodecode_envelope_has_no_id() -> None:
    envelope = decode(b'{"api_key": "k", "method": "m", "args": null}')
    assert (envelope.has_id, envelope.id, envelope.args) == (False, None, {})


def test_missing_key_error_carries_the_id() -> None:
    with pytest.raises(ProtocolError) as info:
        decode(b'{"id": "x", "api_key": "k", "args": {}}')
    assert (info.value.text, info.value.id) == ("Incorrect JSON query missing 'method'", "x")


def test_big_integers_survive_a_round_trip() -> None:
    big = 2**100
    envelope = decode(json.dumps({"id": big, "api_key": "", "method": "", "args": {}}).encode())
    expected = f'{{"id": {big}, "result": 1, "error": null}}'.encode()
    assert encode(answer(envelope.id, 1, None)) == expected


def test_encode_orders_keys_and_escapes_non_ascii() -> None:
    assert encode(answer(1, "\u00ef", None)) == b'{"id": 1, "result": "\\u00ef", "error": null}'
    assert encode(answer(None, None, "e", has_id=False)) == b'{"result": null, "error": "e"}'


@pytest.mark.parametrize("body", [b"Infinity", b"-Infinity", b"NaN", b"[1e400]"])
def test_non_finite_numbers_are_refused(body: bytes) -> None:
    with pytest.raises(ProtocolError, match="JSON parse error ERR:"):
        decode(body)
