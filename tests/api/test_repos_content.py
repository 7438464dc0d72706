"""get_repo_nodes, get_changesets, get_changeset against real repositories."""

from __future__ import annotations

import dataclasses
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rpcserver.core.config import Config
from tests import gitremotes
from tests.answers import err, ok
from tests.conftest import ApiUser, Rpc
from tests.gitremotes import (
    GitDaemon,
    Upstream,
    git,
)

#: Shared fixtures (real remotes on loopback).
remotes = gitremotes.remotes
daemon = gitremotes.daemon


@pytest.fixture
def config(config: Config) -> Config:
    return dataclasses.replace(config, clone_uri_allow_private_hosts=True)


@pytest.fixture
def history(remotes: Any) -> Upstream:
    """master: 4 commits (the 3rd adds 3 files in dirs, the 4th removes one); dev: 2 more
    commits off the 2nd; annotated tag v1 on master~1; commit n is n minutes after
    2024-01-01T00:00:00."""
    up = Upstream(remotes / "hist")
    up.commit(2)
    up.commit(1, files=3)
    up.tag("v1", message="first release")
    up.commit(2, branch="dev", base="master~1")
    stream = (b"commit refs/heads/master\n"
              b"author A U Thor <author@example.com> 1704067560 +0000\n"
              b"committer C O Mitter <committer@example.com> 1704067560 +0000\n"
              b"data 14\nremove a file\n"
              + f"from {up.ref('master')}\n".encode()
              + b"D dir1/file1.txt\nM 100644 inline dir2/file2.txt\ndata 4\nnew\n\n")
    git("fast-import", "--quiet", git_dir=up.path, input=stream)
    return up


@pytest.fixture
def repo(rpc: Rpc, history: Upstream, daemon: GitDaemon) -> str:
    answer = rpc("create_repo", repo_name="h", clone_uri=daemon.url("hist"))
    assert answer["error"] is None, answer["error"]
    return "h"


# -- changesets ----------------------------------------------------------------------------


def test_changesets_in_revision_order(rpc: Rpc, repo: str, history: Upstream) -> None:
    changesets = ok(rpc("get_changesets", repoid=repo))
    assert [c["revision"] for c in changesets] == [0, 1, 2, 3, 4, 5]
    assert [c["message"].split("\n")[0] for c in changesets] == [
        "change 1", "change 2", "change 3", "change 4", "change 5", "remove a file"]
    first = changesets[0]
    assert list(first) == ["short_id", "raw_id", "revision", "message", "date", "author"]
    assert first["short_id"] == first["raw_id"][:12]
    assert first["date"] == "2024-01-01T00:01:00"
    assert first["author"] == "A U Thor <author@example.com>"
    assert first["message"] == "change 1\n\nbody of commit 1\n"  # as git stores it
    tip = ok(rpc("get_repo", repoid=repo))["last_changeset"]
    assert tip == changesets[-1]
    assert tip["raw_id"] == history.ref("master")
    newest_first = ok(rpc("get_changesets", repoid=repo, reverse=True))
    assert newest_first == list(reversed(changesets))


def test_changesets_filters(rpc: Rpc, repo: str, history: Upstream) -> None:
    def revs(**args: Any) -> list[int]:
        return [c["revision"] for c in ok(rpc("get_changesets", repoid=repo, **args))]

    assert revs(max_revisions=2) == [4, 5]  # the newest two
    assert revs(max_revisions="2") == [4, 5]  # Kallithea clients send strings
    assert revs(branch_name="dev") == [0, 1, 3, 4]
    assert revs(branch_name="master") == [0, 1, 2, 5]
    assert revs(start=1, end=3) == [1, 2, 3]
    changesets = ok(rpc("get_changesets", repoid=repo))
    assert revs(start=changesets[2]["raw_id"], end=changesets[4]["short_id"]) == [2, 3, 4]
    assert revs(start="v1") == [2, 3, 4, 5]
    assert revs(start_date="2024-01-01T00:02:00", end_date="2024-01-01T00:04:00") == [1, 2, 3]
    assert revs(start_date="2024-01-01T00:02:00", branch_name="dev", max_revisions=1) == [4]
    assert err(rpc("get_changesets", repoid=repo, start=3, end=1)) == \
        "Invalid `start` arg in JSON DATA: must not come after `end`"
    assert err(rpc("get_changesets", repoid=repo, start="deadbeef")) == \
        "Changeset deadbeef does not exist"
    assert err(rpc("get_changesets", repoid=repo, branch_name="nope")) == \
        "branch `nope` does not exist"
    assert err(rpc("get_changesets", repoid=repo, start_date="yesterday")) == \
        ("Invalid `start_date` arg in JSON DATA: must be a date and time like "
         "2024-01-31T23:59:59")
    assert err(rpc("get_changesets", repoid=repo, max_revisions=0)).startswith(
        "Invalid `max_revisions` arg in JSON DATA:")
    assert err(rpc("get_changesets", repoid=repo, max_revisions=10_001)).startswith(
        "Invalid `max_revisions` arg in JSON DATA:")


def test_changesets_with_file_lists(rpc: Rpc, repo: str) -> None:
    changesets = ok(rpc("get_changesets", repoid=repo, with_file_list=True))
    files = {c["message"].split("\n")[0]: (c["added"], c["changed"], c["removed"])
             for c in changesets}
    assert files["change 1"] == (["master.txt"], [], [])
    assert files["change 2"] == ([], ["master.txt"], [])
    assert files["change 3"] == (["dir0/file0.txt", "dir1/file1.txt", "dir2/file2.txt"], [], [])
    assert files["remove a file"] == ([], ["dir2/file2.txt"], ["dir1/file1.txt"])
    assert list(changesets[0])[-3:] == ["added", "changed", "removed"]


def test_empty_repository(rpc: Rpc) -> None:
    ok(rpc("create_repo", repo_name="empty"))
    assert err(rpc("get_changesets", repoid="empty")) == "Repository is empty"
    assert err(rpc("get_changeset", repoid="empty", raw_id="tip")) == \
        "Changeset tip does not exist"
    assert err(rpc("get_repo_nodes", repoid="empty", revision="tip", root_path="")) == \
        "failed to get repo: `empty` nodes"


def test_one_changeset(rpc: Rpc, repo: str, history: Upstream) -> None:
    tip = history.ref("master")
    assert tip is not None
    changeset = ok(rpc("get_changeset", repoid=repo, raw_id=tip))
    assert changeset == {
        "raw_id": tip, "short_id": tip[:12], "revision": 5, "date": "2024-01-01T00:06:00",
        "message": "remove a file\n",
        "author": {"name": "A U Thor", "email": "author@example.com"},
        "added": [], "changed": ["dir2/file2.txt"], "removed": ["dir1/file1.txt"]}
    assert ok(rpc("get_changeset", repoid=repo, raw_id=tip[:8]))["raw_id"] == tip
    assert ok(rpc("get_changeset", repoid=repo, raw_id="dev"))["revision"] == 4
    assert ok(rpc("get_changeset", repoid=repo, raw_id="0"))["revision"] == 0
    assert ok(rpc("get_changeset", repoid=repo, raw_id="tip", with_reviews=True))["reviews"] \
        == []
    for bad in ("0" * 40, "--output=/tmp/x", "master~1", "HEAD@{1}", "99"):
        assert err(rpc("get_changeset", repoid=repo, raw_id=bad)) == \
            f"Changeset {bad} does not exist"


def test_repository_missing_on_disk(rpc: Rpc, repo: str, config: Config,
                                    caplog: pytest.LogCaptureFixture) -> None:
    """A row whose directory was removed behind the server's back: a plain answer that says
    so, not ``Internal server error`` with a traceback in the log."""
    shutil.rmtree(Path(config.repos_root) / repo)
    missing = f"repository `{repo}` is missing on disk; run rescan_repos"
    with caplog.at_level(logging.WARNING):
        assert err(rpc("get_changesets", repoid=repo)) == missing
        assert err(rpc("get_changesets", repoid=repo, start_date="2024-01-01T00:00:00")) == \
            missing
        assert err(rpc("get_changeset", repoid=repo, raw_id="tip")) == missing
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# -- nodes ---------------------------------------------------------------------------------


def test_nodes_at_a_revision(rpc: Rpc, repo: str, history: Upstream) -> None:
    def nodes(**args: Any) -> list[dict[str, str]]:
        found: list[dict[str, str]] = ok(rpc("get_repo_nodes", repoid=repo, **args))
        return found

    assert nodes(revision="tip", root_path="/") == [
        {"name": "dir0", "type": "dir"}, {"name": "dir2", "type": "dir"},
        {"name": "master.txt", "type": "file"}, {"name": "dir0/file0.txt", "type": "file"},
        {"name": "dir2/file2.txt", "type": "file"}]
    assert nodes(revision="v1", root_path="", ret_type="dirs") == [
        {"name": "dir0", "type": "dir"}, {"name": "dir1", "type": "dir"},
        {"name": "dir2", "type": "dir"}]
    assert nodes(revision="v1", root_path="dir1/", ret_type="files") == [
        {"name": "dir1/file1.txt", "type": "file"}]
    assert nodes(revision="0", root_path="") == [{"name": "master.txt", "type": "file"}]
    assert err(rpc("get_repo_nodes", repoid=repo, revision="tip", root_path="",
                   ret_type="bogus")) == "ret_type must be one of all,dirs,files"


@pytest.mark.parametrize(("revision", "root_path"), [
    ("tip", "dir1"), ("tip", "master.txt"), ("nope", ""), ("tip", "../.."),
    ("tip", "dir0/../.."), ("--output=/tmp/x", ""), ("tip", "a\nb"),
])
def test_nodes_failures(rpc: Rpc, repo: str, revision: str, root_path: str) -> None:
    assert err(rpc("get_repo_nodes", repoid=repo, revision=revision, root_path=root_path)) \
        == "failed to get repo: `h` nodes"


def test_reading_needs_read(rpc: Rpc, repo: str, make_user: Callable[..., ApiUser]) -> None:
    bob = make_user("bob")
    ok(rpc("get_changesets", repoid=repo, key=bob.key))  # default reads
    ok(rpc("update_repo", repoid=repo, private=True))
    for method, args in (("get_changesets", {}), ("get_changeset", {"raw_id": "tip"}),
                         ("get_repo_nodes", {"revision": "tip", "root_path": ""})):
        assert err(rpc(method, repoid=repo, key=bob.key, **args)) == \
            "repository `h` does not exist"
