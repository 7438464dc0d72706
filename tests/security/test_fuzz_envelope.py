"""Envelope fuzz: ``FUZZ_BODIES`` (default 10,000) hostile bodies from a fixed seed, each
answered as API.md §1 promises (``fuzz.check_answer``); then hypothesis, on a smaller budget,
for bodies it can shrink. ``make fuzz`` runs 200,000. One database for all bodies: most fail
before the database, and the rest are small reads or refused writes.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.test import Client

from rpcserver.core.registry import Registry
from tests.conftest import ApiUser
from tests.security.fuzz import Bodies, carries_clone_uri, check_answer, strip_clone_uri

BODIES = int(os.environ.get("FUZZ_BODIES", "10000"))
SEED = int(os.environ.get("FUZZ_SEED", "20250601"))
#: hypothesis examples: a hundredth of the bulk, at least 300; the same ones every run unless
#: FUZZ_RANDOM is set.
EXAMPLES = max(300, BODIES // 100)


def _method_params(registry: Registry) -> tuple[list[str], dict[str, list[str]]]:
    params: dict[str, list[str]] = {}
    for name, method in registry:
        params.setdefault(name, [])
        params[name] += [p for p in method.params if p not in params[name]]
    return sorted(params), params


@pytest.fixture
def bodies(registry: Registry, admin_key: str,
           make_user: Callable[..., ApiUser]) -> Callable[[int], Bodies]:
    methods, params = _method_params(registry)
    keys = [admin_key, admin_key, make_user("alice").key, "rpck_" + "0" * 40]
    return lambda seed: Bodies(seed, keys, methods, params)


def test_bulk(client: Client, bodies: Callable[[int], Bodies],
              no_name_lookups: list[str]) -> None:
    started = time.perf_counter()
    errors: dict[str, int] = {}
    for index, body in zip(range(BODIES), bodies(SEED), strict=False):
        try:
            answer = check_answer(client, body)
        except AssertionError as exc:
            raise AssertionError(f"body #{index} (FUZZ_SEED={SEED}): {body[:300]!r}") from exc
        text = answer["error"] or "ok"
        key = text.split(":")[0][:40]
        errors[key] = errors.get(key, 0) + 1
    elapsed = time.perf_counter() - started
    top = sorted(errors.items(), key=lambda kv: -kv[1])[:12]
    print(f"\nenvelope fuzz: {BODIES} bodies in {elapsed:.1f} s "
          f"({BODIES / elapsed:.0f}/s), seed {SEED}; answers: {top}")


# -- hypothesis: fewer bodies, but a failure shrinks to a small one -----------------------

FUZZ_SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None,
                         derandomize=not os.environ.get("FUZZ_RANDOM"),
                         suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                HealthCheck.too_slow])

texts = st.text(max_size=12)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)
edits = st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from(["set", "insert", "delete"]),
                           st.integers(0, 255)), max_size=4)


@FUZZ_SETTINGS
@given(data=st.data(), edit=edits, seed=st.integers(0, 2**32))
def test_shrinkable_mutations(client: Client, bodies: Callable[[int], Bodies],
                              no_name_lookups: list[str], data: st.DataObject,
                              edit: list[tuple[int, str, int]], seed: int) -> None:
    envelope = bodies(seed).valid()
    for field in data.draw(st.lists(st.sampled_from(["id", "api_key", "method", "args"]),
                                    max_size=2)):
        envelope[field] = data.draw(json_values)
    strip_clone_uri(envelope.get("args"))
    body = bytearray(json.dumps(envelope, allow_nan=True).encode())
    for at, action, byte in edit:
        at %= max(1, len(body))
        if action == "set" and body:
            body[at] = byte
        elif action == "insert":
            body.insert(at, byte)
        elif body:
            del body[at]
    if body and not carries_clone_uri(bytes(body)):
        check_answer(client, bytes(body))
