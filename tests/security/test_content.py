"""Reading repositories whose content came from a hostile remote."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from rpcserver.config import Config
from tests import gitremotes
from tests.conftest import Rpc
from tests.gitremotes import GitDaemon, git
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
