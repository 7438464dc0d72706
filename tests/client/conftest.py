"""Fixtures for the client tests: the real `rpc-api` executable, and a stub server.

`rpc_api` runs the installed console script in a subprocess with HOME pointed at a temporary
directory, so the real ~/.config/kallithea is never read or written. The stub server plays the
misbehaving servers a real rpcserver never is (slow, wrong id, HTML error page).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
RPC_API = Path(sys.executable).parent / "rpc-api"


@dataclass
class RpcApi:
    """Runs `rpc-api` like a user's shell would, in an isolated HOME."""

    home: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def config_file(self) -> Path:
        return self.home / ".config" / "kallithea"

    def __call__(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        input: str | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(RPC_API), *args],
            env={**self.env, **(env or {})},
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def json(self, *args: str, **kwargs: Any) -> Any:
        """Run with --format json, insist on success, and parse stdout."""
        done = self("--format", "json", *args, **kwargs)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)


def base_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RPC_API_")}
    env["HOME"] = str(home)
    # The tree under test, also when the virtualenv's editable install predates client/.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env


@pytest.fixture
def rpc_api(tmp_path: Path) -> RpcApi:
    assert RPC_API.exists(), f"{RPC_API} is missing: run `pip install -e .` (make install)"
    home = tmp_path / "home"
    home.mkdir()
    return RpcApi(home=home, env=base_env(home))


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Names that cannot collide in the session-wide live server."""
    return lambda prefix: f"{prefix}-{uuid.uuid4().hex[:10]}"


Responder = Callable[[dict[str, Any]], tuple[int, bytes]]


class StubServer:
    """A loopback HTTP server whose answers the test decides.

    By default it behaves like the API: it echoes the request's id and returns the args as
    the result. `respond` replaces that; `delay` makes every answer late.
    """

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.request_headers: list[dict[str, str]] = []
        self.ports: list[int] = []
        self.respond: Responder = self.echo
        self.delay = 0.0
        self.headers: dict[str, str] = {}
        self.released = threading.Event()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, so connection reuse is visible

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stub.requests.append(body)
                stub.request_headers.append(dict(self.headers))
                stub.ports.append(self.client_address[1])
                if stub.delay:
                    stub.released.wait(stub.delay)
                status, payload = stub.respond(body)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in stub.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @staticmethod
    def echo(body: dict[str, Any]) -> tuple[int, bytes]:
        answer = {"id": body["id"], "result": body["args"], "error": None}
        return 200, json.dumps(answer).encode()

    def close(self) -> None:
        self.released.set()
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def stub_server() -> Iterator[StubServer]:
    server = StubServer()
    yield server
    server.close()


@pytest.fixture
def refused_url() -> str:
    """A loopback URL where nothing listens."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
