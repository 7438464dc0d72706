"""Gists through the WSGI app, on real disk and real git: get_gist, get_gists, create_gist,
delete_gist (Kallithea 0.7's, docs/compatibility.md "Gists")."""

from __future__ import annotations

import dataclasses
import datetime as dt
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from rpcserver.core.config import Config
from rpcserver.db.database import Database
from rpcserver.db.models import Gist, User
from rpcserver.domain.auth import issue_api_key
from rpcserver.domain.gists import ALPHABET, MAX_FILE_BYTES, MAX_FILES, MAX_TOTAL_BYTES
from tests.answers import err, ok
from tests.conftest import ApiUser, Rpc
from tests.gitremotes import leftovers

GIST_KEYS = ["gist_id", "type", "access_id", "description", "url", "expires", "created_on"]
FILES: dict[str, dict[str, Any]] = {"hello.py": {"content": "print('hi')\n", "lexer": None},
         "notes.txt": {"content": "Zoë ☃\n"}}


@pytest.fixture
def config(config: Config) -> Config:
    """Room for the size bounds: the body bound would otherwise refuse them first."""
    return dataclasses.replace(config, max_body_bytes=32 * 1024 * 1024,
                               public_url="https://code.example.org")


def gist_dir(config: Config, access_id: str) -> Path:
    return Path(config.repos_root).resolve() / ".rpcserver" / "gists" / access_id


def gist_dirs(config: Config) -> list[str]:
    base = Path(config.repos_root) / ".rpcserver" / "gists"
    return sorted(p.name for p in base.iterdir()) if base.is_dir() else []


def git(path: Path, *args: str) -> str:
    return subprocess.run(["git", f"--git-dir={path}", *args], check=True,
                          capture_output=True, text=True).stdout


def gist_rows(db: Database) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(Gist)).scalar_one())


# -- create_gist and the answer's shape ---------------------------------------------------


def test_public_gist_shape_commit_and_files_on_disk(rpc: Rpc, config: Config) -> None:
    before = time.time()
    made = ok(rpc("create_gist", files=FILES, description="two files"))
    assert list(made) == ["msg", "gist"]
    assert made["msg"] == "created new gist"
    gist = made["gist"]
    assert list(gist) == GIST_KEYS
    assert gist["type"] == "public"
    assert gist["access_id"] == str(gist["gist_id"])
    assert gist["description"] == "two files"
    assert gist["url"] == f"https://code.example.org/_admin/gists/{gist['access_id']}"
    assert gist["expires"] == -1 and isinstance(gist["expires"], float)
    created = dt.datetime.fromisoformat(gist["created_on"])
    assert abs(created.replace(tzinfo=dt.UTC).timestamp() - before) < 60

    path = gist_dir(config, gist["access_id"])
    assert git(path, "rev-parse", "--is-bare-repository").strip() == "true"
    assert git(path, "log", "--format=%B", "master").strip() == \
        "added files: hello.py, notes.txt"
    assert git(path, "log", "--format=%an <%ae>", "master").strip() == \
        "Admin <admin@example.com>"
    assert git(path, "ls-tree", "--name-only", "master").split() == ["hello.py", "notes.txt"]
    assert git(path, "show", "master:notes.txt") == "Zoë ☃\n"
    assert git(path, "rev-list", "--count", "master").strip() == "1"
    assert leftovers(config.repos_root) == []


def test_one_file_message_and_get_by_both_ids(rpc: Rpc, config: Config) -> None:
    gist = ok(rpc("create_gist", files={"a": {"content": "x"}}))["gist"]
    path = gist_dir(config, gist["access_id"])
    assert git(path, "log", "--format=%B", "master").strip() == "added file: a"
    assert ok(rpc("get_gist", gistid=gist["gist_id"])) == gist
    assert ok(rpc("get_gist", gistid=str(gist["gist_id"]))) == gist


def test_private_gist_has_a_random_access_id(rpc: Rpc, config: Config) -> None:
    ids = set()
    for _ in range(3):
        gist = ok(rpc("create_gist", files=FILES, gist_type="private"))["gist"]
        assert gist["type"] == "private"
        access_id = gist["access_id"]
        assert len(access_id) == 20 and set(access_id) <= set(ALPHABET)
        assert gist["url"].endswith(f"/_admin/gists/{access_id}")
        assert gist_dir(config, access_id).is_dir()
        assert ok(rpc("get_gist", gistid=access_id)) == gist
        assert ok(rpc("get_gist", gistid=gist["gist_id"])) == gist
        ids.add(access_id)
    assert len(ids) == 3


def test_content_true_answers_the_files(rpc: Rpc) -> None:
    gist = ok(rpc("create_gist", files=FILES, gist_type="private"))["gist"]
    got = ok(rpc("get_gist", gistid=gist["access_id"], content=True))
    assert list(got) == [*GIST_KEYS, "content"]
    assert got["content"] == {name: spec["content"] for name, spec in FILES.items()}
    assert "content" not in ok(rpc("get_gist", gistid=gist["access_id"]))


def test_lifetime_and_string_arguments(rpc: Rpc) -> None:
    before = time.time()
    gist = ok(rpc("create_gist", files=FILES, lifetime="10"))["gist"]
    assert before + 600 <= gist["expires"] <= time.time() + 600
    assert "lifetime" in err(rpc("create_gist", files=FILES, lifetime=-2))


# -- who sees what ------------------------------------------------------------------------


def test_only_owner_and_admin_see_a_gist(rpc: Rpc, make_user: Callable[..., ApiUser]) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    mine = ok(rpc("create_gist", key=alice.key, files=FILES, gist_type="private"))["gist"]
    public = ok(rpc("create_gist", key=alice.key, files=FILES))["gist"]
    for gist in (mine, public):
        for gistid in (gist["gist_id"], gist["access_id"]):
            assert ok(rpc("get_gist", key=alice.key, gistid=gistid)) == gist
            assert ok(rpc("get_gist", gistid=gistid)) == gist  # the admin
            assert err(rpc("get_gist", key=bob.key, gistid=gistid)) == \
                f"gist `{gistid}` does not exist"
            assert err(rpc("delete_gist", key=bob.key, gistid=gistid)) == \
                f"gist `{gistid}` does not exist"
    assert err(rpc("get_gist", gistid="nosuchgist")) == "gist `nosuchgist` does not exist"
    assert err(rpc("get_gist", gistid="99999999999")) == "gist `99999999999` does not exist"


def test_owner_is_for_admins(rpc: Rpc, make_user: Callable[..., ApiUser]) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    assert err(rpc("create_gist", key=alice.key, files=FILES, owner="bob")) == \
        "Only Kallithea admin can specify `owner` param"
    gist = ok(rpc("create_gist", files=FILES, owner="bob"))["gist"]
    assert ok(rpc("get_gists", key=bob.key)) == [gist]
    assert ok(rpc("get_gists", key=alice.key)) == []
    assert err(rpc("create_gist", files=FILES, owner="ghost")) == "failed to create gist"


def test_default_user_makes_no_gists(rpc: Rpc, db: Database) -> None:
    """The default user cannot call at all, even with a key planted in the database (and
    create_gist would refuse it besides)."""
    with db.transaction(write=True) as session:
        default = session.get_one(User, 1)
        key, _row = issue_api_key(session, default)
    assert err(rpc("create_gist", key=key, files=FILES)) == "Invalid API key"
    assert gist_rows(db) == 0


def test_get_gists_rules(rpc: Rpc, make_user: Callable[..., ApiUser], db: Database) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    first = ok(rpc("create_gist", key=alice.key, files=FILES))["gist"]
    second = ok(rpc("create_gist", key=alice.key, files=FILES, gist_type="private"))["gist"]
    ok(rpc("create_gist", key=bob.key, files=FILES))
    with db.transaction(write=True) as session:  # the same second: the id decides
        session.execute(update(Gist).values(created_on=dt.datetime(2026, 1, 1)))
    newest_first = [second, first]
    for gist in newest_first:
        gist["created_on"] = "2026-01-01T00:00:00"
    assert ok(rpc("get_gists", key=alice.key)) == newest_first
    assert ok(rpc("get_gists", key=alice.key, userid=alice.id)) == newest_first
    assert ok(rpc("get_gists", userid="alice")) == newest_first
    assert err(rpc("get_gists", key=alice.key, userid="bob")) == \
        "userid is not the same as your user"
    assert err(rpc("get_gists", key=alice.key, userid="ghost")) == \
        "userid is not the same as your user"
    assert err(rpc("get_gists", userid="ghost")) == "user `ghost` does not exist"


# -- expiry and deletion ------------------------------------------------------------------


def test_expired_gists_are_gone_and_purged(rpc: Rpc, config: Config, db: Database) -> None:
    old = ok(rpc("create_gist", files=FILES, lifetime=1))["gist"]
    kept = ok(rpc("create_gist", files=FILES))["gist"]
    with db.transaction(write=True) as session:
        session.execute(update(Gist).where(Gist.id == old["gist_id"])
                        .values(expires=time.time() - 1))
    assert ok(rpc("get_gists")) == [kept]
    assert err(rpc("get_gist", gistid=old["gist_id"])) == \
        f"gist `{old['gist_id']}` does not exist"
    assert gist_dir(config, old["access_id"]).is_dir()  # until the next write
    ok(rpc("create_gist", files=FILES, lifetime=0))  # expires at once: purged by the next
    assert not gist_dir(config, old["access_id"]).exists()
    assert gist_rows(db) == 2
    assert leftovers(config.repos_root) == []


def test_delete_removes_row_and_repository(rpc: Rpc, config: Config, db: Database,
                                           make_user: Callable[..., ApiUser]) -> None:
    alice = make_user("alice")
    gist = ok(rpc("create_gist", key=alice.key, files=FILES, gist_type="private"))["gist"]
    public = ok(rpc("create_gist", key=alice.key, files=FILES))["gist"]
    assert ok(rpc("delete_gist", key=alice.key, gistid=gist["access_id"])) == \
        {"msg": f"deleted gist ID:{gist['access_id']}", "gist": None}
    assert ok(rpc("delete_gist", gistid=public["gist_id"])) == \
        {"msg": f"deleted gist ID:{public['access_id']}", "gist": None}
    assert gist_dirs(config) == []
    assert gist_rows(db) == 0
    assert leftovers(config.repos_root) == []
    assert err(rpc("delete_gist", gistid=gist["access_id"])) == \
        f"gist `{gist['access_id']}` does not exist"


def test_a_user_with_gists_cannot_be_deleted(rpc: Rpc,
                                             make_user: Callable[..., ApiUser]) -> None:
    alice = make_user("alice")
    ok(rpc("create_gist", key=alice.key, files=FILES))
    assert err(rpc("delete_user", userid="alice")) == \
        f"failed to delete user ID:{alice.id} alice"


# -- refused creates leave nothing behind -------------------------------------------------

REFUSED: list[tuple[Any, str]] = [
    ({}, "must name at least one file"),
    ({"a/b": {"content": "x"}}, "must not contain `/`"),
    ({"../x": {"content": "x"}}, "must not contain `/`"),
    ({"..": {"content": "x"}}, "must not be `.` or `..`"),
    ({"": {"content": "x"}}, "must not be empty"),
    ({".git": {"content": "x"}}, "`.git`"),
    ({"x" * 256: {"content": "x"}}, "at most 255 bytes"),
    ({"a": {"lexer": None}}, "file `a` needs a `content` string"),
    ({"a": "text"}, "must be an object"),
    ({"a": {"content": 7}}, "file `a` needs a `content` string"),
    ({f"f{i}": {"content": ""} for i in range(MAX_FILES + 1)},
     f"must name at most {MAX_FILES} files"),
    ({"big": {"content": "x" * (MAX_FILE_BYTES + 1)}},
     f"file `big` is larger than {MAX_FILE_BYTES} bytes"),
    ({f"f{i}": {"content": "x" * MAX_FILE_BYTES} for i in range(11)},
     f"the files are larger than {MAX_TOTAL_BYTES} bytes together"),
    ([1], "must be an object"),
]


@pytest.mark.parametrize(("files", "why"), REFUSED, ids=lambda v: str(v)[:30])
def test_refused_files_leave_nothing(rpc: Rpc, config: Config, db: Database, files: Any,
                                     why: str) -> None:
    text = err(rpc("create_gist", files=files))
    assert text.startswith("Invalid `files` arg in JSON DATA: "), text
    assert why in text
    assert gist_rows(db) == 0
    assert gist_dirs(config) == []
    assert leftovers(config.repos_root) == []


def test_the_largest_allowed_file_is_kept_whole(rpc: Rpc, config: Config) -> None:
    content = "y" * MAX_FILE_BYTES
    gist = ok(rpc("create_gist", files={"big": {"content": content}}))["gist"]
    assert ok(rpc("get_gist", gistid=gist["gist_id"], content=True))["content"] == \
        {"big": content}
