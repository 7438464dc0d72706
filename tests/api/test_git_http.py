"""git's smart HTTP in-process (werkzeug's client; git http-backend really runs): what each
refusal answers, that hidden and absent look alike, the password cache, the failure limit,
gzip bodies, a busy repository and an oversized push (docs/serving.md)."""

from __future__ import annotations

import base64
import dataclasses
import gzip
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import Client

from rpcserver.core.config import Config
from rpcserver.core.registry import Registry
from rpcserver.db.database import Database
from rpcserver.domain import git_login
from rpcserver.vcs.store import Store
from rpcserver.web.app import create_app
from tests.conftest import ApiUser, Rpc

ADVERTISE = "/info/refs?service=git-upload-pack"
PUSH_ADVERTISE = "/info/refs?service=git-receive-pack"


def basic(username: str, secret: str) -> dict[str, str]:
    pair = base64.b64encode(f"{username}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {pair}"}


@pytest.fixture
def git_client(config: Config, db: Database, registry: Registry) -> Callable[..., Client]:
    """A client of an app built with these config changes."""

    def make(**changes: Any) -> Client:
        app = create_app(dataclasses.replace(config, **changes), registry=registry, db=db)

        def from_loopback(environ: dict[str, Any], start_response: Any) -> Any:
            environ.setdefault("REMOTE_ADDR", "127.0.0.1")
            return app(environ, start_response)

        return Client(from_loopback)

    return make


def ok(answer: dict[str, Any]) -> Any:
    assert answer["error"] is None, answer
    return answer["result"]


def test_refusals_and_what_they_answer(rpc: Rpc, client: Client, admin_key: str,
                                       make_user: Callable[..., ApiUser]) -> None:
    ok(rpc("create_repo", repo_name="priv", private=True))
    bob = make_user("bob")
    admin = basic("admin", admin_key)
    # Anonymous: 401 and a Basic challenge, for a hidden and an absent repository alike.
    hidden = client.get("/priv" + ADVERTISE)
    absent = client.get("/absent" + ADVERTISE)
    for response in (hidden, absent):
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Basic ")
    assert hidden.data == absent.data
    # Authenticated without read: 404, the same body as for no repository at all.
    hidden = client.get("/priv" + ADVERTISE, headers=basic("bob", bob.key))
    absent = client.get("/absent" + ADVERTISE, headers=basic("bob", bob.key))
    assert hidden.status_code == absent.status_code == 404
    assert hidden.data == absent.data
    assert hidden.headers.get("Content-Type") == absent.headers.get("Content-Type")
    # With read: the advertisement; a push is 403.
    ok(rpc("grant_user_permission", repoid="priv", userid="bob", perm="repository.read"))
    response = client.get("/priv" + ADVERTISE, headers=basic("bob", bob.key))
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/x-git-upload-pack-advertisement"
    assert client.get("/priv" + PUSH_ADVERTISE, headers=basic("bob", bob.key)).status_code == 403
    assert client.post("/priv/git-receive-pack", data=b"0000",
                       headers=basic("bob", bob.key)).status_code == 403
    assert client.get("/priv" + PUSH_ADVERTISE, headers=admin).status_code == 200
    # Smart HTTP only; and nothing under /_admin/ is a repository.
    assert client.get("/priv/info/refs", headers=admin).status_code == 403
    assert client.get("/priv/HEAD", headers=admin).status_code == 404
    assert client.post("/priv/info/refs?service=git-upload-pack",
                       headers=admin).status_code == 405
    assert client.get("/priv/git-upload-pack", headers=admin).status_code == 405
    assert client.get("/_admin/x" + ADVERTISE, headers=admin).status_code == 404
    # A wrong key is a 401 too (git asks again).
    assert client.get("/priv" + ADVERTISE,
                      headers=basic("bob", bob.key[:-1] + "x")).status_code == 401


def test_a_password_is_checked_once_while_cached(rpc: Rpc, git_client: Callable[..., Client],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    ok(rpc("create_user", username="carol", email="carol@example.com",
           password="correct horse"))
    ok(rpc("create_repo", repo_name="pub", owner="carol"))
    calls: list[str] = []
    real = git_login.verify_password

    def counting(stored: str | None, password: str) -> bool:
        calls.append(password)
        return real(stored, password)

    monkeypatch.setattr(git_login, "verify_password", counting)
    client = git_client()
    for _ in range(3):
        response = client.get("/pub" + ADVERTISE, headers=basic("carol", "correct horse"))
        assert response.status_code == 200
    assert len(calls) == 1
    assert client.get("/pub" + ADVERTISE,
                      headers=basic("carol", "wrong horse")).status_code == 401
    # A changed password misses the cache at once (the stored hash is part of the digest).
    ok(rpc("update_user", userid="carol", password="new horse"))
    assert client.get("/pub" + ADVERTISE,
                      headers=basic("carol", "correct horse")).status_code == 401
    assert client.get("/pub" + ADVERTISE,
                      headers=basic("carol", "new horse")).status_code == 200
    # Without the cache every request pays the hash.
    calls.clear()
    uncached = git_client(password_cache_seconds=0)
    for _ in range(2):
        uncached.get("/pub" + ADVERTISE, headers=basic("carol", "new horse"))
    assert len(calls) == 2
    # An inactive user's right password is refused.
    ok(rpc("update_user", userid="carol", active=False))
    assert client.get("/pub" + ADVERTISE,
                      headers=basic("carol", "new horse")).status_code == 401


def test_failed_logins_are_limited_as_for_the_api(rpc: Rpc, admin_key: str,
                                                  git_client: Callable[..., Client]) -> None:
    ok(rpc("create_repo", repo_name="pub"))
    client = git_client(max_failed_logins=3)
    for _ in range(3):
        assert client.get("/pub" + ADVERTISE,
                          headers=basic("admin", "wrong")).status_code == 401
    response = client.get("/pub" + ADVERTISE, headers=basic("admin", admin_key))
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) >= 1
    assert b"too many failed logins" in response.data


def commit_into(config: Config, name: str, tmp_path: Path) -> str:
    """A commit pushed straight into repository ``name`` on disk; its id."""
    work = tmp_path / "work"
    env = {"GIT_CONFIG_NOSYSTEM": "1", "HOME": str(tmp_path), "PATH": "/usr/bin:/bin",
           "GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@example.com",
           "GIT_COMMITTER_NAME": "a", "GIT_COMMITTER_EMAIL": "a@example.com"}

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=work, env=env, check=True,
                              capture_output=True, text=True).stdout.strip()

    work.mkdir()
    git("init", "-q", "-b", "master")
    (work / "f").write_text("content\n")
    git("add", "f")
    git("commit", "-qm", "one")
    git("push", "-q", str(Path(config.repos_root) / name), "HEAD:master")
    return git("rev-parse", "HEAD")


def pkt(line: str) -> bytes:
    return f"{len(line) + 4:04x}{line}".encode()


def test_a_gzip_request_body_is_accepted(rpc: Rpc, client: Client, admin_key: str,
                                         config: Config, tmp_path: Path) -> None:
    ok(rpc("create_repo", repo_name="pub"))
    head = commit_into(config, "pub", tmp_path)
    body = pkt(f"want {head}\n") + b"0000" + pkt("done\n")
    response = client.post("/pub/git-upload-pack", data=gzip.compress(body),
                           headers={**basic("admin", admin_key), "Content-Encoding": "gzip",
                                    "Content-Type": "application/x-git-upload-pack-request"})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/x-git-upload-pack-result"
    assert b"PACK" in response.data


def test_a_push_waits_for_the_repository_lock(rpc: Rpc, admin_key: str, config: Config,
                                              git_client: Callable[..., Client]) -> None:
    repo = ok(rpc("create_repo", repo_name="pub"))
    repo_id = ok(rpc("get_repo", repoid="pub"))["repo_id"]
    assert repo
    client = git_client(git_timeout=1)
    lock = Store.at(config.repos_root).lock(repo_id)
    with lock.held(0):
        response = client.post("/pub/git-receive-pack", data=b"0000",
                               headers={**basic("admin", admin_key), "Content-Type":
                                        "application/x-git-receive-pack-request"})
    assert response.status_code == 503
    assert b"is busy" in response.data


def test_a_push_over_max_push_bytes_is_refused(rpc: Rpc, admin_key: str,
                                               git_client: Callable[..., Client]) -> None:
    ok(rpc("create_repo", repo_name="pub"))
    client = git_client(max_push_bytes=4096)
    response = client.post("/pub/git-receive-pack", data=b"0" * 5000,
                           headers=basic("admin", admin_key))
    assert response.status_code == 413


def test_a_cached_password_expires(rpc: Rpc, db: Database,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from rpcserver.domain.auth import KeyLookup

    ok(rpc("create_user", username="dora", email="dora@example.com", password="pw-dora"))
    now = [1000.0]
    login = git_login.GitLogin(db, KeyLookup(db.read_engine or db.engine), 60,
                               clock=lambda: now[0])
    calls: list[str] = []
    real = git_login.verify_password
    def counting(stored: str | None, password: str) -> bool:
        calls.append(password)
        return real(stored, password)

    monkeypatch.setattr(git_login, "verify_password", counting)
    assert login.authenticate("dora", "pw-dora", "127.0.0.1").actor.username == "dora"
    now[0] += 59
    login.authenticate("dora", "pw-dora", "127.0.0.1")
    assert len(calls) == 1
    now[0] += 2
    login.authenticate("dora", "pw-dora", "127.0.0.1")
    assert len(calls) == 2
    assert all(b"pw-dora" not in digest for digest in login._cache)


def test_anonymous_clone_is_a_switch(rpc: Rpc, git_client: Callable[..., Client]) -> None:
    ok(rpc("create_repo", repo_name="pub"))
    ok(rpc("create_repo", repo_name="priv", private=True))
    off = git_client()
    assert off.get("/pub" + ADVERTISE).status_code == 401
    on = git_client(anonymous_clone=True)
    assert on.get("/pub" + ADVERTISE).status_code == 200
    hidden, absent = on.get("/priv" + ADVERTISE), on.get("/absent" + ADVERTISE)
    assert hidden.status_code == absent.status_code == 401
    assert hidden.data == absent.data
    # Never a push without credentials, and the body is not read for it.
    assert on.get("/pub" + PUSH_ADVERTISE).status_code == 401
    assert on.post("/pub/git-receive-pack", data=b"0000").status_code == 401
    # What default may not read stays closed: revoke its read on the public repository.
    ok(rpc("grant_user_permission", repoid="pub", userid="default", perm="repository.none"))
    assert on.get("/pub" + ADVERTISE).status_code == 401


def test_keys_are_checked_as_for_the_api(rpc: Rpc, client: Client) -> None:
    ok(rpc("create_user", username="erin", email="erin@example.com"))
    ok(rpc("create_repo", repo_name="pub"))
    good = ok(rpc("create_api_key", userid="erin"))["api_key"]
    revoked = ok(rpc("create_api_key", userid="erin"))
    ok(rpc("revoke_api_key", key_id=revoked["key"]["key_id"]))
    fenced = ok(rpc("create_api_key", userid="erin", ip_ranges=["192.0.2.0/24"]))["api_key"]
    assert client.get("/pub" + ADVERTISE, headers=basic("erin", good)).status_code == 200
    for key in (revoked["api_key"], fenced):
        assert client.get("/pub" + ADVERTISE, headers=basic("erin", key)).status_code == 401
    # The username must be the key's user's; Bearer needs none.
    assert client.get("/pub" + ADVERTISE, headers=basic("admin", good)).status_code == 401
    assert client.get("/pub" + ADVERTISE,
                      headers={"Authorization": f"Bearer {good}"}).status_code == 200
    ok(rpc("update_user", userid="erin", active=False))
    assert client.get("/pub" + ADVERTISE, headers=basic("erin", good)).status_code == 401
