"""The progress indicator: on a terminal's stderr for slow calls, never in pipes or quick calls."""

from __future__ import annotations

import json
import os
import pty
import subprocess

from client.progress import ERASE_LINE
from tests.client.conftest import RPC_API, RpcApi, StubServer


def run_with_tty_stderr(rpc_api: RpcApi, *args: str) -> tuple[int, str, str]:
    """Run rpc-api with stderr on a pseudo-terminal and stdout on a pipe, as `rpc-api | jq`."""
    master, slave = pty.openpty()
    try:
        process = subprocess.Popen(
            [str(RPC_API), *args], env=rpc_api.env, stdout=subprocess.PIPE, stderr=slave
        )
        os.close(slave)
        chunks = []
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert process.stdout is not None
        stdout = process.stdout.read().decode()
        process.stdout.close()
        code = process.wait(timeout=30)
    finally:
        os.close(master)
    return code, stdout, b"".join(chunks).decode()


def test_slow_call_shows_progress_on_a_terminal(rpc_api: RpcApi, stub_server: StubServer) -> None:
    stub_server.delay = 1.8
    code, stdout, tty = run_with_tty_stderr(
        rpc_api, f"--apihost={stub_server.url}", "--apikey=k", "--format=json", "pull", "repoid:r"
    )
    assert code == 0
    assert json.loads(stdout) == {"repoid": "r"}  # stdout stays clean for jq
    assert "waiting for pull (1s)" in tty
    assert tty.endswith(ERASE_LINE)  # erased before the result appears


def test_quick_call_shows_no_progress(rpc_api: RpcApi, stub_server: StubServer) -> None:
    code, stdout, tty = run_with_tty_stderr(
        rpc_api, f"--apihost={stub_server.url}", "--apikey=k", "--format=json", "test", "args:1"
    )
    assert code == 0
    assert json.loads(stdout) == {"args": "1"}
    assert tty == ""


def test_slow_call_shows_no_progress_without_a_terminal(
    rpc_api: RpcApi, stub_server: StubServer
) -> None:
    stub_server.delay = 1.5
    done = rpc_api(f"--apihost={stub_server.url}", "--apikey=k", "pull", "repoid:r")
    assert done.returncode == 0
    assert done.stderr == f"Calling method pull => {stub_server.url}/_admin/api\n"
