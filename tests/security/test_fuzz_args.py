"""Schema-driven argument fuzz: for every method in the registry, arguments generated from the
method's own JSON Schema (``Method.schema``), called as the admin. Whatever they are, the
answer is never ``Internal server error``, and a call that fails changes nothing (every table
and the repository directory are compared). Also, per method, wrong-typed values answer
row 14 (``Invalid `<arg>` arg in JSON DATA: ...``) and unknown names row 13.

Values come from hypothesis-jsonschema, one property schema at a time, composed here into the
args object (required names always, optional ones maybe): its own object strategy relies on a
hypothesis internal (``cu.many(...).more()``) that current hypothesis no longer has.

No generated clone_uri is ever used: it is dropped from the args before the call, and a
tripwire refuses (and fails the test on) any host name lookup.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema
from jsonschema import Draft202012Validator
from sqlalchemy import select
from werkzeug.test import Client

from rpcserver.api import build_registry
from rpcserver.core.config import Config
from rpcserver.core.registry import RHODECODE, Method
from rpcserver.db.database import Database
from rpcserver.db.models import Base
from tests.conftest import Rpc
from tests.security.conftest import ok

#: Examples per method; FUZZ_EXAMPLES scales it (``make fuzz``: 300). The same examples every
#: run (a CI failure is reproducible) unless FUZZ_RANDOM is set (``make fuzz`` sets it).
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "40"))
FUZZ_SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None,
                         derandomize=not os.environ.get("FUZZ_RANDOM"),
                         suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                HealthCheck.too_slow,
                                                HealthCheck.filter_too_much])
#: Never sent: a generated URL must not be fetched (nor its host resolved).
NETWORK_ARGS = {"clone_uri"}
#: Columns that calls which fail may still change: the key's last use is recorded apart.
VOLATILE = {("api_keys", "last_used_on")}

METHODS = [(name, method) for name, method in build_registry()]


def _generated(method: Method) -> tuple[list[str], list[str]]:
    """The names generated args hold: required ones always, the others maybe."""
    optional = [name for name in method.params
                if name not in method.required and name not in NETWORK_ARGS]
    return method.required, optional


#: Values that name objects of ``world`` (and valid permission names), mixed into what the
#: schema gives, so that generated calls also reach past "does not exist".
KNOWN: dict[str, list[Any]] = {
    "repoid": [1, 2, "r", "g/r2"], "repo": ["r", "g/r2"], "repogroupid": [1, "g"],
    "usergroupid": [1, "ug"], "userid": [1, 3, "3", "bob", "default"], "owner": [3, "bob"],
    "parent": [1, "g"], "group": ["g", ""], "raw_id": ["0" * 40, "tip"],
    "perm": ["repository.read", "repository.admin", "group.write", "group.none",
             "usergroup.admin"],
}


def _value(name: str, schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    if schema.get("type") == "object":
        # hypothesis-jsonschema's object strategy fails on this hypothesis ('many' object has
        # no attribute 'more'): objects of files, the one such argument (create_gist), here.
        return st.dictionaries(st.text(max_size=8), st.fixed_dictionaries(
            {"content": st.text(max_size=16)}) | st.dictionaries(st.text(max_size=8),
                                                                st.text(max_size=4)),
            max_size=3)
    generated = from_schema(schema)
    if name in KNOWN:
        return st.one_of(st.sampled_from(KNOWN[name]), generated)
    return generated


def _strategy(method: Method) -> st.SearchStrategy[dict[str, Any]]:
    properties = method.schema["properties"]
    required, optional = _generated(method)
    return st.fixed_dictionaries(
        {name: _value(name, properties[name]) for name in required},
        optional={name: _value(name, properties[name]) for name in optional})


#: Any JSON value, to find ones a parameter's schema refuses.
ANY_JSON = st.recursive(st.none() | st.booleans() | st.integers()
                        | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
                        lambda inner: st.lists(inner, max_size=2)
                        | st.dictionaries(st.text(max_size=4), inner, max_size=2),
                        max_leaves=4)


def _snapshot(db: Database, root: Path) -> tuple[Any, ...]:
    tables = []
    with db.transaction(write=False) as session:
        for table in Base.metadata.sorted_tables:
            columns = [c for c in table.columns if (table.name, c.name) not in VOLATILE]
            rows = session.execute(select(*columns).order_by(*table.primary_key.columns)).all()
            tables.append((table.name, [tuple(row) for row in rows]))
    disk = sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if ".rpcserver" not in p.relative_to(root).parts) if root.exists() else []
    return tuple(tables), tuple(disk)


def _call(client: Client, key: str, method: Method, name: str,
          args: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"api_key": key, "method": name, "args": args}
    if method.dialect != RHODECODE:
        body["id"] = 7
    response = client.post("/_admin/api", data=json.dumps(body))
    assert response.status_code == 200
    assert b"Traceback" not in response.data
    answer: dict[str, Any] = json.loads(response.data)
    assert (answer["result"] is None) != (answer["error"] is None)
    assert answer["error"] != "Internal server error", (name, args)
    return answer


@pytest.fixture
def world(rpc: Rpc) -> None:
    """A few objects for generated ids and names to hit: users 3 (bob), user group 1 (ug),
    repository groups 1 (g), repositories 1 (r) and 2 (g/r2), bob a member and granted."""
    ok(rpc("create_user", username="bob", email="bob@example.com"))
    ok(rpc("create_user_group", group_name="ug"))
    ok(rpc("create_repo_group", group_name="g"))
    ok(rpc("create_repo", repo_name="r"))
    ok(rpc("create_repo", repo_name="g/r2"))
    ok(rpc("add_user_to_user_group", usergroupid="ug", userid="bob"))
    ok(rpc("grant_user_permission", repoid="r", userid="bob", perm="repository.write"))


def _storable(value: Any) -> bool:
    """False for a NUL character or a lone surrogate in any string: the server refuses such a
    body as a parse error (API.md §1 row 4)."""
    if isinstance(value, str):
        return "\x00" not in value and not re.search("[\ud800-\udfff]", value)
    if isinstance(value, dict):
        return all(_storable(k) and _storable(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_storable(v) for v in value)
    return True


def _targets_the_caller(name: str, args: dict[str, Any]) -> bool:
    """update_user/delete_user of the admin itself (allowed once a generated admin exists),
    revoking or rotating its key (id 1), or an address rule on it: the fuzz would go on
    with a dead or fenced-in key."""
    if name in ("update_user", "delete_user", "add_user_ip"):
        return args.get("userid") in (2, "2", "admin")
    return name in ("revoke_api_key", "rotate_api_key") and args.get("key_id") == 1


@pytest.mark.parametrize(("name", "method"), METHODS,
                         ids=[f"{n}-{m.dialect}" for n, m in METHODS])
def test_generated_args(name: str, method: Method, client: Client, admin_key: str,
                        db: Database, config: Config, world: None,
                        no_name_lookups: list[str]) -> None:
    root = Path(config.repos_root)
    properties = method.schema["properties"]
    validators = {p: Draft202012Validator(s) for p, s in properties.items()}

    @FUZZ_SETTINGS
    @given(args=_strategy(method), data=st.data())
    def run(args: dict[str, Any], data: st.DataObject) -> None:
        assume(not _targets_the_caller(name, args))
        case = data.draw(st.sampled_from(["valid", "valid", "wrong type", "unknown"]))
        expected: str | None = None
        if case == "wrong type" and properties:
            param = data.draw(st.sampled_from(sorted(properties)))
            value = data.draw(ANY_JSON.filter(lambda v: not validators[param].is_valid(v)))
            if param not in NETWORK_ARGS:
                args = {**args, param: value}
                expected = f"Invalid `{param}` arg in JSON DATA: "
        elif case == "unknown":
            extra = data.draw(st.lists(st.text(min_size=1, max_size=6).filter(
                lambda n: n not in properties), min_size=1, max_size=3, unique=True))
            args = {**args, **dict.fromkeys(extra, 1)}
            names = ", ".join(f"`{n}`" for n in sorted(extra))
            expected = f"Unknown {names} arg in JSON DATA"
        if not _storable(args):
            case, expected = "unstorable", "JSON parse error ERR:a string holds a "
        before = _snapshot(db, root)
        answer = _call(client, admin_key, method, name, args)
        outcomes[case if answer["error"] is None else f"{case}: error"] += 1
        if expected is not None:
            assert answer["error"] is not None and answer["error"].startswith(expected), (
                args, answer["error"])
            if case == "unknown":
                assert answer["error"] == expected
        if answer["error"] is not None:
            assert _snapshot(db, root) == before, (name, args, answer["error"])

    outcomes: Counter[str] = Counter()
    run()
    print(f"\n{name} ({method.dialect}): {sum(outcomes.values())} calls {dict(outcomes)}")


def test_every_method_is_fuzzed() -> None:
    assert len(METHODS) == len(build_registry())
    assert {name for name, _ in METHODS} >= {"create_repo", "pull", "update_repo", "test"}


def test_generated_args_never_hold_a_clone_uri() -> None:
    fetching = [name for name, method in METHODS if "clone_uri" in method.params]
    assert set(fetching) == {"create_repo", "update_repo", "pull"}
    for _name, method in METHODS:
        required, optional = _generated(method)
        assert "clone_uri" not in required + optional
