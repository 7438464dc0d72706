"""Fixtures for the compatibility tests: Kallithea 0.7.0's own `kallithea-api`, and a server
that may pull from loopback remotes.

`kallithea-api` comes from PyPI into `.venv-kallithea` (`make kallithea-client`, which `make
test` runs). If it is missing, the tests fail when `CI` is set and are skipped otherwise, with
the command that installs it. `KALLITHEA_API` may name another `kallithea-api` executable.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.databases import scratch_database, server_url
from tests.gitremotes import GitDaemon, Upstream
from tests.server_process import ServerProcess

REPO_ROOT = Path(__file__).resolve().parents[2]
KALLITHEA_API = Path(
    os.environ.get("KALLITHEA_API") or REPO_ROOT / ".venv-kallithea" / "bin" / "kallithea-api"
)


@dataclass
class KallitheaApi:
    """Runs Kallithea's `kallithea-api` as a user's shell would, with HOME in a temporary
    directory (so the real ~/.config/kallithea is never read or written)."""

    home: Path
    env: dict[str, str]

    @property
    def config_file(self) -> Path:
        return self.home / ".config" / "kallithea"

    def __call__(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(KALLITHEA_API), *args], env=self.env, capture_output=True,
                              text=True, timeout=timeout, check=False)

    def json(self, *args: str) -> Any:
        """`kallithea-api --format=json ...`: insist on a clean run and parse stdout.

        kallithea-api prints the *error text* the same way as a result (and exits 0), so a
        caller that expects a result must check it is not an error string (see `result`)."""
        done = self("--format=json", *args)
        assert done.returncode == 0, done.stderr
        assert done.stderr == ""
        return json.loads(done.stdout)

    def result(self, *args: str) -> Any:
        """Like `json`, for calls that must succeed: a bare string back is the server's error."""
        value = self.json(*args)
        assert not isinstance(value, str), f"server answered an error: {value}"
        return value


def client_env(home: Path) -> dict[str, str]:
    """A plain user's environment: no proxies, no Python or virtualenv variables of ours."""
    env = {"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env


def require_client() -> None:
    if KALLITHEA_API.exists():
        return
    why = (f"Kallithea's client is not installed ({KALLITHEA_API} is missing): "
           "run `make kallithea-client` (`make test` does)")
    if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
        pytest.fail(why, pytrace=False)
    pytest.skip(why)


@pytest.fixture
def kallithea_api(tmp_path: Path) -> KallitheaApi:
    """`kallithea-api` in a fresh HOME that has a ~/.config directory (kallithea-api does not
    create it: see test_save_config_without_config_directory)."""
    require_client()
    home = tmp_path / "home"
    (home / ".config").mkdir(parents=True)
    return KallitheaApi(home=home, env=client_env(home))


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Names that cannot collide in the session-wide servers."""
    return lambda prefix: f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass
class Mirrors:
    """A `git daemon` on loopback serving `upstream` (three commits on master)."""

    daemon: GitDaemon
    upstream: Upstream

    @property
    def url(self) -> str:
        return self.daemon.url("up")


@pytest.fixture(scope="session")
def mirrors(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mirrors]:
    base = tmp_path_factory.mktemp("compat-remotes")
    upstream = Upstream(base / "up")
    upstream.commit(3)
    daemon = GitDaemon(base).start()
    try:
        yield Mirrors(daemon, upstream)
    finally:
        daemon.stop()


@pytest.fixture(scope="session")
def mirror_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A real server like `live_server` that may pull from loopback (where `mirrors` is);
    the shared `live_server` refuses private hosts, as a default install does."""
    base = tmp_path_factory.mktemp("compat-live")
    with scratch_database(base, "compat", server_url()) as url:
        server = ServerProcess(
            instance=base / "instance", database_url=url,
            extra_env={"RPCSERVER_CLONE_URI_ALLOW_PRIVATE_HOSTS": "true"},
        ).start()
        try:
            yield server
        finally:
            server.stop()

