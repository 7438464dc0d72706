from __future__ import annotations

from rpcserver.core import errors


def test_texts() -> None:
    assert errors.InvalidApiKey("why").text == "Invalid API key"
    assert errors.InvalidApiKey("why").reason == "why"
    assert errors.MethodNotAllowed().text == "Method not allowed"
    assert errors.NoSuchMethod("x").text == "No such method: x"
    assert errors.AccessDenied().text == "Access was denied to this resource."
    assert errors.NotFound("user", 3).text == "user `3` does not exist"
    assert errors.MissingArg("a").text == "Missing non optional `a` arg in JSON DATA"
    assert errors.UnknownArgs(["b", "a"]).text == "Unknown `a`, `b` arg in JSON DATA"
    assert errors.InvalidArg("a", "why").text == "Invalid `a` arg in JSON DATA: why"
    assert errors.InternalError().text == "Internal server error"
    assert str(errors.ApiError("plain")) == "plain"


def test_every_error_has_a_json_rpc_2_code() -> None:
    """The spec's codes where it has one, else the server range -32000..-32099."""
    classes = [c for c in vars(errors).values()
               if isinstance(c, type) and issubclass(c, errors.ApiError)]
    spec = {-32600, -32601, -32602, -32603}
    assert all(c.code in spec or -32099 <= c.code <= -32000 for c in classes)
    assert errors.NoSuchMethod("x").code == -32601
    assert errors.InvalidArg("a", "b").code == errors.MissingArg("a").code == -32602
    assert errors.InternalError().code == -32603
    assert errors.ApiError("a method's own refusal").code == -32000
