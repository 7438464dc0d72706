"""The scope matrix: every registered method, called by an admin with keys of each scope, is
refused with the scope's text exactly when the registry says its scope does not reach it
(docs/authentication.md). Generated from the registry and the permission matrix's calls, so a
new method is covered the day it is registered.

Keys, weakest first (the admin's own objects are the targets; each scope's calls run before the
next, so a method that deletes its object does so last, with the admin scope):
``repository:<own repository>:pull`` and ``...:pull,push`` (object scopes only), ``read``,
``write``, ``admin``.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from werkzeug.test import Client

from rpcserver.api import build_registry
from rpcserver.core.config import Config
from rpcserver.core.registry import PULL, PUSH
from rpcserver.db.database import Database
from rpcserver.db.models import User
from rpcserver.domain.auth import issue_api_key
from rpcserver.domain.scopes import parse
from tests.api.test_permissions_matrix import OWN, SPECS, World, build_world, call, target

SCOPES = ("object-pull", "object-push", "read", "write", "admin")
METHODS = {(name, method.dialect): method for name, method in build_registry()}


def scoped_keys(db: Database, world: World) -> dict[str, str]:
    repository = world.own[("admin", "repository")]
    texts = {"object-pull": f"repository:{repository}:pull",
             "object-push": f"repository:{repository}:pull,push",
             "read": "read", "write": "write", "admin": "admin"}
    keys = {}
    with db.transaction(write=True) as session:
        admin = session.scalars(select(User).where(User.username == "admin")).one()
        for name, scopes in texts.items():
            keys[name], row = issue_api_key(session, admin, description=name)
            row.scopes = scopes
    return keys


def allowed(scope: str, key: tuple[str, str], sent: Any, world: World) -> bool:
    method = METHODS[key]
    if scope.startswith("object-"):
        right = PUSH if scope == "object-push" else PULL
        on_own = (method.repository_arg is not None and SPECS[key].kind == "repository"
                  and sent == world.own[("admin", "repository")])
        return on_own and method.repository_right in (PULL, right) and (
            method.repository_right == PULL or right == PUSH)
    return parse(scope).reaches(method)


@pytest.fixture
def world(db: Database, admin_key: str, config: Config) -> World:
    return build_world(db, admin_key, config)


@pytest.mark.parametrize("key", sorted(SPECS), ids=lambda k: "-".join(k))
def test_scope_matrix(client: Client, db: Database, world: World,
                      key: tuple[str, str]) -> None:
    name, _dialect = key
    spec = SPECS[key]
    keys = scoped_keys(db, world)
    sent = target(spec, world, "admin", OWN) if spec.kind is not None else None
    refused = f"API key scope does not allow `{name}`"
    failures = []
    for scope in SCOPES:
        answer = call(client, keys[scope], name, spec.args(sent), spec.dialect)
        want_allowed = allowed(scope, key, sent, world)
        if want_allowed and answer["error"] == refused:
            failures.append(f"{scope}: refused, but the scope reaches it")
        elif not want_allowed and answer["error"] != refused:
            failures.append(f"{scope}: wanted {refused!r}, got {answer['error']!r} "
                            f"(result {str(answer['result'])[:80]})")
    assert not failures, f"{name} (needs {METHODS[key].scope}):\n  " + "\n  ".join(failures)
