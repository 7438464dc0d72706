"""Secrets never come back: not in an answer, an error text or a log line (at DEBUG), across
the calls that handle them, their failures included."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable

import pytest

from rpcserver.core.config import Config
from tests import gitremotes
from tests.conftest import ApiUser, Rpc
from tests.gitremotes import SmartHttp, Upstream
from tests.security.conftest import ok

remotes = gitremotes.remotes
upstream = gitremotes.upstream
http_remote = gitremotes.http_remote

PASSWORD = "s3cr3t"


@pytest.fixture
def config(config: Config) -> Config:
    return dataclasses.replace(config, clone_uri_allow_private_hosts=True)


def test_keys_and_clone_uri_passwords_never_reach_answers_or_logs(
        rpc: Rpc, admin_key: str, upstream: Upstream, http_remote: SmartHttp,
        make_user: Callable[..., ApiUser], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    bob = make_user("bob")
    answers = []
    good = http_remote.url("up", "bob", PASSWORD)
    encoded = http_remote.url("up", "bob", "s3%63r3t")  # the same password, percent-encoded
    wrong = http_remote.url("up", "bob", PASSWORD + "x")
    calls = [
        ("create_repo", {"repo_name": "m", "clone_uri": good}),
        ("create_repo", {"repo_name": "e", "clone_uri": encoded}),
        ("create_repo", {"repo_name": "w", "clone_uri": wrong}),
        ("create_repo", {"repo_name": "m", "clone_uri": good}),
        ("create_repo", {"repo_name": "bad name", "clone_uri": good}),
        ("create_repo", {"repo_name": "p", "clone_uri": "http://u:" + PASSWORD + "@[::1/"}),
        ("get_repo", {"repoid": "m"}),
        ("get_repo", {"repoid": "e"}),
        ("get_repos", {}),
        ("update_repo", {"repoid": "m", "clone_uri": encoded}),
        ("update_repo", {"repoid": "m", "clone_uri": "ext::" + PASSWORD}),
        ("pull", {"repoid": "m"}),
        ("pull", {"repoid": "m", "clone_uri": wrong}),
        ("fork_repo", {"repoid": "m", "fork_name": "f"}),
        ("get_user", {"userid": "bob"}),
        ("get_users", {}),
    ]
    http_remote_die = [("pull", {"repoid": "m"})]
    for method, args in calls:
        answers.append(rpc(method, **args))
    http_remote.behaviour = "die"
    upstream.commit(1)
    for method, args in http_remote_die:
        answers.append(rpc(method, **args))
    answers.append(rpc("get_repo", key=bob.key, repoid="m"))
    answers.append(rpc("get_repo", key=admin_key + "x", repoid="m"))
    answers.append(rpc("get_repo", key=bob.key[:-1], repoid="m"))
    text = json.dumps(answers) + caplog.text
    for record in caplog.records:
        text += repr(record.args) + str(record.exc_info)
    for secret in (PASSWORD, "s3%63r3t", admin_key, bob.key, admin_key[8:], bob.key[8:-1]):
        assert secret not in text
    assert ok(answers[6])["clone_uri"] == http_remote.url("up", "bob", "***")
