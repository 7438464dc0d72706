"""Reading repositories whose content came from a hostile remote."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from rpcserver.core.config import Config
from tests import gitremotes
from tests.conftest import Rpc
from tests.gitremotes import GitDaemon, git, wide_commit
from tests.security.conftest import err, ok

remotes = gitremotes.remotes
daemon = gitremotes.daemon


@pytest.fixture
def config(config: Config) -> Config:
    return dataclasses.replace(config, clone_uri_allow_private_hosts=True)


def test_a_very_deep_tree_is_listed_not_an_internal_error(rpc: Rpc, remotes: Path,
                                                          daemon: GitDaemon) -> None:
    # Anyone who may create a repository may clone it from any public remote: the remote
    # decides how deep its trees are (git allows thousands of levels).
    git("init", "--bare", "--quiet", str(remotes / "deep"))
    depth = 1500
    path = "/".join(["d"] * depth) + "/f"
    stream = (b"commit refs/heads/master\ncommitter C <c@example.com> 1704067200 +0000\n"
              b"data 5\ndeep\n" + f"M 100644 inline {path}\ndata 2\nx\n\n".encode())
    git("fast-import", "--quiet", git_dir=remotes / "deep", input=stream)
    ok(rpc("create_repo", repo_name="deep", clone_uri=daemon.url("deep")))
    nodes = ok(rpc("get_repo_nodes", repoid="deep", revision="tip", root_path=""))
    assert len(nodes) == depth + 1
    assert nodes[0] == {"name": "d", "type": "dir"}
    assert nodes[-1] == {"name": path, "type": "file"}
    assert ok(rpc("get_repo_nodes", repoid="deep", revision="tip", root_path="d/d",
                  ret_type="files")) == [{"name": path, "type": "file"}]
    assert err(rpc("get_repo_nodes", repoid="deep", revision="tip",
                   root_path="d/../d")) == "failed to get repo: `deep` nodes"


def test_a_commit_of_more_files_than_an_answer_holds_is_refused_clearly(
        rpc: Rpc, remotes: Path, daemon: GitDaemon) -> None:
    # 100,001 files and three directories: one past the bound of every file list.
    git("init", "--bare", "--quiet", str(remotes / "wide"))
    commit = wide_commit(remotes / "wide", 100_001, dirs=3)
    ok(rpc("create_repo", repo_name="wide", clone_uri=daemon.url("wide")))
    assert err(rpc("get_changeset", repoid="wide", raw_id=commit)) == (
        f"Changeset {commit} changes more than 100000 files; "
        "this server does not list them in one answer")
    assert err(rpc("get_changesets", repoid="wide", with_file_list=True)) == (
        "these changesets change more than 100000 files; "
        "ask for fewer (max_revisions) or without with_file_list")
    assert [c["raw_id"] for c in ok(rpc("get_changesets", repoid="wide"))] == [commit]
    for ret_type in ("all", "files"):
        assert err(rpc("get_repo_nodes", repoid="wide", revision="tip", root_path="",
                       ret_type=ret_type)) == "failed to get repo: `wide` nodes"
    # The directories alone are few: listed.
    assert ok(rpc("get_repo_nodes", repoid="wide", revision="tip", root_path="",
                  ret_type="dirs")) == [{"name": f"d{i:06d}", "type": "dir"} for i in range(3)]
    assert ok(rpc("get_repo_nodes", repoid="wide", revision="tip", root_path="d000001")) == [
        {"name": "d000001/f", "type": "file"}]


def test_exactly_the_bound_is_listed(rpc: Rpc, remotes: Path, daemon: GitDaemon) -> None:
    git("init", "--bare", "--quiet", str(remotes / "full"))
    commit = wide_commit(remotes / "full", 99_999, dirs=1)
    ok(rpc("create_repo", repo_name="full", clone_uri=daemon.url("full")))
    changeset = ok(rpc("get_changeset", repoid="full", raw_id=commit))
    assert len(changeset["added"]) == 100_000
    assert len(ok(rpc("get_repo_nodes", repoid="full", revision="tip", root_path="",
                      ret_type="files"))) == 100_000
