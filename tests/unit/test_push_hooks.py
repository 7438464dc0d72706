"""The server-owned hooks with real ``git push`` to a bare repository on a local path
(``tests.pushing``): the rules, the size limit, the record, and that a repository's own hooks
never run."""

from __future__ import annotations

import os
import stat
import subprocess
import time
from pathlib import Path

import pytest

from rpcserver.vcs.git import hook
from rpcserver.vcs.git.hooks import (
    PushRules,
    RefUpdate,
    ensure_hooks,
    push_environment,
    read_record,
)
from rpcserver.vcs.store import Store
from tests.gitremotes import git, git_env
from tests.pushing import ZERO, Pusher

USER = PushRules(may_rewrite_default=False, max_push_bytes=0, caller="alice")
ADMIN = PushRules(may_rewrite_default=True, max_push_bytes=0, caller="root")


@pytest.fixture
def pusher(tmp_path: Path) -> Pusher:
    store = Store.at(str(tmp_path / "repos"))
    store.ensure()
    bare = store.path("r")
    git("init", "--bare", "--quiet", "--initial-branch=main", str(bare))
    p = Pusher(store, bare, tmp_path)
    p.commit()
    assert p.push(USER, "main").returncode == 0
    return p


def test_branches_and_tags_are_accepted_and_recorded(pusher: Pusher) -> None:
    old = pusher.refs()["refs/heads/main"]
    new = pusher.commit()
    pusher.git("tag", "v1")
    done = pusher.push(USER, "main", "v1", "main:refs/heads/topic")
    assert done.returncode == 0, done.stderr
    assert sorted(read_record(pusher.record), key=lambda u: u.ref) == [
        RefUpdate("refs/heads/main", old, new), RefUpdate("refs/heads/topic", ZERO, new),
        RefUpdate("refs/tags/v1", ZERO, new)]


def test_refs_outside_heads_and_tags_are_refused(pusher: Pusher) -> None:
    before = pusher.refs()
    pusher.commit()
    for target in ("refs/notes/x", "refs/pull/1/head", "refs/for/main"):
        done = pusher.push(ADMIN, f"main:{target}")
        assert done.returncode != 0
        assert (f"refusing {target}: only branches (refs/heads/) and tags (refs/tags/) "
                "may be pushed") in done.stderr
    assert pusher.refs() == before
    assert read_record(pusher.record) == []


def test_one_refused_ref_refuses_the_whole_push(pusher: Pusher) -> None:
    before = pusher.refs()
    pusher.commit()
    assert pusher.push(USER, "main", "main:refs/meta/config").returncode != 0
    assert pusher.refs() == before


def test_default_branch_delete_and_rewrite_need_an_admin(pusher: Pusher) -> None:
    first = pusher.refs()["refs/heads/main"]
    second = pusher.commit()
    assert pusher.push(USER, "main").returncode == 0
    pusher.git("reset", "--quiet", "--hard", first)
    rewritten = pusher.commit(b"other\n")

    done = pusher.push(USER, "+main")
    assert done.returncode != 0
    assert (f"refusing to rewrite the default branch refs/heads/main (not a fast-forward "
            f"from {second[:12]} to {rewritten[:12]}): only an admin of the repository may"
            ) in done.stderr
    done = pusher.push(USER, ":main")
    assert done.returncode != 0
    assert ("refusing to delete the default branch refs/heads/main: only an admin of the "
            "repository may") in done.stderr
    assert pusher.refs()["refs/heads/main"] == second

    assert pusher.push(ADMIN, "+main").returncode == 0
    assert pusher.refs()["refs/heads/main"] == rewritten
    assert read_record(pusher.record) == [RefUpdate("refs/heads/main", second, rewritten)]
    done = pusher.push(ADMIN, ":main")
    assert done.returncode == 0, done.stderr
    assert "refs/heads/main" not in pusher.refs()
    assert read_record(pusher.record) == [RefUpdate("refs/heads/main", rewritten, ZERO)]


def test_the_default_branch_is_whatever_head_names(pusher: Pusher) -> None:
    assert pusher.push(USER, "main:refs/heads/trunk").returncode == 0
    git("symbolic-ref", "HEAD", "refs/heads/trunk", git_dir=pusher.bare)
    assert pusher.push(USER, ":trunk").returncode != 0
    assert pusher.push(USER, ":main").returncode == 0


def test_other_branches_may_be_deleted_and_forced(pusher: Pusher) -> None:
    base = pusher.refs()["refs/heads/main"]
    pusher.commit()
    assert pusher.push(USER, "HEAD:refs/heads/topic").returncode == 0
    pusher.git("reset", "--quiet", "--hard", base)
    forced = pusher.commit(b"forced\n")
    assert pusher.push(USER, "+HEAD:refs/heads/topic").returncode == 0
    assert pusher.refs()["refs/heads/topic"] == forced
    assert pusher.push(USER, ":topic").returncode == 0
    assert "refs/heads/topic" not in pusher.refs()


def test_a_repositorys_own_hooks_never_run(pusher: Pusher, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    for name in ("pre-receive", "update", "post-receive", "post-update"):
        planted = pusher.bare / "hooks" / name
        planted.write_text(f"#!/bin/sh\necho {name} >> {marker}\nexit 1\n")
        planted.chmod(0o755)
    git("config", "core.hooksPath", str(pusher.bare / "hooks"), git_dir=pusher.bare)
    pusher.commit()
    done = pusher.push(USER, "main")
    assert done.returncode == 0, done.stderr
    assert not marker.exists()


def test_a_push_over_the_size_limit_is_refused(pusher: Pusher) -> None:
    before = pusher.refs()
    pusher.commit(os.urandom(200_000))  # random: does not compress below the limit
    small = PushRules(may_rewrite_default=True, max_push_bytes=50_000, caller="alice")
    done = pusher.push(small, "main")
    assert done.returncode != 0
    assert "maximum allowed size" in done.stderr
    assert pusher.refs() == before
    assert read_record(pusher.record) == []
    assert pusher.push(USER, "main").returncode == 0


def test_existing_config_entries_are_kept(pusher: Pusher) -> None:
    pusher.commit()
    base = {"GIT_CONFIG_COUNT": "2", "GIT_CONFIG_KEY_0": "core.hooksPath",
            "GIT_CONFIG_VALUE_0": os.devnull, "GIT_CONFIG_KEY_1": "receive.denyDeletes",
            "GIT_CONFIG_VALUE_1": "true"}
    env = push_environment(pusher.store, USER, pusher.record, base=base)
    assert {k: env[k] for k in base if k != "GIT_CONFIG_COUNT"} == {
        k: v for k, v in base.items() if k != "GIT_CONFIG_COUNT"}
    assert env["GIT_CONFIG_KEY_2"] == "core.hooksPath"  # after them: later entries win
    count = int(env["GIT_CONFIG_COUNT"])
    assert all(f"GIT_CONFIG_KEY_{i}" in env for i in range(count))
    # The earlier core.hooksPath=/dev/null loses: our hooks still run (and refuse).
    assert pusher.push(USER, "main:refs/notes/x", extra=base).returncode != 0
    assert pusher.push(USER, ":main", extra=base).returncode != 0
    # receive.denyDeletes from base still applies to other branches.
    assert pusher.push(USER, "main:refs/heads/t", extra=base).returncode == 0
    assert pusher.push(USER, ":t", extra=base).returncode != 0


def test_without_rules_the_hook_refuses(pusher: Pusher) -> None:
    env = push_environment(pusher.store, USER, pusher.record, base=git_env())
    del env[hook.RULES_ENV]
    pusher.commit()
    done = pusher.push_in(env, "main")
    assert done.returncode != 0
    assert "the server's push rules are missing" in done.stderr


def test_hooks_are_written_once_owner_only_and_atomically(tmp_path: Path) -> None:
    store = Store.at(str(tmp_path))
    directory = ensure_hooks(store)
    assert directory == store.internal / "hooks"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o755
    for name in ("pre-receive", "post-receive"):
        script = directory / name
        assert stat.S_IMODE(script.stat().st_mode) == 0o755
        assert f"{Path(hook.__file__).resolve()} {name}" in script.read_text()
    inode = (directory / "pre-receive").stat().st_ino
    ensure_hooks(store)
    assert (directory / "pre-receive").stat().st_ino == inode  # unchanged: not rewritten
    (directory / "pre-receive").write_text("#!/bin/sh\nexit 0\n")
    ensure_hooks(store)
    assert "hook.py" in (directory / "pre-receive").read_text()
    assert sorted(p.name for p in directory.iterdir()) == ["post-receive", "pre-receive"]


def test_hook_start_up_is_fast(pusher: Pusher) -> None:
    """One push's pre-receive, run by hand as git would (rules set, nothing to judge)."""
    script = ensure_hooks(pusher.store) / "pre-receive"
    env = push_environment(pusher.store, USER, pusher.record, base=git_env())
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        subprocess.run([str(script)], input=b"", env=env, check=True, cwd=pusher.bare)
        runs.append(time.perf_counter() - started)
    assert min(runs) < 0.5
