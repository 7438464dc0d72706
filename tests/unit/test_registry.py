from __future__ import annotations

import pytest

from rpcserver.api import build_registry
from rpcserver.core import schemas
from rpcserver.core.errors import ApiError, InvalidArg, MissingArg, UnknownArgs
from rpcserver.core.registry import RHODECODE, Registry
from rpcserver.domain.permissions import ADMIN


def make() -> Registry:
    registry = Registry()
    schema = schemas.obj(required=("a", "b"), a=schemas.string(5), b=schemas.integer(1, 9),
                         c=schemas.boolean())

    @registry.method("m", schema=schema, permission=ADMIN, aliases=("alias",))
    def m(ctx: object, a: str, b: int, c: bool = False) -> str:
        """Summary line.

        Details."""
        return a

    return registry


def test_lookup_and_aliases() -> None:
    registry = make()
    found = registry.lookup("m")
    assert found is not None and registry.lookup("alias") is found
    assert registry.lookup("M") is None
    assert found.params == ["a", "b", "c"] and found.required == ["a", "b"]
    assert found.summary == "Summary line."
    assert found.defaults() == {"c": False}


def test_rhodecode_falls_back_to_kallithea_methods() -> None:
    registry = make()
    assert registry.lookup("m", dialect=RHODECODE) is registry.lookup("m")


@pytest.mark.parametrize(("args", "error", "text"), [
    ({}, MissingArg, "Missing non optional `b` arg in JSON DATA"),
    ({"b": 1}, MissingArg, "Missing non optional `a` arg in JSON DATA"),
    ({"a": "x", "b": 1, "z": 1, "y": 2}, UnknownArgs, "Unknown `y`, `z` arg in JSON DATA"),
    ({"a": "x", "b": 0}, InvalidArg, "Invalid `b` arg in JSON DATA: must be at least 1"),
    ({"a": "toolong", "b": 0}, InvalidArg,
     "Invalid `a` arg in JSON DATA: must be at most 5 characters long"),
    ({"a": "x", "b": 1, "c": "yes"}, InvalidArg,
     "Invalid `c` arg in JSON DATA: must be a boolean (true or false)"),
])
def test_argument_errors_in_contract_order(args: dict[str, object], error: type,
                                           text: str) -> None:
    method = make().lookup("m")
    assert method is not None
    with pytest.raises(error) as info:
        method.check_args(args)
    assert isinstance(info.value, ApiError) and info.value.text == text


def test_every_real_method_has_a_summary_and_a_closed_schema() -> None:
    registry = build_registry()
    assert len(registry) > 0
    for name, method in registry:
        assert method.summary, name
        assert method.schema["additionalProperties"] is False, name
