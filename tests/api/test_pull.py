"""pull over git:// and http:// from real remotes on loopback, its failures, its lock; also
rescan_repos and invalidate_cache."""

from __future__ import annotations

import dataclasses
import json
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import Client

from rpcserver.core.config import Config
from rpcserver.db.database import Database
from tests import gitremotes
from tests.answers import err, ok
from tests.conftest import ApiUser, Rpc
from tests.gitremotes import (
    GitDaemon,
    SmartHttp,
    Upstream,
    api_caller,
    free_port,
    git,
    leftovers,
    on_disk,
    refs_of,
    running,
    snapshot,
)

#: Shared fixtures (real remotes on loopback).
remotes = gitremotes.remotes
upstream = gitremotes.upstream
daemon = gitremotes.daemon
http_remote = gitremotes.http_remote


@pytest.fixture
def config(config: Config) -> Config:
    return dataclasses.replace(config, clone_uri_allow_private_hosts=True)


def caller(db: Database, config: Config, key: str) -> Callable[..., dict[str, Any]]:
    return api_caller(config, db, key)


def repo_dir(config: Config, name: str) -> Path:
    return Path(config.repos_root) / name


@pytest.fixture
def mirror(rpc: Rpc, upstream: Upstream, daemon: GitDaemon) -> str:
    ok(rpc("create_repo", repo_name="mirror", clone_uri=daemon.url("up")))
    return "mirror"


# -- pulling -------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["git", "http"])
def test_pull_brings_new_commits(rpc: Rpc, config: Config, upstream: Upstream,
                                 daemon: GitDaemon, http_remote: SmartHttp,
                                 transport: str) -> None:
    url = daemon.url("up") if transport == "git" else http_remote.url("up", "bob", "s3cr3t")
    ok(rpc("create_repo", repo_name="m", clone_uri=url))
    new = upstream.commit(3, prefix="upstream")
    upstream.tag("v2")
    git("branch", "feature", "master~1", git_dir=upstream.path)
    assert ok(rpc("pull", repoid="m")) == {"msg": "Pulled from `m`", "repository": "m"}
    changesets = ok(rpc("get_changesets", repoid="m"))
    assert [c["raw_id"] for c in changesets[-3:]] == new
    assert changesets[-1]["message"].startswith("upstream 6")
    repo = ok(rpc("get_repo", repoid="m", with_revision_names=True))
    assert repo["last_changeset"] == changesets[-1]
    assert set(repo["tags"]) == {"v1", "v2"}
    assert repo["branches"] == {"master": new[-1], "feature": new[-2]}
    assert refs_of(repo_dir(config, "m"))["refs/heads/master"] == new[-1]
    assert leftovers(config.repos_root) == []


def test_pull_prunes_and_follows_forced_updates(rpc: Rpc, config: Config, upstream: Upstream,
                                                mirror: str) -> None:
    git("branch", "gone", git_dir=upstream.path)
    ok(rpc("pull", repoid=mirror))
    assert "refs/heads/gone" in refs_of(repo_dir(config, mirror))
    git("branch", "-D", "gone", git_dir=upstream.path)
    git("update-ref", "refs/heads/master", "master~2", git_dir=upstream.path)  # rewritten
    ok(rpc("pull", repoid=mirror))
    refs = refs_of(repo_dir(config, mirror))
    assert "refs/heads/gone" not in refs
    assert refs["refs/heads/master"] == upstream.ref("master")
    assert ok(rpc("get_repo", repoid=mirror))["last_changeset"]["raw_id"] == \
        upstream.ref("refs/tags/v1^{}")  # the tag keeps the newer commit reachable


def test_pull_from_a_clone_uri_argument_is_for_this_pull_only(
        rpc: Rpc, config: Config, remotes: Path, upstream: Upstream, daemon: GitDaemon) -> None:
    ok(rpc("create_repo", repo_name="plain"))
    assert err(rpc("pull", repoid="plain")) == "Unable to pull changes from `plain`"
    ok(rpc("pull", repoid="plain", clone_uri=daemon.url("up")))
    assert ok(rpc("get_repo", repoid="plain"))["clone_uri"] is None
    assert ok(rpc("get_repo", repoid="plain"))["last_changeset"]["raw_id"] == \
        upstream.ref("master")


def test_a_fork_without_clone_uri_pulls_from_its_parent(rpc: Rpc, config: Config,
                                                        upstream: Upstream,
                                                        mirror: str) -> None:
    ok(rpc("fork_repo", repoid=mirror, fork_name="fork"))
    new = upstream.commit(2)
    ok(rpc("pull", repoid=mirror))
    ok(rpc("pull", repoid="fork"))
    assert ok(rpc("get_repo", repoid="fork"))["last_changeset"]["raw_id"] == new[-1]


def test_rhodecode_pull(client: Client, admin_key: str, config: Config, upstream: Upstream,
                        mirror: str) -> None:
    new = upstream.commit(1)
    body = {"api_key": admin_key, "method": "pull", "args": {"repo": mirror}}
    assert client.post("/_admin/api", json=body).get_json() == {
        "result": f"Pulled from {mirror}", "error": None}
    missing = {"api_key": admin_key, "method": "pull", "args": {"repo": "nope"}}
    assert client.post("/_admin/api", json=missing).get_json() == {
        "result": None, "error": "repository `nope` does not exist"}
    assert refs_of(repo_dir(config, mirror))["refs/heads/master"] == new[0]


def test_pull_is_for_admins(rpc: Rpc, mirror: str, make_user: Callable[..., ApiUser]) -> None:
    bob = make_user("bob")
    ok(rpc("grant_user_permission", repoid=mirror, userid="bob", perm="repository.admin"))
    assert err(rpc("pull", repoid=mirror, key=bob.key)) == "Access was denied to this resource."


# -- failures leave the repository as it was ------------------------------------------------


def test_unreachable_remote(rpc: Rpc, config: Config, upstream: Upstream, mirror: str,
                            remotes: Path) -> None:
    upstream.commit(2)
    before = snapshot(repo_dir(config, mirror))
    cache = ok(rpc("get_repo", repoid=mirror))["last_changeset"]
    port = free_port()  # nothing listens there: connection refused
    assert err(rpc("pull", repoid=mirror, clone_uri=f"git://127.0.0.1:{port}/up")) == \
        f"Unable to pull changes from `{mirror}`"
    shutil.rmtree(remotes / "up")
    assert err(rpc("pull", repoid=mirror)) == f"Unable to pull changes from `{mirror}`"
    assert snapshot(repo_dir(config, mirror)) == before
    assert ok(rpc("get_repo", repoid=mirror))["last_changeset"] == cache
    assert leftovers(config.repos_root) == []


@pytest.mark.parametrize(("uri", "reason"), [
    ("ftp://127.0.0.1/up", "scheme `ftp` is not allowed (use http, https, git or ssh)"),
    ("ext::sh -c touch% /tmp/pwned", "git transport helpers (`<transport>::<address>`) are "
                                      "not allowed"),
    ("--upload-pack=touch /tmp/pwned", "must not start with `-`"),
    ("file:///etc", "`file://` URLs are not allowed (see clone_uri_allow_local_paths)"),
    ("/srv/repo", "local paths are not allowed (see clone_uri_allow_local_paths)"),
])
def test_refused_clone_uris(rpc: Rpc, config: Config, mirror: str, uri: str,
                            reason: str) -> None:
    before = snapshot(repo_dir(config, mirror))
    assert err(rpc("pull", repoid=mirror, clone_uri=uri)) == \
        f"Invalid `clone_uri` arg in JSON DATA: {reason}"
    assert snapshot(repo_dir(config, mirror)) == before


def test_the_stored_clone_uri_is_checked_again_at_pull_time(rpc: Rpc, config: Config,
                                                            db: Database, admin_key: str,
                                                            mirror: str) -> None:
    strict = caller(db, dataclasses.replace(config, clone_uri_allow_private_hosts=False),
                    admin_key)
    assert err(strict("pull", repoid=mirror)).startswith(
        "Invalid `clone_uri` arg in JSON DATA: host `127.0.0.1` is on a loopback, private or "
        "link-local network")


@pytest.mark.parametrize("behaviour", ["die", "delete", "stall"])
def test_remote_failing_mid_way(config: Config, db: Database, admin_key: str, rpc: Rpc,
                                upstream: Upstream, http_remote: SmartHttp,
                                behaviour: str) -> None:
    """The remote dies half-way through the pack, is deleted between the ref advertisement
    and the pack, or stalls past git's timeout: the repository stays exactly as it was."""
    ok(rpc("create_repo", repo_name="m", clone_uri=http_remote.url("up", "bob", "s3cr3t")))
    upstream.commit(40, files=4)
    upstream.tag("v2", message="two")
    before = snapshot(repo_dir(config, "m"))
    cache = ok(rpc("get_repo", repoid="m"))["last_changeset"]
    http_remote.behaviour = behaviour
    quick = caller(db, dataclasses.replace(config, git_timeout=2), admin_key)
    started = time.monotonic()
    assert err(quick("pull", repoid="m")) == "Unable to pull changes from `m`"
    assert time.monotonic() - started < 10
    assert snapshot(repo_dir(config, "m")) == before
    assert ok(rpc("get_repo", repoid="m"))["last_changeset"] == cache
    assert leftovers(config.repos_root) == []


def test_the_database_half_failing_undoes_the_fetch(config: Config, db: Database, rpc: Rpc,
                                                    upstream: Upstream,
                                                    http_remote: SmartHttp,
                                                    make_user: Callable[..., ApiUser]) -> None:
    """The caller is deactivated while its pull is fetching: the write transaction refuses,
    and the fetched refs and objects are taken out again."""
    other = make_user("other", admin=True)
    ok(rpc("create_repo", repo_name="m", clone_uri=http_remote.url("up", "bob", "s3cr3t")))
    upstream.commit(5)
    before = snapshot(repo_dir(config, "m"))
    http_remote.behaviour, http_remote.stall_for = "stall", 1.0
    answers: list[dict[str, Any]] = []
    pulling = threading.Thread(target=lambda: answers.append(
        caller(db, config, other.key)("pull", repoid="m")))
    pulling.start()
    time.sleep(0.3)
    ok(rpc("update_user", userid="other", active=False))
    pulling.join()
    assert answers[0]["error"] == "Invalid API key"
    assert snapshot(repo_dir(config, "m")) == before


# -- the lock ------------------------------------------------------------------------------


@pytest.fixture
def slow_remote(remotes: Path) -> Iterator[SmartHttp]:
    with running(SmartHttp(remotes)) as server:
        server.behaviour, server.stall_for = "stall", 1.0
        yield server


def test_pulls_of_one_repository_serialize_while_others_proceed(
        config: Config, db: Database, admin_key: str, rpc: Rpc, upstream: Upstream,
        daemon: GitDaemon, slow_remote: SmartHttp, remotes: Path) -> None:
    ok(rpc("create_repo", repo_name="slow", clone_uri=daemon.url("up")))
    ok(rpc("update_repo", repoid="slow", clone_uri=slow_remote.url("up")))
    other = Upstream(remotes / "other")
    other.commit(2)
    ok(rpc("create_repo", repo_name="fast", clone_uri=daemon.url("other")))
    upstream.commit(2)
    other.commit(1)
    finished: dict[str, float] = {}
    answers: dict[str, dict[str, Any]] = {}
    # Three pulls at once by one user: one more than max_fetches_per_user's default.
    wide = dataclasses.replace(config, max_fetches_per_user=3)

    def pull(label: str, name: str) -> None:
        answers[label] = caller(db, wide, admin_key)("pull", repoid=name)
        finished[label] = time.monotonic()

    threads = [threading.Thread(target=pull, args=(label, "slow")) for label in ("a", "b")]
    for thread in threads:
        thread.start()
        time.sleep(0.1)
    pull("fast", "fast")
    for thread in threads:
        thread.join()
    assert all(a["error"] is None for a in answers.values()), answers
    first, _second = sorted(finished[label] for label in ("a", "b"))
    # The other repository's pull finished while the first slow pull was still stalled ...
    assert finished["fast"] < first - 0.3
    # ... and the second pull of "slow" did not reach the remote until the first was done.
    stalled = [t for method, path, t in slow_remote.requests
               if method == "POST" and t < first - 0.5]
    assert stalled, slow_remote.requests
    during = [(method, path) for method, path, t in slow_remote.requests
              if stalled[-1] < t < first - 0.05]
    assert during == []
    assert len([r for r in slow_remote.requests if r[0] == "GET"]) == 2
    assert ok(rpc("get_repo", repoid="slow"))["last_changeset"]["raw_id"] == \
        upstream.ref("master")


def test_a_repository_being_pulled_is_not_moved_or_deleted(
        config: Config, db: Database, admin_key: str, rpc: Rpc, upstream: Upstream,
        daemon: GitDaemon, slow_remote: SmartHttp) -> None:
    ok(rpc("create_repo_group", group_name="g"))
    ok(rpc("create_repo", repo_name="g/slow", clone_uri=daemon.url("up")))
    ok(rpc("update_repo", repoid="g/slow", clone_uri=slow_remote.url("up")))
    upstream.commit(1)
    answers: list[dict[str, Any]] = []
    pulling = threading.Thread(target=lambda: answers.append(
        caller(db, config, admin_key)("pull", repoid="g/slow")))
    pulling.start()
    time.sleep(0.3)
    assert err(rpc("update_repo", repoid="g/slow", name="moved")) == \
        "failed to update repo `g/slow`"
    assert err(rpc("delete_repo", repoid="g/slow")) == "failed to delete repository `g/slow`"
    assert err(rpc("update_repo_group", repogroupid="g", group_name="h")) == \
        "failed to update repository group `g`"
    pulling.join()
    assert answers[0]["error"] is None
    assert on_disk(config.repos_root) == ["g/slow"]
    ok(rpc("update_repo_group", repogroupid="g", group_name="h"))
    ok(rpc("update_repo", repoid="h/slow", name="moved"))
    assert on_disk(config.repos_root) == ["h/moved"]


# -- rescan_repos and invalidate_cache -------------------------------------------------------


def test_rescan_adopts_repositories_found_on_disk(rpc: Rpc, config: Config,
                                                  upstream: Upstream) -> None:
    ok(rpc("create_repo", repo_name="known"))
    base = Path(config.repos_root)
    git("clone", "--bare", "--quiet", str(upstream.path), str(base / "team" / "found"))
    git("init", "--bare", "--quiet", str(base / "loose"))
    (base / "not-a-repo").mkdir()
    git("init", "--bare", "--quiet", str(base / "bad name"))
    assert ok(rpc("rescan_repos")) == {"added": ["loose", "team/found"], "removed": []}
    found = ok(rpc("get_repo", repoid="team/found"))
    assert found["last_changeset"]["raw_id"] == upstream.ref("master")
    assert found["owner"] == "admin"
    assert ok(rpc("get_repo_group", repogroupid="team"))["repositories"] == ["team/found"]
    assert ok(rpc("rescan_repos")) == {"added": [], "removed": []}
    shutil.rmtree(base / "loose")
    assert ok(rpc("rescan_repos")) == {"added": [], "removed": []}
    assert ok(rpc("rescan_repos", remove_obsolete=True)) == {"added": [], "removed": ["loose"]}
    assert err(rpc("get_repo", repoid="loose")) == "repository `loose` does not exist"


def test_invalidate_cache_rereads_disk(rpc: Rpc, config: Config, upstream: Upstream,
                                       mirror: str, make_user: Callable[..., ApiUser]) -> None:
    new = upstream.commit(1)
    git("fetch", "--quiet", str(upstream.path), "+refs/heads/*:refs/heads/*",
        git_dir=repo_dir(config, mirror))
    assert ok(rpc("get_repo", repoid=mirror))["last_changeset"]["raw_id"] != new[0]
    bob = make_user("bob")
    assert err(rpc("invalidate_cache", repoid=mirror, key=bob.key)) == \
        "Access was denied to this resource."
    ok(rpc("grant_user_permission", repoid=mirror, userid="bob", perm="repository.write"))
    assert ok(rpc("invalidate_cache", repoid=mirror, key=bob.key)) == {
        "msg": f"Cache for repository `{mirror}` was invalidated", "repository": mirror}
    assert ok(rpc("get_repo", repoid=mirror))["last_changeset"]["raw_id"] == new[0]


def test_passwords_never_reach_the_log(rpc: Rpc, upstream: Upstream, http_remote: SmartHttp,
                                       caplog: pytest.LogCaptureFixture) -> None:
    ok(rpc("create_repo", repo_name="m", clone_uri=http_remote.url("up", "bob", "s3cr3t")))
    caplog.set_level("DEBUG")
    upstream.commit(1)
    http_remote.behaviour = "die"
    assert err(rpc("pull", repoid="m")) == "Unable to pull changes from `m`"
    assert err(rpc("pull", repoid="m", clone_uri=http_remote.url("up", "bob", "wr0ng"))) == \
        "Unable to pull changes from `m`"
    text = caplog.text + json.dumps(ok(rpc("get_repos")))
    assert "s3cr3t" not in text and "wr0ng" not in text
    assert "bob:***@" in caplog.text
