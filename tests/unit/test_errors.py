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
