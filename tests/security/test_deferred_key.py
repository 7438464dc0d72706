"""A key revoked or expired while its call's slow part runs (a pull's fetch, a clone).

The call's finish runs in a second transaction, after the fetch; it checks the key again, by
its id, as it checks the user: the answer is ``Invalid API key`` and the fetch or the clone
is undone. The remote is a real smart-HTTP git server on loopback that stalls the pack.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from rpcserver.core.config import Config
from rpcserver.db.database import Database
from rpcserver.db.models import ApiKey, utcnow
from rpcserver.domain.key_format import key_digest
from tests import gitremotes
from tests.conftest import ApiUser, Rpc
from tests.gitremotes import SmartHttp, Upstream, api_caller, leftovers, on_disk, snapshot
from tests.security.conftest import ok

remotes = gitremotes.remotes
upstream = gitremotes.upstream
http_remote = gitremotes.http_remote


@pytest.fixture
def config(config: Config) -> Config:
    return dataclasses.replace(config, clone_uri_allow_private_hosts=True)


def withdraw(db: Database, key: str, how: str) -> None:
    now = utcnow()
    values = {"revoked_on": now} if how == "revoked" else {"expires_on": now}
    with db.transaction(write=True) as session:
        session.execute(update(ApiKey).where(ApiKey.digest == key_digest(key)).values(values))


def while_fetching(remote: SmartHttp, call: Callable[[], dict[str, Any]],
                   meanwhile: Callable[[], None]) -> dict[str, Any]:
    """Run ``call`` in a thread; once its git has reached the (stalling) remote — its first
    transaction is over — run ``meanwhile``; the call's answer."""
    remote.behaviour, remote.stall_for = "stall", 2.0
    answers: list[dict[str, Any]] = []
    earlier = len(remote.requests)
    worker = threading.Thread(target=lambda: answers.append(call()))
    worker.start()
    deadline = time.monotonic() + 10
    while not any(method == "POST" for method, _, _ in remote.requests[earlier:]):
        assert time.monotonic() < deadline, "git never reached the remote"
        time.sleep(0.02)
    meanwhile()
    worker.join(30)
    return answers[0]


@pytest.mark.parametrize("how", ["revoked", "expired"])
def test_a_pull_whose_key_is_withdrawn_mid_fetch(
        config: Config, db: Database, rpc: Rpc, upstream: Upstream, http_remote: SmartHttp,
        make_user: Callable[..., ApiUser], how: str) -> None:
    other = make_user("other", admin=True)
    ok(rpc("create_repo", repo_name="m", clone_uri=http_remote.url("up", "bob", "s3cr3t")))
    upstream.commit(5)
    path = Path(config.repos_root) / "m"
    before = snapshot(path)
    cache = ok(rpc("get_repo", repoid="m"))["last_changeset"]
    answer = while_fetching(http_remote,
                            lambda: api_caller(config, db, other.key)("pull", repoid="m"),
                            lambda: withdraw(db, other.key, how))
    assert answer["error"] == "Invalid API key"
    assert snapshot(path) == before
    assert ok(rpc("get_repo", repoid="m"))["last_changeset"] == cache
    assert leftovers(config.repos_root) == []


def test_a_clone_whose_key_is_revoked_mid_clone(
        config: Config, db: Database, rpc: Rpc, upstream: Upstream, http_remote: SmartHttp,
        make_user: Callable[..., ApiUser]) -> None:
    other = make_user("other", admin=True)
    answer = while_fetching(
        http_remote,
        lambda: api_caller(config, db, other.key)(
            "create_repo", repo_name="m", clone_uri=http_remote.url("up", "bob", "s3cr3t")),
        lambda: withdraw(db, other.key, "revoked"))
    assert answer["error"] == "Invalid API key"
    assert rpc("get_repo", repoid="m")["error"] == "repository `m` does not exist"
    assert on_disk(config.repos_root) == []
    assert leftovers(config.repos_root) == []
