"""A remote chooses its branch and tag names: names that look like git options reach git only
as full ref names, and work like any other name."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from rpcserver.core.config import Config
from tests import gitremotes
from tests.conftest import Rpc
from tests.gitremotes import GitDaemon, Upstream, git, refs_of
from tests.security.conftest import err, ok

remotes = gitremotes.remotes
upstream = gitremotes.upstream
daemon = gitremotes.daemon


@pytest.fixture
def config(config: Config) -> Config:
    return dataclasses.replace(config, clone_uri_allow_private_hosts=True)


def test_option_like_branch_and_tag_names(rpc: Rpc, config: Config, upstream: Upstream,
                                          daemon: GitDaemon, tmp_path: Path) -> None:
    marker = tmp_path / "written"
    master = upstream.ref("master")
    assert master is not None
    for ref in ("refs/heads/--all", f"refs/heads/--output={marker}", "refs/heads/-n0",
                "refs/tags/--help", "refs/heads/HEAD"):
        git("update-ref", ref, master, git_dir=upstream.path)
    side = upstream.commit(1, branch="--orphan")[0]
    ok(rpc("create_repo", repo_name="m", clone_uri=daemon.url("up")))
    repo = ok(rpc("get_repo", repoid="m", with_revision_names=True))
    assert set(repo["branches"]) == {"master", "--all", f"--output={marker}", "-n0", "HEAD",
                                     "--orphan"}
    assert set(repo["tags"]) == {"v1", "--help"}
    assert [c["raw_id"] for c in ok(rpc("get_changesets", repoid="m", branch_name="--all"))] \
        == [c["raw_id"] for c in ok(rpc("get_changesets", repoid="m", branch_name="master"))]
    assert ok(rpc("get_changeset", repoid="m", raw_id="--orphan"))["raw_id"] == side
    assert ok(rpc("get_changeset", repoid="m", raw_id="--help"))["raw_id"] == master
    assert ok(rpc("get_repo_nodes", repoid="m", revision=f"--output={marker}",
                  root_path="")) == [{"name": "master.txt", "type": "file"}]
    assert err(rpc("get_changesets", repoid="m", branch_name="--not-there")) == \
        "branch `--not-there` does not exist"
    # The remote drops them: the pull mirrors that.
    for ref in ("refs/heads/--all", f"refs/heads/--output={marker}", "refs/tags/--help"):
        git("update-ref", "-d", ref, git_dir=upstream.path)
    ok(rpc("pull", repoid="m"))
    refs = refs_of(Path(config.repos_root) / "m")
    assert "refs/heads/--all" not in refs and "refs/tags/--help" not in refs
    assert refs["refs/heads/-n0"] == master
    assert not marker.exists()
