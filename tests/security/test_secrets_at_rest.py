"""A clone_uri's password is never stored in plain text: not in the database's rows, not in
its file, not in the repositories on disk; the API still answers it masked and pulls still
authenticate with it. A password that no configured key decrypts fails the pull cleanly."""

from __future__ import annotations

import dataclasses
import os
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import text

from rpcserver.core.config import Config
from rpcserver.db.database import Database
from rpcserver.domain import secret_keys
from tests import gitremotes
from tests.conftest import Rpc
from tests.gitremotes import SmartHttp, Upstream, running
from tests.security.conftest import err, ok

remotes = gitremotes.remotes
upstream = gitremotes.upstream


@pytest.fixture
def password() -> str:
    """A password no other test uses, so finding it anywhere means this test stored it."""
    return "Pw-" + uuid.uuid4().hex[:12]


@pytest.fixture
def remote(remotes: Path, password: str) -> Iterator[SmartHttp]:
    """Loopback smart HTTP that answers only to bob and this test's password."""
    with running(SmartHttp(remotes, credentials=("bob", password))) as server:
        yield server


@pytest.fixture
def config(config: Config) -> Config:
    return dataclasses.replace(config, clone_uri_allow_private_hosts=True)


def stored_rows(db: Database) -> str:
    """Every value of every repositories row, as text: what SQL shows an admin."""
    with db.engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM repositories")).all()
    return repr([tuple(row) for row in rows])


def files_under(*paths: Path) -> bytes:
    data = b""
    for base in paths:
        for path in [base] if base.is_file() else base.rglob("*"):
            if path.is_file():
                data += path.read_bytes()
    return data


def forms(password: str) -> list[str]:
    """The password as it may be written: raw and percent-encoded (every character)."""
    return [password, "".join(f"%{b:02X}" for b in password.encode()),
            quote(password, safe="")]


def test_a_password_is_encrypted_at_rest_and_still_used_to_pull(
        rpc: Rpc, db: Database, config: Config, upstream: Upstream, remote: SmartHttp,
        password: str) -> None:
    good = remote.url("up", "bob", password)
    assert ok(rpc("create_repo", repo_name="m", clone_uri=good))["success"] is True
    assert ok(rpc("get_repo", repoid="m"))["clone_uri"] == remote.url("up", "bob", "***")
    # The key file was made on this first need, readable by the server's user only.
    mode = stat.S_IMODE(os.stat(config.secret_key_file).st_mode)
    assert mode == 0o600
    # update_repo with the same password written percent-encoded; the pull authenticates.
    encoded = remote.url("up", "bob", forms(password)[1])
    ok(rpc("update_repo", repoid="m", clone_uri=encoded))
    upstream.commit(2)
    assert ok(rpc("pull", repoid="m")) == {"msg": "Pulled from `m`", "repository": "m"}
    repo = ok(rpc("get_repo", repoid="m"))
    assert repo["last_changeset"]["raw_id"] == upstream.ref("master")
    assert repo["clone_uri"] == remote.url("up", "bob", "***")
    assert all(r["clone_uri"] == remote.url("up", "bob", "***")
               for r in ok(rpc("get_repos")))

    rows = stored_rows(db)
    assert remote.url("up", "bob", "***") in rows  # admins still see where it pulls from
    for form in forms(password):
        assert form not in rows
    on_disk = files_under(Path(config.repos_root))
    if db.engine.dialect.name == "sqlite":
        database_file = Path(db.engine.url.database or "")
        on_disk += files_under(*database_file.parent.glob(database_file.name + "*"))
    for form in forms(password):
        assert form.encode() not in on_disk


def test_clearing_the_clone_uri_clears_the_encrypted_copy(
        rpc: Rpc, db: Database, upstream: Upstream, remote: SmartHttp, password: str) -> None:
    ok(rpc("create_repo", repo_name="m", clone_uri=remote.url("up", "bob", password)))
    ok(rpc("update_repo", repoid="m", clone_uri=""))
    with db.engine.connect() as conn:
        row = conn.execute(text("SELECT clone_uri, clone_uri_encrypted FROM repositories")).one()
    assert tuple(row) == (None, None)
    assert err(rpc("pull", repoid="m")) == "Unable to pull changes from `m`"


def test_a_password_no_key_decrypts_fails_the_pull_with_the_reason_in_the_log(
        rpc: Rpc, config: Config, upstream: Upstream, remote: SmartHttp, password: str,
        caplog: pytest.LogCaptureFixture) -> None:
    ok(rpc("create_repo", repo_name="m", clone_uri=remote.url("up", "bob", password)))
    secret_keys.write(config.secret_key_file, [secret_keys.new_key()])  # the key was lost
    assert err(rpc("pull", repoid="m")) == "Unable to pull changes from `m`"
    assert "m: its stored clone_uri cannot be decrypted: none of the 1 key(s)" in caplog.text
    # The API still answers the masked clone_uri: reads never decrypt.
    assert ok(rpc("get_repo", repoid="m"))["clone_uri"] == remote.url("up", "bob", "***")
    os.unlink(config.secret_key_file)
    assert err(rpc("pull", repoid="m")) == "Unable to pull changes from `m`"
    assert "does not exist" in caplog.text
    assert password not in caplog.text
    # The admin gives the clone_uri again: a new key file is made and the pull works.
    ok(rpc("update_repo", repoid="m", clone_uri=remote.url("up", "bob", password)))
    assert ok(rpc("pull", repoid="m"))["msg"] == "Pulled from `m`"


def test_a_pull_with_a_one_off_clone_uri_needs_no_key(
        rpc: Rpc, config: Config, upstream: Upstream, remote: SmartHttp,
        password: str) -> None:
    ok(rpc("create_repo", repo_name="m", clone_uri=remote.url("up", "bob", password)))
    secret_keys.write(config.secret_key_file, [secret_keys.new_key()])
    upstream.commit(1)
    answer = rpc("pull", repoid="m", clone_uri=remote.url("up", "bob", password))
    assert ok(answer)["msg"] == "Pulled from `m`"
