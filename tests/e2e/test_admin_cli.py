"""The ``rpcserver`` admin command, run as a real subprocess, on SQLite or PostgreSQL."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.databases import scratch_database, server_url
from tests.server_process import ServerProcess


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[ServerProcess]:
    """An instance that is not initialised yet, with its own empty database."""
    with scratch_database(tmp_path, "cli", server_url()) as url:
        server = ServerProcess(instance=tmp_path / "inst", database_url=url)
        yield server
        server.stop()


def init(server: ServerProcess) -> str:
    out = server.rpcserver("init", str(server.instance))
    key = out.stdout.strip()
    server.admin_key = key
    return key


def test_init_creates_the_instance_and_prints_only_the_key(instance: ServerProcess) -> None:
    out = instance.rpcserver("init", str(instance.instance))
    key = out.stdout.strip()
    assert out.stdout == key + "\n" and key.startswith("rpck_")
    assert "curl" in out.stderr and key in out.stderr
    config = tomllib.loads(instance.config_path.read_text())
    assert config["repos_root"] == "repos"
    assert (instance.instance / "repos").is_dir()
    instance.admin_key = key
    instance.start()
    me = instance.call("get_user")["result"]
    assert (me["user_id"], me["username"], me["admin"]) == (2, "admin", True)  # type: ignore[index]
    default = instance.call("get_user", userid=1)["result"]
    assert default["username"] == "default"  # type: ignore[index]


def test_init_twice_refuses_and_changes_nothing(instance: ServerProcess) -> None:
    init(instance)
    before = instance.config_path.read_text()
    again = instance.rpcserver("init", str(instance.instance), check=False)
    assert again.returncode == 1
    assert "already exists" in again.stderr and again.stdout == ""
    assert instance.config_path.read_text() == before


def test_create_api_key_for_scripts(instance: ServerProcess) -> None:
    init(instance)
    out = instance.rpcserver("create-api-key", "admin", "--description", "ci")
    key = out.stdout.strip()
    assert out.stdout == key + "\n" and out.stderr == ""
    instance.start()
    assert instance.call("get_user", key=key)["error"] is None


def test_create_api_key_rotate_revokes_the_previous_one(instance: ServerProcess) -> None:
    init(instance)
    first = instance.rpcserver("create-api-key", "admin", "--description", "dev").stdout.strip()
    other = instance.rpcserver("create-api-key", "admin", "--description", "ci").stdout.strip()
    second = instance.rpcserver("create-api-key", "admin", "--description", "dev",
                                "--rotate").stdout.strip()
    instance.start()
    assert instance.call("get_user", key=first)["error"] == "Invalid API key"
    assert instance.call("get_user", key=second)["error"] is None
    assert instance.call("get_user", key=other)["error"] is None
    assert instance.call("get_user", key=instance.admin_key)["error"] is None


def test_create_api_key_with_expiry_and_unknown_users(instance: ServerProcess) -> None:
    init(instance)
    assert instance.rpcserver("create-api-key", "admin", "--expires-in-days", "1").returncode == 0
    for user in ("nobody", "default"):
        out = instance.rpcserver("create-api-key", user, check=False)
        assert out.returncode == 1 and out.stdout == ""
        assert f"user `{user}` does not exist" in out.stderr


def test_create_user(instance: ServerProcess) -> None:
    init(instance)
    out = instance.rpcserver("create-user", "carol", "--email", "Carol@Example.com",
                             "--password", "pw")
    assert out.stdout.strip() == "3"
    assert "created new user `carol`" in out.stderr
    dup = instance.rpcserver("create-user", "CAROL", "--email", "x@example.com", check=False)
    assert dup.returncode == 1 and "user `CAROL` already exist" in dup.stderr
    bad = instance.rpcserver("create-user", "../x", "--email", "x@example.com", check=False)
    assert bad.returncode == 1 and "Invalid `username` arg" in bad.stderr


def test_serve_refuses_a_database_without_schema(instance: ServerProcess) -> None:
    instance.instance.mkdir()
    instance.config_path.write_text('repos_root = "repos"\n')
    out = instance.rpcserver("serve", "--bind", "127.0.0.1:1", check=False)
    assert out.returncode == 1
    assert "rpcserver db upgrade" in out.stderr
    assert instance.rpcserver("db", "upgrade").returncode == 0
    assert instance.rpcserver("db", "upgrade").returncode == 0  # idempotent


def test_environment_overrides_the_file(instance: ServerProcess) -> None:
    init(instance)
    instance.extra_env["RPCSERVER_MAX_BODY_BYTES"] = "2048"
    instance.start()
    big = {"id": 1, "api_key": instance.admin_key, "method": "test", "args": {"args": "x" * 3000}}
    answer = requests.post(instance.api_url, data=json.dumps(big), timeout=10).json()
    assert answer["error"] == "Request body too large"


def test_bad_configuration_is_a_clear_error(instance: ServerProcess) -> None:
    init(instance)
    instance.extra_env["RPCSERVER_WORKERS"] = "many"
    out = instance.rpcserver("serve", check=False)
    assert out.returncode == 1
    assert "RPCSERVER_WORKERS must be a whole number, not 'many'" in out.stderr
    instance.extra_env.pop("RPCSERVER_WORKERS")
    instance.config_path.write_text(instance.config_path.read_text() + "colour = 'blue'\n")
    out = instance.rpcserver("serve", check=False)
    assert out.returncode == 1 and "unknown setting(s)" in out.stderr and "colour" in out.stderr


def test_config_flag_on_every_command(instance: ServerProcess) -> None:
    init(instance)
    # Its RPCSERVER_CONFIG names a file that does not exist: only --config can make it work.
    env_less = ServerProcess(instance=instance.instance / "nowhere",
                             database_url=instance.database_url)
    conf = str(instance.config_path)
    out = env_less.rpcserver("create-api-key", "--config", conf, "admin")
    assert out.stdout.startswith("rpck_")
    assert env_less.rpcserver("--config", conf, "db", "upgrade").returncode == 0
    assert env_less.rpcserver("db", "upgrade", "--config", conf).returncode == 0


def test_make_serve_key_rotation(instance: ServerProcess) -> None:
    """What `make serve` does: init's key and later keys share a description; each new one
    revokes the one printed before."""
    first = instance.rpcserver("init", str(instance.instance), "--key-description",
                               "make serve").stdout.strip()
    second = instance.rpcserver("create-api-key", "admin", "--description", "make serve",
                                "--rotate", "--with-example")
    key = second.stdout.strip()
    assert key.startswith("rpck_") and "curl" in second.stderr
    instance.admin_key = key
    instance.start()
    assert instance.call("get_user", key=first)["error"] == "Invalid API key"
    assert instance.call("get_user", key=key)["error"] is None


def deactivate_every_admin(server: ServerProcess) -> None:
    """As an admin who locked everyone out would: straight in the database."""
    from sqlalchemy import update

    from rpcserver.db.database import Database
    from rpcserver.db.models import User

    database = Database.connect(server.database_url)
    try:
        with database.transaction(write=True) as session:
            session.execute(update(User).where(User.admin.is_(True)).values(active=False))
    finally:
        database.dispose()


def test_admin_commands_need_an_active_admin_and_recover_admin_brings_one_back(
        instance: ServerProcess) -> None:
    init(instance)
    deactivate_every_admin(instance)
    for command in (["create-user", "eve", "--email", "eve@example.com"],
                    ["create-api-key", "admin"]):
        out = instance.rpcserver(*command, check=False)
        assert out.returncode == 1 and out.stdout == ""
        assert ("no active admin: run `rpcserver init`, or `rpcserver recover-admin USERNAME`"
                in out.stderr)
    missing = instance.rpcserver("recover-admin", "root", check=False)
    assert missing.returncode == 1 and "give --email to create it" in missing.stderr
    for name, email in (("../x", "x@example.com"), ("123", "x@example.com"),
                        ("root", "not-an-address")):
        bad = instance.rpcserver("recover-admin", name, "--email", email, check=False)
        assert bad.returncode == 1 and bad.stdout == ""
        assert "cannot be a username" in bad.stderr or "is not an email" in bad.stderr
    out = instance.rpcserver("recover-admin", "admin")
    key = out.stdout.strip()
    assert out.stdout == key + "\n" and key.startswith("rpck_")
    instance.admin_key = key
    instance.start()
    me = instance.call("get_user")["result"]
    assert (me["username"], me["active"], me["admin"]) == ("admin", True, True)  # type: ignore[index]
    # The admin commands work again, through the API's checks.
    assert instance.rpcserver("create-user", "eve", "--email", "eve@example.com").returncode == 0
    created = instance.rpcserver("recover-admin", "ops", "--email", "Ops@Example.com")
    ops_key = created.stdout.strip()
    ops = instance.call("get_user", key=ops_key)["result"]
    assert (ops["username"], ops["email"], ops["admin"]) == (  # type: ignore[index]
        "ops", "ops@example.com", True)


def test_create_api_key_with_scope_and_expires(instance: ServerProcess) -> None:
    init(instance)
    key = instance.rpcserver("create-api-key", "admin", "--description", "ro", "--scope",
                             "read", "--expires", "3600").stdout.strip()
    dated = instance.rpcserver("create-api-key", "admin", "--description", "dated",
                               "--expires", "2999-01-31T23:59:59+01:00").stdout.strip()
    instance.start()
    assert instance.call("get_user", key=key)["error"] is None
    refused = instance.call("create_user", key=key, username="x", email="x@example.com",
                            password="secret-password-1")["error"]
    assert refused is not None and "scope" in str(refused)
    assert instance.call("get_user", key=dated)["error"] is None
    records = {r["description"]: r for r in instance.call("get_api_keys")["result"]}  # type: ignore[attr-defined]
    assert records["ro"]["scopes"] == ["read"]
    assert records["ro"]["key_suffix"] == key[-4:]
    assert records["dated"]["expires"].startswith("2999-01-31T22:59:59")
    assert records["dated"]["scopes"] == ["all"]


def test_create_api_key_refuses_bad_scope_and_expiry(instance: ServerProcess) -> None:
    init(instance)
    for args, says in ((["--scope", "repository:x:delete"], "--scope"),
                       (["--expires", "0"], "must be in the future"),
                       (["--expires", "next tuesday"], "ISO 8601"),
                       (["--expires", "60", "--expires-in-days", "1"], "not both")):
        out = instance.rpcserver("create-api-key", "admin", *args, check=False)
        assert out.returncode == 2 and out.stdout == "", args
        assert says in out.stderr, (args, out.stderr)
    instance.extra_env["RPCSERVER_MAX_KEY_LIFETIME"] = "600"
    out = instance.rpcserver("create-api-key", "admin", "--expires-in-days", "1", check=False)
    assert out.returncode == 2 and "at most 600 seconds" in out.stderr
    assert instance.rpcserver("create-api-key", "admin", "--expires", "300").returncode == 0
