"""The secret key file and its rotation, through the real ``rpcserver`` command and server,
on SQLite or PostgreSQL: made by init or on start-up, passwords of older databases encrypted
by the upgrade, keys rotated while the server runs, a key that decrypts nothing refused."""

from __future__ import annotations

import os
import stat
import subprocess
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import text

from rpcserver.db import migrations
from rpcserver.db.database import Database
from rpcserver.db.models import User
from rpcserver.domain import secret_keys
from rpcserver.domain.bootstrap import seed_default_user, write_config
from rpcserver.domain.key_format import key_digest, new_api_key
from tests.databases import scratch_database, server_url
from tests.gitremotes import GIT, SmartHttp, Upstream, git_env, running
from tests.server_process import ServerProcess

PRIVATE = {"RPCSERVER_CLONE_URI_ALLOW_PRIVATE_HOSTS": "true"}


@pytest.fixture
def password() -> str:
    return "Pw-" + uuid.uuid4().hex[:12]


@pytest.fixture
def remote(tmp_path: Path, password: str) -> Iterator[tuple[SmartHttp, Upstream]]:
    base = tmp_path / "remotes"
    up = Upstream(base / "up")
    up.commit(2)
    with running(SmartHttp(base, credentials=("bob", password))) as server:
        yield server, up


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[ServerProcess]:
    with scratch_database(tmp_path, "keys", server_url()) as url:
        server = ServerProcess(instance=tmp_path / "inst", database_url=url,
                               extra_env=dict(PRIVATE))
        yield server
        server.stop()


def key_file(server: ServerProcess) -> Path:
    return server.instance / "secret.keys"


def keys_in(path: Path) -> list[bytes]:
    return list(secret_keys.read(path).keys)


def stored(server: ServerProcess) -> tuple[str | None, str | None]:
    db = Database.connect(server.database_url)
    try:
        with db.engine.connect() as conn:
            row = conn.execute(text("SELECT clone_uri, clone_uri_encrypted FROM repositories "
                                    "WHERE name = 'm'")).one()
        return row[0], row[1]
    finally:
        db.dispose()


def test_init_makes_a_private_key_file_that_the_config_names(instance: ServerProcess) -> None:
    instance.admin_key = instance.rpcserver("init", str(instance.instance)).stdout.strip()
    config = tomllib.loads(instance.config_path.read_text())
    assert config["secret_key_file"] == "secret.keys"
    assert stat.S_IMODE(os.stat(key_file(instance)).st_mode) == 0o600
    assert len(keys_in(key_file(instance))) == 1


def test_an_instance_from_before_keys_starts_and_makes_its_key_file(
        instance: ServerProcess) -> None:
    instance.start()
    instance.stop()
    key_file(instance).unlink()
    lines = instance.config_path.read_text().splitlines()
    instance.config_path.write_text("\n".join(line for line in lines
                                              if not line.startswith("secret_key_file")))
    instance.start()
    assert "Created the secret key file" in instance.read_log()
    assert stat.S_IMODE(os.stat(key_file(instance)).st_mode) == 0o600
    assert instance.call("get_repos")["error"] is None


def _old_instance(server: ServerProcess, clone_uri: str) -> str:
    """A database at schema 0001 holding ``clone_uri`` in plain text, as older versions
    stored it, with the repository on disk; returns the admin's key."""
    write_config(server.instance)
    lines = server.config_path.read_text().splitlines()
    server.config_path.write_text("\n".join(line for line in lines
                                            if not line.startswith("secret_key_file")))
    repos = server.instance / "repos"
    subprocess.run([GIT, "init", "--bare", "--quiet", str(repos / "m")], check=True,
                   env=git_env())
    db = Database.connect(server.database_url)
    try:
        migrations.upgrade(db.engine, "0001")
        key = new_api_key()
        with db.transaction(write=True) as session:
            seed_default_user(session)
            session.add(User(id=2, username="admin", email="admin@example.com", admin=True))
            session.flush()
            # The key as 0001 stored it: its columns only (the model has more now).
            session.execute(text(
                "INSERT INTO api_keys (user_id, digest, suffix, description, created_on) "
                "VALUES (2, :digest, :suffix, '', CURRENT_TIMESTAMP)"),
                {"digest": key_digest(key), "suffix": key[-4:]})
            session.execute(text(
                "INSERT INTO repositories (name, repo_type, description, private, clone_uri, "
                "landing_rev, enable_statistics, enable_downloads, owner_id, created_on, "
                "updated_on) VALUES ('m', 'git', '', false, :uri, 'rev:tip', false, false, 2, "
                "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"), {"uri": clone_uri})
    finally:
        db.dispose()
    return key


def test_the_upgrade_encrypts_passwords_older_versions_stored_in_plain_text(
        instance: ServerProcess, remote: tuple[SmartHttp, Upstream], password: str) -> None:
    http, up = remote
    instance.admin_key = _old_instance(instance, http.url("up", "bob", password))
    db = Database.connect(instance.database_url)
    with db.engine.connect() as conn:
        before = conn.execute(text("SELECT clone_uri FROM repositories")).scalar()
    db.dispose()
    assert before == http.url("up", "bob", password)
    out = instance.rpcserver("db", "upgrade")
    assert "Encrypted 1 clone_uri password(s) stored in plain text." in out.stderr
    masked, token = stored(instance)
    assert masked == http.url("up", "bob", "***") and token and password not in token
    if instance.database_url.startswith("sqlite"):
        database = Path(instance.database_url.removeprefix("sqlite:///"))
        for path in database.parent.glob(database.name + "*"):
            assert password.encode() not in path.read_bytes(), path
    instance.start()
    answer = instance.call("pull", repoid="m")
    assert answer["result"] == {"msg": "Pulled from `m`", "repository": "m"}, answer
    repo = instance.call("get_repo", repoid="m")["result"]
    assert repo["clone_uri"] == http.url("up", "bob", "***")  # type: ignore[index]
    assert repo["last_changeset"]["raw_id"] == up.ref("master")  # type: ignore[index]


def test_rotation_while_the_server_runs(instance: ServerProcess,
                                        remote: tuple[SmartHttp, Upstream],
                                        password: str) -> None:
    http, up = remote
    instance.start()
    created = instance.call("create_repo", repo_name="m",
                            clone_uri=http.url("up", "bob", password))
    assert created["error"] is None, created
    [old_key] = keys_in(key_file(instance))
    _masked, old_token = stored(instance)

    out = instance.rpcserver("rotate-secret-key", "--new-key")
    assert "Encrypted 1 stored clone_uri password(s)" in out.stderr
    new_key, kept = keys_in(key_file(instance))
    assert kept == old_key and new_key != old_key
    _masked, new_token = stored(instance)
    assert new_token != old_token
    assert Fernet(new_key).decrypt((new_token or "").encode()).decode() == http.url(
        "up", "bob", password)
    up.commit(1)
    assert instance.call("pull", repoid="m")["error"] is None

    out = instance.rpcserver("rotate-secret-key", "--drop-old-keys")
    assert "Removed 1 old key(s)" in out.stderr
    assert keys_in(key_file(instance)) == [new_key]
    assert stat.S_IMODE(os.stat(key_file(instance)).st_mode) == 0o600
    with pytest.raises(InvalidToken):
        Fernet(old_key).decrypt((stored(instance)[1] or "").encode())
    # The running server reads the changed file: it pulls with the new key alone.
    up.commit(1)
    assert instance.call("pull", repoid="m")["error"] is None
    repo = instance.call("get_repo", repoid="m")["result"]
    assert repo["last_changeset"]["raw_id"] == up.ref("master")  # type: ignore[index]


def test_a_key_that_decrypts_nothing_is_reported_and_nothing_is_dropped(
        instance: ServerProcess, remote: tuple[SmartHttp, Upstream], password: str) -> None:
    http, _up = remote
    instance.start()
    assert instance.call("create_repo", repo_name="m",
                         clone_uri=http.url("up", "bob", password))["error"] is None
    _masked, token = stored(instance)
    wrong = secret_keys.new_key()
    secret_keys.write(key_file(instance), [wrong])  # the right key was lost
    out = instance.rpcserver("rotate-secret-key", "--new-key", "--drop-old-keys", check=False)
    assert out.returncode == 1
    assert "1 stored clone_uri password(s) cannot be decrypted" in out.stderr
    assert "repositories: m)" in out.stderr and "the old keys were kept" in out.stderr
    assert keys_in(key_file(instance))[1:] == [wrong]
    assert stored(instance)[1] == token  # left as it was
    answer = instance.call("pull", repoid="m")
    assert answer == {"id": 1, "result": None, "error": "Unable to pull changes from `m`"}
    log = instance.read_log()
    assert "pull m: its stored clone_uri cannot be decrypted" in log
    assert password not in log and password not in out.stderr
