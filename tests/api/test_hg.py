"""Mercurial repositories through the API, on real Mercurial: ``hg serve`` on loopback."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from rpcserver.core.config import Config
from rpcserver.db.database import Database
from tests import hgremotes
from tests.answers import err, ok
from tests.conftest import Rpc
from tests.gitremotes import Blackhole, api_caller, free_port, leftovers
from tests.hgremotes import HgServe, HgUpstream, hg, hg_snapshot

hg_upstream = hgremotes.hg_upstream
hg_served = hgremotes.hg_served


@pytest.fixture
def config(config: Config) -> Config:
    return dataclasses.replace(config, clone_uri_allow_private_hosts=True)


def repo_dir(config: Config, name: str) -> Path:
    return Path(config.repos_root) / name


@pytest.fixture
def mirror(rpc: Rpc, hg_served: HgServe) -> str:
    ok(rpc("create_repo", repo_name="mirror", repo_type="hg", clone_uri=hg_served.url))
    return "mirror"


def test_create_empty(rpc: Rpc, config: Config) -> None:
    ok(rpc("create_repo", repo_name="empty", repo_type="hg"))
    repo = ok(rpc("get_repo", repoid="empty", with_revision_names=True))
    assert repo["repo_type"] == "hg"
    assert (repo["tags"], repo["branches"], repo["bookmarks"]) == ({}, {}, {})
    assert (repo_dir(config, "empty") / ".hg" / "requires").is_file()
    assert [r["repo_type"] for r in ok(rpc("get_repos"))] == ["hg"]
    ok(rpc("create_repo", repo_name="plain"))
    assert ok(rpc("get_repo", repoid="plain"))["repo_type"] == "git"  # the default


def test_clone_and_read(rpc: Rpc, config: Config, hg_upstream: HgUpstream,
                        mirror: str) -> None:
    nodes = [hg_upstream.node(str(i)) for i in range(4)]  # 3 changesets and the tag's
    repo = ok(rpc("get_repo", repoid=mirror, with_revision_names=True))
    assert repo["branches"] == {"default": nodes[3]}
    assert repo["tags"] == {"v1": nodes[2], "tip": nodes[3]}  # Kallithea lists tip
    assert repo["bookmarks"] == {"mark": nodes[1]}
    changesets = ok(rpc("get_changesets", repoid=mirror))
    assert [(c["revision"], c["raw_id"]) for c in changesets] == list(enumerate(nodes))
    assert repo["last_changeset"] == changesets[-1]
    assert changesets[0]["author"] == "A U Thor <author@example.com>"
    assert changesets[0]["message"] == "change 1\n\nbody of commit 1"
    one = ok(rpc("get_changeset", repoid=mirror, raw_id=nodes[0][:12]))
    assert one["raw_id"] == nodes[0]
    assert one["added"] == ["file.txt"]
    assert ok(rpc("get_changeset", repoid=mirror, raw_id="1"))["changed"] == ["file.txt"]
    assert ok(rpc("get_changeset", repoid=mirror, raw_id="mark"))["raw_id"] == nodes[1]
    assert ok(rpc("get_changeset", repoid=mirror, raw_id="tip"))["added"] == [".hgtags"]
    nodes_at_tip = ok(rpc("get_repo_nodes", repoid=mirror, revision="tip", root_path="/"))
    assert {n["name"] for n in nodes_at_tip} == {".hgtags", "file.txt"}
    assert not (repo_dir(config, mirror) / "file.txt").exists()  # no working files
    assert not (repo_dir(config, mirror) / ".hg" / "hgrc").exists()  # no [paths] kept
    assert leftovers(config.repos_root) == []


def test_pull_brings_new_changesets_branches_and_bookmarks(
        rpc: Rpc, hg_upstream: HgUpstream, mirror: str) -> None:
    new = hg_upstream.commit(2, prefix="upstream")
    feature = hg_upstream.commit(1, branch="feature")
    hg_upstream.bookmark("later", new[0])
    assert ok(rpc("pull", repoid=mirror)) == {"msg": f"Pulled from `{mirror}`",
                                              "repository": mirror}
    changesets = ok(rpc("get_changesets", repoid=mirror))
    assert [c["raw_id"] for c in changesets[-3:]] == [*new, *feature]
    repo = ok(rpc("get_repo", repoid=mirror, with_revision_names=True))
    assert repo["branches"] == {"default": new[-1], "feature": feature[0]}
    assert set(repo["bookmarks"]) == {"mark", "later"}
    assert repo["last_changeset"]["raw_id"] == feature[0]
    on_feature = ok(rpc("get_changesets", repoid=mirror, branch_name="feature"))
    assert [c["raw_id"] for c in on_feature] == feature
    removed = hg_upstream.path / "file.txt"
    hg("remove", "--quiet", str(removed), repo=hg_upstream.path)
    hg("commit", "-m", "gone", "-d", "1704080000 0", repo=hg_upstream.path)
    ok(rpc("pull", repoid=mirror))
    assert ok(rpc("get_changeset", repoid=mirror, raw_id="tip"))["removed"] == ["file.txt"]


def test_fork_rename_move_delete_on_disk(rpc: Rpc, config: Config, hg_upstream: HgUpstream,
                                         mirror: str) -> None:
    ok(rpc("fork_repo", repoid=mirror, fork_name="fork"))
    fork = repo_dir(config, "fork")
    assert hg("log", "-r", "tip", "-T", "{node}", repo=fork) == hg_upstream.node("tip")
    new = hg_upstream.commit(1)
    ok(rpc("pull", repoid=mirror))
    ok(rpc("pull", repoid="fork"))  # a fork pulls from its parent
    assert ok(rpc("get_repo", repoid="fork"))["last_changeset"]["raw_id"] == new[0]
    ok(rpc("update_repo", repoid="fork", name="renamed"))
    assert not fork.exists() and (repo_dir(config, "renamed") / ".hg").is_dir()
    ok(rpc("create_repo_group", group_name="g"))
    ok(rpc("update_repo", repoid="renamed", group="g"))
    assert (repo_dir(config, "g/renamed") / ".hg").is_dir()
    ok(rpc("delete_repo", repoid="g/renamed"))
    assert not repo_dir(config, "g/renamed").exists()
    assert leftovers(config.repos_root) == []


@pytest.mark.parametrize(("uri", "reason"), [
    ("git://127.0.0.1/up", "scheme `git` is not allowed for hg repositories (use http, https "
                           "or ssh)"),
    ("127.0.0.1:up", "hg takes ssh URLs as `ssh://host/path`, not `host:path`"),
    ("ssh://-oProxyCommand=touch%20/tmp/pwned/x", "host must not start with `-`"),
    ("--config=hooks.pre-pull=touch /tmp/pwned", "must not start with `-`"),
    ("-R", "must not start with `-`"),
    ("/srv/repo", "local paths are not allowed (see clone_uri_allow_local_paths)"),
])
def test_refused_clone_uris(rpc: Rpc, config: Config, mirror: str, uri: str,
                            reason: str) -> None:
    before = hg_snapshot(repo_dir(config, mirror))
    assert err(rpc("pull", repoid=mirror, clone_uri=uri)) == \
        f"Invalid `clone_uri` arg in JSON DATA: {reason}"
    assert err(rpc("create_repo", repo_name="new", repo_type="hg", clone_uri=uri)) == \
        f"Invalid `clone_uri` arg in JSON DATA: {reason}"
    assert hg_snapshot(repo_dir(config, mirror)) == before


@pytest.mark.parametrize("name", ["--config", "-R", "--debugger"])
def test_option_like_names_refused(rpc: Rpc, name: str) -> None:
    assert "repo_name" in err(rpc("create_repo", repo_name=name, repo_type="hg"))


def test_failures_leave_the_repository_unchanged(config: Config, db: Database, rpc: Rpc,
                                                 admin_key: str, hg_upstream: HgUpstream,
                                                 hg_served: HgServe, mirror: str) -> None:
    hg_upstream.commit(3)
    before = hg_snapshot(repo_dir(config, mirror))
    cache = ok(rpc("get_repo", repoid=mirror))["last_changeset"]
    unable = f"Unable to pull changes from `{mirror}`"
    closed = f"http://127.0.0.1:{free_port()}/"  # nothing listens there
    assert err(rpc("pull", repoid=mirror, clone_uri=closed)) == unable
    hole = Blackhole()
    try:
        quick = api_caller(dataclasses.replace(config, git_timeout=2), db, admin_key)
        started = time.monotonic()
        assert err(quick("pull", repoid=mirror,
                         clone_uri=f"http://127.0.0.1:{hole.port}/")) == unable
        assert time.monotonic() - started < 10
    finally:
        hole.stop()
    shutil.rmtree(hg_upstream.path)  # the upstream is deleted
    assert err(rpc("pull", repoid=mirror)) == unable
    assert hg_snapshot(repo_dir(config, mirror)) == before
    assert ok(rpc("get_repo", repoid=mirror))["last_changeset"] == cache
    assert leftovers(config.repos_root) == []


def test_an_abandoned_transaction_is_recovered_before_the_next_pull(
        rpc: Rpc, config: Config, hg_upstream: HgUpstream, mirror: str) -> None:
    """hg killed with -9 inside its transaction (here by a hook of the test's own hg) leaves a
    journal; the next pull plays it back first and then pulls."""
    new = hg_upstream.commit(2)
    path = repo_dir(config, mirror)
    env = {**hgremotes.hg_env(), "HGRCSKIPREPO": "1"}
    killed = subprocess.run([hgremotes.HG, "-R", str(path), "--config",
                             "hooks.pretxnchangegroup=kill -9 $PPID", "pull", "--quiet",
                             str(hg_upstream.path)], env=env, capture_output=True)
    assert killed.returncode != 0
    assert (path / ".hg" / "store" / "journal").exists()
    ok(rpc("pull", repoid=mirror))
    assert not (path / ".hg" / "store" / "journal").exists()
    assert ok(rpc("get_repo", repoid=mirror))["last_changeset"]["raw_id"] == new[-1]
    assert hg("verify", "--quiet", repo=path) == ""


def test_a_repositorys_own_hgrc_never_takes_effect(rpc: Rpc, config: Config, db: Database,
                                                   admin_key: str, hg_upstream: HgUpstream,
                                                   tmp_path: Path) -> None:
    """Hooks, extensions and [paths] of an adopted repository's .hg/hgrc, and of a local
    source's, are not read."""
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.py"
    evil.write_text(f"open({str(marker)!r}, 'w').close()\n")
    hgrc = (f"[hooks]\npre-log = touch {marker}\npreoutgoing = touch {marker}\n"
            f"pretxnchangegroup = touch {marker}\nprechangegroup = touch {marker}\n"
            f"[extensions]\nevil = {evil}\n[paths]\ndefault = http://127.0.0.1:1/\n")
    found = repo_dir(config, "found")
    subprocess.run([hgremotes.HG, "clone", "--noupdate", "--quiet", str(hg_upstream.path),
                    str(found)], env=hgremotes.hg_env(), check=True)
    (found / ".hg" / "hgrc").write_text(hgrc)
    hg_upstream.commit(1)  # before its hgrc: the test's own hg would read it
    (hg_upstream.path / ".hg" / "hgrc").write_text(hgrc)
    assert ok(rpc("rescan_repos")) == {"added": ["found"], "removed": []}
    assert ok(rpc("get_repo", repoid="found"))["repo_type"] == "hg"
    ok(rpc("get_changesets", repoid="found"))
    local = api_caller(dataclasses.replace(config, clone_uri_allow_local_paths=True), db,
                       admin_key)
    ok(local("pull", repoid="found", clone_uri=str(hg_upstream.path)))
    ok(rpc("fork_repo", repoid="found", fork_name="fork"))
    ok(rpc("invalidate_cache", repoid="found"))
    assert not marker.exists()


def test_concurrent_pulls_of_one_repository_serialize(config: Config, db: Database,
                                                      admin_key: str, rpc: Rpc,
                                                      hg_upstream: HgUpstream,
                                                      mirror: str) -> None:
    hg_upstream.commit(2)
    wide = dataclasses.replace(config, max_fetches_per_user=3)
    answers: list[dict[str, Any]] = []
    threads = [threading.Thread(target=lambda: answers.append(
        api_caller(wide, db, admin_key)("pull", repoid=mirror))) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [a["error"] for a in answers] == [None] * 3
    assert ok(rpc("get_repo", repoid=mirror))["last_changeset"]["raw_id"] == \
        hg_upstream.node("tip")
    assert hg("verify", "--quiet", repo=repo_dir(config, mirror)) == ""


def test_rescan_and_server_info(rpc: Rpc, config: Config) -> None:
    subprocess.run([hgremotes.HG, "init", str(repo_dir(config, "loose"))],
                   env=hgremotes.hg_env(), check=True)
    assert ok(rpc("rescan_repos")) == {"added": ["loose"], "removed": []}
    assert ok(rpc("get_repo", repoid="loose"))["repo_type"] == "hg"
    assert os.environ.get("HGRCSKIPREPO") is None


class Redirector:
    """A loopback HTTP server answering every request with a redirect to ``target`` (the
    test's own ``hg serve``), counting what it was asked."""

    def __init__(self, target: str) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.asked = 0
        redirector = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                redirector.asked += 1
                self.send_response(302)
                self.send_header("Location", target + self.path.lstrip("/"))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("where", ["another host", "another port", "the same host"])
def test_redirects_are_not_followed(rpc: Rpc, config: Config, hg_upstream: HgUpstream,
                                    hg_served: HgServe, mirror: str, where: str) -> None:
    """As git (http.followRedirects=false): a remote that redirects, even to a repository hg
    could pull, is not followed, so it cannot send hg to an address the check never saw."""
    hg_upstream.commit(2)
    before = hg_snapshot(repo_dir(config, mirror))
    port = hg_served.url.rstrip("/").rsplit(":", 1)[1]
    target = {"another host": f"http://localhost:{port}/",
              "another port": hg_served.url.rstrip("/") + "/",
              "the same host": "/again/"}[where]
    redirector = Redirector(target)
    if where == "the same host":
        target = redirector.url + "again/"
    try:
        answer = rpc("pull", repoid=mirror, clone_uri=redirector.url)
        assert err(answer) == f"Unable to pull changes from `{mirror}`"
        assert redirector.asked >= 1
    finally:
        redirector.stop()
    assert hg_snapshot(repo_dir(config, mirror)) == before
