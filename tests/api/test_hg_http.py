"""hg's wire protocol through the app in-process: the answers that need no hg client (a server
without Mercurial, a push too large, commands that are not served). The real client's tests
are tests/e2e/test_hg_serving.py."""

from __future__ import annotations

import base64
import dataclasses
from typing import Any

from werkzeug.test import Client

from rpcserver.core.config import Config
from rpcserver.core.registry import Registry
from rpcserver.db.database import Database
from rpcserver.vcs.hg.command import Hg, HgMissing
from rpcserver.web.app import create_app
from rpcserver.web.hg_http import HgHttp
from tests.conftest import Rpc


def basic(username: str, secret: str) -> dict[str, str]:
    pair = base64.b64encode(f"{username}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {pair}"}


def client_of(app: Any) -> Client:
    def from_loopback(environ: dict[str, Any], start_response: Any) -> Any:
        environ.setdefault("REMOTE_ADDR", "127.0.0.1")
        return app(environ, start_response)

    return Client(from_loopback)


def test_a_server_without_mercurial_says_so(rpc: Rpc, config: Config, db: Database,
                                            registry: Registry, admin_key: str) -> None:
    """``find_hg`` is what the server does when Mercurial is absent: ``locate`` raises
    ``HgMissing`` (this Python has Mercurial, so the test hands the app that failure)."""
    assert rpc("create_repo", repo_name="h", repo_type="hg")["error"] is None
    app = create_app(config, registry=registry, db=db)
    text = "Mercurial was not found in the server's Python (pip install 'mercurial>=6.4')"

    def missing() -> Hg:
        raise HgMissing(text)

    app.hg = HgHttp(config, app.git.gate, find_hg=missing)
    client = client_of(app)
    response = client.get("/h?cmd=capabilities", headers=basic("admin", admin_key))
    assert response.status_code == 503
    assert response.get_data(as_text=True) == text + "\n"
    assert response.status == f"503 {text}"  # hg shows the reason phrase
    # Who may not read still learns nothing, and git is served as ever.
    assert client.get("/h?cmd=capabilities").status_code == 401
    assert rpc("create_repo", repo_name="g")["error"] is None
    assert client.get("/g/info/refs?service=git-upload-pack",
                      headers=basic("admin", admin_key)).status_code == 200


def test_a_push_too_large_and_commands_not_served(rpc: Rpc, config: Config, db: Database,
                                                  registry: Registry, admin_key: str) -> None:
    assert rpc("create_repo", repo_name="h", repo_type="hg")["error"] is None
    app = create_app(dataclasses.replace(config, max_push_bytes=100), registry=registry, db=db)
    client = client_of(app)
    admin = basic("admin", admin_key)
    big = client.post("/h?cmd=unbundle", data=b"x" * 101, headers=admin)
    assert big.status_code == 413
    refused = client.get("/h?cmd=changelog", headers=admin)
    assert refused.status_code == 400
    assert "wire protocol" in refused.get_data(as_text=True)
    assert client.get("/h?cmd=capabilities", headers=admin).status_code == 200
