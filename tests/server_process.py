"""A real ``rpcserver serve`` in a subprocess on a free loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import requests

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_process(process: subprocess.Popen[bytes] | None, log: IO[bytes] | None) -> None:
    """Stop a server gracefully (SIGTERM), killing it after 20 s, and close its log."""
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if log is not None:
        log.close()


@dataclass
class ServerProcess:
    """An initialised instance directory and the server serving it."""

    instance: Path
    database_url: str
    extra_env: dict[str, str] = field(default_factory=dict)
    workers: int = 2
    #: Where the ``rpcserver`` command is (another Python environment's, say).
    bin: Path = BIN
    url: str = ""
    admin_key: str = ""
    process: subprocess.Popen[bytes] | None = None

    @property
    def api_url(self) -> str:
        return self.url + "/_admin/api"

    @property
    def config_path(self) -> Path:
        return self.instance / "rpcserver.toml"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.extra_env)
        env["RPCSERVER_DATABASE_URL"] = self.database_url
        env["RPCSERVER_CONFIG"] = str(self.config_path)
        return env

    def rpcserver(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.bin / "rpcserver"), *args], env=self.env(), text=True,
                              capture_output=True, check=check, timeout=120)

    def start(self) -> ServerProcess:
        if not self.config_path.exists():
            self.admin_key = self.rpcserver("init", str(self.instance)).stdout.strip()
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.log = (self.instance / "server.log").open("ab")
        self.process = subprocess.Popen(
            [str(self.bin / "rpcserver"), "serve", "--bind", f"127.0.0.1:{port}",
             "--workers", str(self.workers)],
            env=self.env(), stdout=self.log, stderr=subprocess.STDOUT)
        self._wait_ready()
        return self

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.read_log()}")
            try:
                requests.post(self.api_url, data=b"{}", timeout=5)
                return
            except (requests.ConnectionError, requests.Timeout):
                # Not listening yet, or booting workers on a busy machine: ask again.
                time.sleep(0.1)
        raise RuntimeError(f"server did not start in {timeout}s: {self.read_log()}")

    def read_log(self) -> str:
        return (self.instance / "server.log").read_text(errors="replace")

    def call(self, method: str, key: str | None = None, **args: object) -> dict[str, object]:
        body: dict[str, Any] = {"id": 1, "api_key": key or self.admin_key, "method": method,
                                "args": args}
        answer: dict[str, object] = requests.post(self.api_url, json=body, timeout=60).json()
        return answer

    def stop(self) -> None:
        stop_process(self.process, getattr(self, "log", None))
