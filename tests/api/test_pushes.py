"""Pushes as the server sees them (``domain.pushes``), with real ``git push`` into
repositories made through the API: the caller's rules, ``last_changeset`` after the push,
the push log, the repository lock shared with pulls, renames and deletes; and the other
routes, ``rpcserver refresh-repo`` and ``rescan_repos``."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from rpcserver.admin.cli import main
from rpcserver.core.config import Config
from rpcserver.db.database import Database
from rpcserver.db.models import User
from rpcserver.domain import rows
from rpcserver.domain.access import level_on
from rpcserver.domain.context import Actor
from rpcserver.domain.grants import REPO
from rpcserver.domain.pushes import (
    RepositoryBusy,
    RepositoryGone,
    after_push,
    confirm_repository,
    push_lock,
    push_rules,
)
from rpcserver.domain.repositories import store_for
from rpcserver.vcs.git.hooks import PushRules, RefUpdate, read_record
from tests.answers import err, ok
from tests.conftest import ApiUser, Rpc
from tests.gitremotes import git
from tests.pushing import ZERO, Pusher


def actor(db: Database, username: str) -> Actor:
    with db.transaction(write=False) as session:
        user = session.scalars(select(User).where(User.username == username)).one()
        return Actor.of(user)


def rules_for(config: Config, db: Database, username: str, repo_id: int) -> PushRules:
    caller = actor(db, username)
    with db.reading() as conn:
        level = level_on(conn, caller, REPO, rows.by_id(conn, REPO, repo_id))
    return push_rules(config, caller, level)


@pytest.fixture
def repo(rpc: Rpc) -> tuple[int, str]:
    """An empty repository ``p`` made by create_repo (default branch ``master``)."""
    ok(rpc("create_repo", repo_name="p"))
    return ok(rpc("get_repo", repoid="p"))["repo_id"], "p"


@pytest.fixture
def pusher(config: Config, repo: tuple[int, str], tmp_path: Path) -> Pusher:
    return Pusher(store_for(config), store_for(config).path(repo[1]), tmp_path,
                  branch="master")


def test_after_push_shows_the_new_commit_and_logs_the_push(
        rpc: Rpc, config: Config, db: Database, repo: tuple[int, str], pusher: Pusher,
        make_user: Callable[..., ApiUser], admin_key: str,
        caplog: pytest.LogCaptureFixture) -> None:
    repo_id, name = repo
    alice = make_user("alice")
    ok(rpc("grant_user_permission", repoid=name, userid="alice", perm="repository.write"))
    assert ok(rpc("get_repo", repoid=name))["last_changeset"]["raw_id"] == ZERO
    new = pusher.commit()
    caplog.set_level(logging.INFO, logger="rpcserver.push")
    with push_lock(config, repo_id):
        confirm_repository(db, repo_id, name)
        done = pusher.push(rules_for(config, db, "alice", repo_id), "master")
        assert done.returncode == 0, done.stderr
        updates = read_record(pusher.record)
        assert updates == [RefUpdate("refs/heads/master", ZERO, new)]
        after_push(config, db, repo_id, updates, actor(db, "alice"))
    found = ok(rpc("get_repo", repoid=name))
    assert found["last_changeset"]["raw_id"] == new
    assert found["last_changeset"]["revision"] == 0

    [line] = [r for r in caplog.records if r.name == "rpcserver.push"]
    assert line.levelno == logging.INFO
    assert line.getMessage() == \
        f"push to p by alice: refs/heads/master {ZERO[:12]}..{new[:12]}"
    assert line.push == {  # type: ignore[attr-defined]
        "caller": "alice", "caller_id": alice.id, "repository": "p", "repo_id": repo_id,
        "updates": ({"ref": "refs/heads/master", "old": ZERO, "new": new},)}
    assert alice.key not in caplog.text and admin_key not in caplog.text


def test_the_rules_follow_the_callers_level(rpc: Rpc, config: Config, db: Database,
                                            repo: tuple[int, str], pusher: Pusher,
                                            make_user: Callable[..., ApiUser]) -> None:
    repo_id, name = repo
    make_user("alice")
    make_user("bob")
    ok(rpc("grant_user_permission", repoid=name, userid="alice", perm="repository.write"))
    ok(rpc("grant_user_permission", repoid=name, userid="bob", perm="repository.admin"))
    alice = rules_for(config, db, "alice", repo_id)
    assert alice == PushRules(may_rewrite_default=False, max_push_bytes=config.max_push_bytes,
                              caller="alice")
    assert rules_for(config, db, "bob", repo_id).may_rewrite_default
    assert rules_for(config, db, "admin", repo_id).may_rewrite_default

    first = pusher.commit()
    assert pusher.push(alice, "master").returncode == 0
    pusher.commit()
    assert pusher.push(alice, "master").returncode == 0
    pusher.git("reset", "--quiet", "--hard", first)
    rewritten = pusher.commit(b"rewritten\n")
    done = pusher.push(alice, "+master")
    assert "refusing to rewrite the default branch refs/heads/master" in done.stderr
    assert pusher.push(rules_for(config, db, "bob", repo_id), "+master").returncode == 0
    assert pusher.refs()["refs/heads/master"] == rewritten


def test_a_push_waits_for_the_repository_lock(config: Config, db: Database,
                                             repo: tuple[int, str], pusher: Pusher) -> None:
    """As a pull holds it: the push goes ahead once it is free, or is refused cleanly when
    it stays taken."""
    repo_id, _name = repo
    lock = store_for(config).lock(repo_id)
    lock.acquire(0)
    with pytest.raises(RepositoryBusy) as refused, push_lock(config, repo_id, timeout=0.2):
        pytest.fail("the lock was held")
    assert refused.value.text == \
        "repository is busy (being pulled, renamed or deleted), try again"
    threading.Timer(0.5, lock.release).start()
    started = time.monotonic()
    new = pusher.commit()
    with push_lock(config, repo_id, timeout=10):
        waited = time.monotonic() - started
        assert pusher.push(PushRules(False, 0, "alice"), "master").returncode == 0
        after_push(config, db, repo_id, read_record(pusher.record), "alice")
    assert waited >= 0.4
    assert git("rev-parse", "master", git_dir=pusher.bare).strip() == new


def test_rename_and_delete_refuse_while_a_push_runs(rpc: Rpc, config: Config, db: Database,
                                                   repo: tuple[int, str]) -> None:
    """They take the same lock, without waiting: the push is not moved or deleted under
    git's feet."""
    repo_id, name = repo
    with push_lock(config, repo_id):
        assert err(rpc("update_repo", repoid=name, name="q")) == "failed to update repo `p`"
        assert err(rpc("delete_repo", repoid=name)) == "failed to delete repository `p`"
    ok(rpc("update_repo", repoid=name, name="q"))
    with pytest.raises(RepositoryGone):
        confirm_repository(db, repo_id, name)  # a push that waited for the rename
    confirm_repository(db, repo_id, "q")
    ok(rpc("delete_repo", repoid="q"))
    with pytest.raises(RepositoryGone):
        confirm_repository(db, repo_id, "q")
    assert after_push(config, db, repo_id, [], "alice") is None


# -- pushes made around the server ---------------------------------------------------------


def _push_around(pusher: Pusher) -> str:
    """A push straight into the store, with plain git: no rules, no hooks of ours."""
    new = pusher.commit()
    git("push", "--quiet", str(pusher.bare), "master", git_dir=pusher.work / ".git")
    return new


def test_refresh_repo_reads_a_push_made_around_the_server(
        rpc: Rpc, config: Config, repo: tuple[int, str], pusher: Pusher) -> None:
    new = _push_around(pusher)
    assert ok(rpc("get_repo", repoid="p"))["last_changeset"]["raw_id"] == ZERO
    done = CliRunner().invoke(main, ["refresh-repo", "p"], env=_env(config))
    assert done.exit_code == 0, done.output
    assert done.output == "Cache for repository `p` was invalidated\n"
    assert ok(rpc("get_repo", repoid="p"))["last_changeset"]["raw_id"] == new
    done = CliRunner().invoke(main, ["refresh-repo", "nope"], env=_env(config))
    assert done.exit_code == 1
    assert "repository `nope` does not exist" in done.output


def test_rescan_refreshes_repositories_changed_on_disk(
        rpc: Rpc, config: Config, repo: tuple[int, str], pusher: Pusher,
        caplog: pytest.LogCaptureFixture) -> None:
    ok(rpc("create_repo", repo_name="quiet"))
    quiet = ok(rpc("get_repo", repoid="quiet"))["last_changeset"]
    new = _push_around(pusher)
    caplog.set_level(logging.INFO, logger="rpcserver.api.pull")
    assert ok(rpc("rescan_repos")) == {"added": [], "removed": []}
    assert "refreshed ['p']" in caplog.text
    assert ok(rpc("get_repo", repoid="p"))["last_changeset"]["raw_id"] == new
    assert ok(rpc("get_repo", repoid="quiet"))["last_changeset"] == quiet


def _env(config: Config) -> dict[str, str]:
    return {"RPCSERVER_DATABASE_URL": config.database_url,
            "RPCSERVER_REPOS_ROOT": config.repos_root,
            "RPCSERVER_SECRET_KEY_FILE": config.secret_key_file}
