"""HTTP framing on the wire, against a real ``rpcserver serve``: which requests reach the API
(and so are answered HTTP 200 with the JSON envelope) and which the HTTP layer refuses before
(docs/protocol.md, "What is always answered 200")."""

from __future__ import annotations

import contextlib
import json
import socket

import pytest

from tests.server_process import ServerProcess

pytestmark = pytest.mark.e2e

HEAD = b"POST /_admin/api HTTP/1.1\r\nHost: x\r\n"


def exchange(server: ServerProcess, data: bytes) -> tuple[int, bytes, bytes]:
    """Send ``data``, read until the server closes: (status, headers, body)."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        # The server may answer and close before it has read everything (an oversized
        # header): the answer is still there to read.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError, OSError):
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
    head, _, body = out.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, head, body


REACH_THE_API = {
    "content-length": HEAD + b"Content-Length: 2\r\n\r\n{}",
    "chunked": HEAD + b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
    "HTTP/1.0 without Host": b"POST /_admin/api HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}",
    "absolute URI": b"POST http://x/_admin/api HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
    "a query string": b"POST /_admin/api?x=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
}


@pytest.mark.parametrize("data", REACH_THE_API.values(), ids=REACH_THE_API.keys())
def test_well_framed_requests_get_the_envelope(live_server: ServerProcess, data: bytes) -> None:
    status, head, body = exchange(live_server, data)
    assert status == 200
    assert b"Content-Type: application/json" in head
    assert json.loads(body)["error"] == "Incorrect JSON query missing 'api_key'"


REFUSED = {
    "two Content-Lengths": (HEAD + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}x", 400),
    "chunked and Content-Length": (
        HEAD + b"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", 400),
    "Content-Length not a number": (HEAD + b"Content-Length: abc\r\n\r\n", 400),
    "negative Content-Length": (HEAD + b"Content-Length: -1\r\n\r\n", 400),
    "bad chunk size": (HEAD + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n", 400),
    "not HTTP": (b"GARBAGE\r\n\r\n", 400),
    "space before colon": (HEAD + b"Content-Length : 2\r\n\r\n{}", 400),
    "control character in a header": (HEAD + b"X-A: a\x01b\r\nContent-Length: 2\r\n\r\n{}", 400),
    # Exactly 64 KiB, all of which the server reads before it answers: more would be unread
    # when it closes, and the kernel would reset the connection before the answer is read.
    "headers over 64 KiB": (HEAD + b"X: " + b"a" * (65536 - len(HEAD) - 3), 431),
    "Transfer-Encoding other than chunked": (HEAD + b"Transfer-Encoding: gzip\r\n\r\n", 501),
}


@pytest.mark.parametrize("data,status", REFUSED.values(), ids=REFUSED.keys())
def test_badly_framed_requests_are_refused_by_the_http_layer(live_server: ServerProcess,
                                                             data: bytes, status: int) -> None:
    got, head, body = exchange(live_server, data)
    assert got == status
    assert b"Content-Type: text/plain" in head
    assert b"Traceback" not in body
    assert live_server.call("get_user")["error"] is None  # and nothing else is disturbed


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_body_over_the_limit_gets_the_envelope_unread(live_server: ServerProcess,
                                                         framing: str) -> None:
    size = 1024 * 1024 + 65536  # the default limit is 1 MiB
    if framing == "content-length":
        # Answered from the headers alone: the body is never read.
        data = HEAD + b"Content-Length: %d\r\n\r\n" % (100 * size) + b" " * 1000
    else:
        chunk = b" " * 65536
        data = HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + (
            b"%x\r\n%s\r\n" % (len(chunk), chunk)) * (size // len(chunk)) + b"0\r\n\r\n"
    try:
        status, _head, body = exchange(live_server, data)
    except (BrokenPipeError, ConnectionResetError):
        pytest.fail("the server closed the connection before answering")
    assert status == 200
    assert json.loads(body) == {"id": None, "result": None, "error": "Request body too large"}
