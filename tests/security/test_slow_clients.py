"""Slow clients (slowloris) against a real ``rpcserver serve``: hundreds of connections that
trickle their headers or body hold no thread, so everyone else is still answered; a connection
that stops making progress is closed after ``idle_timeout``.

Before the server read requests in an event loop (rpcserver/web/worker.py), eight such connections
held all 2 x 4 request threads and a normal call got no answer for a minute.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.databases import scratch_database, server_url
from tests.server_process import ServerProcess

pytestmark = pytest.mark.e2e

IDLE_TIMEOUT = 3
SLOW_BODIES = 200
SLOW_HEADERS = 100
#: The trickle lasts this long in all; a normal call is made every ``CALL_EVERY`` seconds.
TRICKLE_SECONDS = 8.0
CALL_EVERY = 0.5


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    base: Path = tmp_path_factory.mktemp("slow")
    with scratch_database(base, "slow", server_url()) as url:
        process = ServerProcess(instance=base / "instance", database_url=url,
                                extra_env={"RPCSERVER_IDLE_TIMEOUT": str(IDLE_TIMEOUT)})
        process.start()
        try:
            yield process
        finally:
            process.stop()


def _connect(server: ServerProcess) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=5)
    return sock


def _slow_body(server: ServerProcess) -> socket.socket:
    sock = _connect(server)
    sock.sendall(b"POST /_admin/api HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{")
    return sock


def _slow_headers(server: ServerProcess) -> socket.socket:
    sock = _connect(server)
    sock.sendall(b"POST /_admin/api HTTP/1.1\r\nHost: x\r\n")
    return sock


def test_hundreds_of_slow_clients_do_not_stall_the_server(server: ServerProcess) -> None:
    bodies = [_slow_body(server) for _ in range(SLOW_BODIES)]
    headers = [_slow_headers(server) for _ in range(SLOW_HEADERS)]
    latencies = []
    try:
        deadline = time.monotonic() + TRICKLE_SECONDS
        n = 0
        while time.monotonic() < deadline:
            # Every slow connection makes progress (one byte), so none is idle...
            for sock in bodies:
                sock.sendall(b" ")
            for sock in headers:
                sock.sendall(f"X-{n}: y\r\n".encode())
            n += 1
            # ... and a normal client is answered all the same.
            started = time.monotonic()
            answer = server.call("get_user")
            latencies.append(time.monotonic() - started)
            assert answer["error"] is None, answer
            time.sleep(CALL_EVERY)
        # None of them was cut: each slow body finishes and gets its answer.
        sock = bodies[0]
        sock.sendall(b" " * (100000 - 1 - n))
        reply = sock.recv(65536)
        assert reply.startswith(b"HTTP/1.1 200 "), reply[:100]
    finally:
        for sock in bodies + headers:
            sock.close()
    assert len(latencies) >= 5
    assert max(latencies) < 5.0, latencies


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    sock.settimeout(seconds)
    try:
        return sock.recv(1024) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def test_a_connection_that_stops_making_progress_is_closed(server: ServerProcess) -> None:
    started = time.monotonic()
    stalled_body = _slow_body(server)
    stalled_headers = _slow_headers(server)
    try:
        # idle_timeout, plus the interval at which idle connections are looked for.
        limit = IDLE_TIMEOUT + max(1, IDLE_TIMEOUT // 4) + 3
        assert _closed_within(stalled_body, limit)
        assert _closed_within(stalled_headers, 2)
        assert time.monotonic() - started >= IDLE_TIMEOUT - 0.5
    finally:
        stalled_body.close()
        stalled_headers.close()
    assert server.call("get_user")["error"] is None


def test_a_slow_reader_holds_no_thread(server: ServerProcess) -> None:
    """Clients that send calls and never read the answers: the answers wait in the event
    loop's buffers, not in a thread."""
    body = (b'{"id": 1, "api_key": "%s", "method": "get_user", "args": {}}'
            % server.admin_key.encode())
    request = (b"POST /_admin/api HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
               % len(body)) + body
    sockets = []
    try:
        for _ in range(40):
            sock = _connect(server)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
            sock.sendall(request * 5)  # pipelined; answers never read
            sockets.append(sock)
        answer = requests.post(server.api_url, data=body, timeout=10).json()
        assert answer["error"] is None
    finally:
        for sock in sockets:
            sock.close()
