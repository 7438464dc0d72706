"""Fixtures for the differential suite: a real Kallithea 0.7.0 server and our rpcserver, both
fresh for the session, both on a free 127.0.0.1 port, and the loopback remotes both clone
from: a `git daemon`, and `hg serve` of an hg upstream.

Kallithea comes from `make kallithea-server` (tests/differential/install-kallithea.sh), which
builds it into a cache outside the clone (`${XDG_CACHE_HOME:-~/.cache}/rpcserver/
kallithea-0.7.0/venv`; `KALLITHEA_SERVER_VENV` names another). If it is missing, the suite fails
when `CI` is set and is skipped otherwise, with the command that builds it. Kallithea always
runs on SQLite; rpcserver runs on the pass's database (`server_url()`), so this suite runs in
the PostgreSQL pass too (tests/conftest.py, `touches_database`).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.databases import scratch_database, server_url
from tests.gitremotes import GitDaemon, Upstream
from tests.hgremotes import HgServe, HgUpstream
from tests.server_process import ServerProcess, free_port, stop_process

CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
KALLITHEA_VENV = Path(os.environ.get("KALLITHEA_SERVER_VENV")
                      or CACHE / "rpcserver" / "kallithea-0.7.0" / "venv")
ADMIN_PASSWORD = "Adm1nPassw0rd!"  # a throw-away server's


def require_kallithea() -> None:
    if (KALLITHEA_VENV / "bin" / "gearbox").exists():
        return
    why = (f"Kallithea 0.7.0's server is not installed ({KALLITHEA_VENV} is missing): "
           "run `make kallithea-server` (`make test` does)")
    if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
        pytest.fail(why, pytrace=False)
    pytest.skip(why)


@dataclass
class Kallithea:
    """A Kallithea 0.7.0 (`gearbox serve`, waitress) on a fresh SQLite database."""

    base: Path
    url: str = ""
    admin_key: str = ""
    process: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def api_url(self) -> str:
        return self.url + "/_admin/api"

    @property
    def db(self) -> Path:
        return self.base / "kallithea.db"

    def cli(self, *args: str) -> None:
        subprocess.run([str(KALLITHEA_VENV / "bin" / "kallithea-cli"), *args], cwd=self.base,
                       env=self.env, check=True, capture_output=True, timeout=120)

    def start(self) -> Kallithea:
        home = self.base / "home"
        home.mkdir(parents=True)
        (self.base / "repos").mkdir()
        self.env = {"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                    "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "GIT_CONFIG_NOSYSTEM": "1",
                    "NO_PROXY": "*", "no_proxy": "*",
                    # Kallithea lists sets (unknown args, permissions): one order every run
                    "PYTHONHASHSEED": "0"}
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.cli("config-create", "my.ini", "host=127.0.0.1", f"port={port}")
        self.cli("db-create", "-c", "my.ini", "--user", "admin", "--password", ADMIN_PASSWORD,
                 "--email", "admin@example.com", "--repos", str(self.base / "repos"),
                 "--force-yes")
        self.admin_key = self.api_key("admin")
        self.log = (self.base / "server.log").open("ab")
        self.process = subprocess.Popen(
            [str(KALLITHEA_VENV / "bin" / "gearbox"), "serve", "-c", "my.ini"],
            cwd=self.base, env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        self._wait_ready()
        return self

    def api_key(self, username: str) -> str:
        """The user's API key, as Kallithea keeps it (in plain text, in `users`)."""
        with sqlite3.connect(self.db) as con:
            row = con.execute("SELECT api_key FROM users WHERE username = ?",
                              (username,)).fetchone()
        assert row is not None, f"no user {username} in Kallithea"
        return str(row[0])

    def _wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        body: dict[str, Any] = {"id": 0, "api_key": self.admin_key, "method": "test",
                                "args": {"args": "up"}}
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"Kallithea exited: {self.read_log()[-3000:]}")
            try:
                if requests.post(self.api_url, json=body, timeout=5).ok:
                    return
            except (requests.ConnectionError, requests.Timeout):
                time.sleep(0.2)
        raise RuntimeError(f"Kallithea did not answer in {timeout}s: {self.read_log()[-3000:]}")

    def read_log(self) -> str:
        return (self.base / "server.log").read_text(errors="replace")

    def stop(self) -> None:
        stop_process(self.process, getattr(self, "log", None))


@pytest.fixture(scope="session")
def kallithea(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kallithea]:
    require_kallithea()
    server = Kallithea(tmp_path_factory.mktemp("kallithea")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def ours(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """rpcserver as `live_server` starts it, allowed to clone from loopback (the daemon)."""
    base = tmp_path_factory.mktemp("differential-ours")
    with scratch_database(base, "diff", server_url()) as url:
        server = ServerProcess(
            instance=base / "instance", database_url=url,
            extra_env={"RPCSERVER_CLONE_URI_ALLOW_PRIVATE_HOSTS": "true"},
        ).start()
        try:
            yield server
        finally:
            server.stop()


@dataclass
class Remote:
    """`up`: the git repository both servers clone (`git://127.0.0.1:<port>/up`); `hg`: the hg
    one (`http://127.0.0.1:<port>/`, `hg serve`)."""

    daemon: GitDaemon
    upstream: Upstream
    hg: HgUpstream
    hg_serve: HgServe


@pytest.fixture(scope="session")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Remote]:
    base = tmp_path_factory.mktemp("differential-remotes")
    hg_up = HgUpstream(base / "hgup")
    daemon = GitDaemon(base).start()
    hg_serve = HgServe(hg_up.path).start()
    try:
        yield Remote(daemon, Upstream(base / "up"), hg_up, hg_serve)
    finally:
        hg_serve.stop()
        daemon.stop()
