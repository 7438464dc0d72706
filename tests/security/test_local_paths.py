"""``clone_uri_allow_local_paths`` lets the server clone from its own disk: that is for admins
(mirrors of repositories already on the machine), never a way for a user to read another
user's private repository or any other git repository the server's account can read."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest

from rpcserver.core.config import Config
from tests import gitremotes
from tests.conftest import ApiUser, Rpc
from tests.gitremotes import Upstream, on_disk
from tests.security.conftest import err, ok

remotes = gitremotes.remotes
upstream = gitremotes.upstream

REFUSED = ("Invalid `clone_uri` arg in JSON DATA: local paths are not allowed (see "
           "clone_uri_allow_local_paths)")


@pytest.fixture
def config(config: Config) -> Config:
    return dataclasses.replace(config, clone_uri_allow_local_paths=True)


def test_local_paths_are_for_admins_only(rpc: Rpc, config: Config, upstream: Upstream,
                                         make_user: Callable[..., ApiUser]) -> None:
    bob = make_user("bob")
    ok(rpc("create_repo", repo_name="secret", private=True, clone_uri=str(upstream.path)))
    secret = Path(config.repos_root) / "secret"
    for uri in (str(secret), f"file://{secret}", str(upstream.path)):
        assert err(rpc("create_repo", repo_name="stolen", clone_uri=uri, key=bob.key)) in (
            REFUSED, REFUSED.replace("local paths", "`file://` URLs"))
    ok(rpc("create_repo", repo_name="bobs", key=bob.key))
    assert err(rpc("update_repo", repoid="bobs", clone_uri=str(secret), key=bob.key)) == \
        REFUSED
    assert ok(rpc("get_repo", repoid="bobs", key=bob.key))["clone_uri"] is None
    assert on_disk(config.repos_root) == ["bobs", "secret"]
    # An admin may still mirror from the local disk.
    ok(rpc("update_repo", repoid="bobs", clone_uri=str(upstream.path)))
    ok(rpc("pull", repoid="bobs"))
    assert ok(rpc("get_repo", repoid="bobs"))["last_changeset"]["raw_id"] == \
        upstream.ref("master")
