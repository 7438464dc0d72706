"""Hostile git clients against a real ``rpcserver serve``: a truncated pack, a pack of
garbage, bad pkt-lines, a body that trickles in and stops. Each leaves the repository as it
was (refs unchanged, ``git fsck`` clean), and a slow body holds no thread: others are served
meanwhile (docs/serving.md, "Limits")."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.databases import scratch_database, server_url
from tests.server_process import ServerProcess

pytestmark = pytest.mark.e2e


def git_env(home: Path) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
            "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C",
            "GIT_AUTHOR_NAME": "h", "GIT_AUTHOR_EMAIL": "h@example.com",
            "GIT_COMMITTER_NAME": "h", "GIT_COMMITTER_EMAIL": "h@example.com"}


def git(home: Path, *args: str, cwd: Path | None = None, data: bytes | None = None) -> bytes:
    return subprocess.run(["git", *args], cwd=cwd, env=git_env(home), input=data,
                          capture_output=True, check=True, timeout=60).stdout


def pkt(line: bytes) -> bytes:
    return b"%04x" % (len(line) + 4) + line


class Target:
    def __init__(self, server: ServerProcess, home: Path, work: Path) -> None:
        self.server = server
        self.home = home
        self.work = work
        self.repo = server.instance / "repos" / "target"
        pair = base64.b64encode(f"admin:{server.admin_key}".encode()).decode()
        self.auth = f"Basic {pair}"

    def refs(self) -> bytes:
        return git(self.home, "--git-dir", str(self.repo), "for-each-ref")

    def fsck(self) -> None:
        git(self.home, "--git-dir", str(self.repo), "fsck", "--strict", "--no-dangling")

    def post(self, body: bytes) -> requests.Response:
        return requests.post(self.server.url + "/target/git-receive-pack", data=body,
                             headers={"Authorization": self.auth, "Content-Type":
                                      "application/x-git-receive-pack-request"}, timeout=60)


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    base = tmp_path_factory.mktemp("git-hostile")
    with scratch_database(base, "githostile", server_url()) as url:
        server = ServerProcess(instance=base / "instance", database_url=url).start()
        try:
            assert server.call("create_repo", repo_name="target")["error"] is None
            home = base / "home"
            home.mkdir()
            work = base / "work"
            git(home, "init", "-q", "-b", "master", str(work))
            (work / "f").write_text("one\n")
            git(home, "add", "f", cwd=work)
            git(home, "commit", "-qm", "one", cwd=work)
            push_url = server.url.replace("http://", f"http://admin:{server.admin_key}@")
            git(home, "push", "-q", f"{push_url}/target", "HEAD:master", cwd=work)
            yield Target(server, home, work)
        finally:
            server.stop()


def new_commit_pack(target: Target) -> tuple[bytes, bytes, bytes]:
    """(old id, new id, a pack of the new commit) for a push the server has not seen."""
    old = git(target.home, "rev-parse", "HEAD", cwd=target.work).strip()
    (target.work / "f").write_bytes(os.urandom(20000))
    git(target.home, "commit", "-qam", "two", cwd=target.work)
    new = git(target.home, "rev-parse", "HEAD", cwd=target.work).strip()
    pack = git(target.home, "pack-objects", "--stdout", "--revs", "-q", cwd=target.work,
               data=new + b"\n^" + old + b"\n")
    git(target.home, "reset", "-q", "--hard", "HEAD~1", cwd=target.work)
    return old, new, pack


def command(old: bytes, new: bytes) -> bytes:
    return pkt(old + b" " + new + b" refs/heads/master\0report-status\n") + b"0000"


@pytest.mark.parametrize("attack", ["truncated pack", "garbage pack", "bad pkt-lines",
                                    "command without pack", "pack for another id"])
def test_a_broken_push_leaves_the_repository_as_it_was(target: Target, attack: str) -> None:
    before = target.refs()
    old, new, pack = new_commit_pack(target)
    body = {
        "truncated pack": command(old, new) + pack[:len(pack) // 2],
        "garbage pack": command(old, new) + b"PACK" + os.urandom(5000),
        "bad pkt-lines": b"zzzz" + os.urandom(100) + b"0000",
        "command without pack": command(old, new),
        "pack for another id": command(old, b"1" * 40) + pack,
    }[attack]
    response = target.post(body)
    assert response.status_code in (200, 400, 500), response.status_code
    if response.status_code == 200:
        assert b"ok refs/heads/master" not in response.content
    assert target.refs() == before
    target.fsck()


def test_a_trickling_body_holds_no_thread_and_changes_nothing(target: Target) -> None:
    before = target.refs()
    old, new, pack = new_commit_pack(target)
    body = command(old, new) + pack
    host, port = target.server.url.removeprefix("http://").split(":")
    sockets = []
    # More slow pushers than the server has threads (2 workers x 4).
    for _ in range(12):
        sock = socket.create_connection((host, int(port)), timeout=10)
        sock.sendall(b"POST /target/git-receive-pack HTTP/1.1\r\nHost: x\r\n"
                     b"Authorization: " + target.auth.encode() + b"\r\n"
                     b"Content-Type: application/x-git-receive-pack-request\r\n"
                     b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n")
        sockets.append(sock)
    try:
        started = time.monotonic()
        sent = 0
        while time.monotonic() - started < 3:
            for sock in sockets:
                sock.sendall(body[sent:sent + 7])
            sent += 7
            ls = subprocess.run(["git", "ls-remote",
                                 target.server.url.replace(
                                     "http://", f"http://admin:{target.server.admin_key}@")
                                 + "/target"],
                                env=git_env(target.home), capture_output=True, timeout=10)
            assert ls.returncode == 0, ls.stderr
            time.sleep(0.2)
        assert sent < len(body)
    finally:
        for sock in sockets:
            sock.close()
    time.sleep(0.5)
    assert target.refs() == before
    target.fsck()


def test_the_same_push_made_whole_lands(target: Target) -> None:
    """The control: the bodies above are broken versions of one that works."""
    old, new, pack = new_commit_pack(target)
    response = target.post(command(old, new) + pack)
    assert response.status_code == 200
    assert b"ok refs/heads/master" in response.content
    assert new in target.refs()
    target.fsck()


def test_a_push_without_credentials_is_refused_before_its_body(target: Target) -> None:
    """Over ``max_body_bytes`` and without credentials: 401 as soon as the headers are in,
    the 100 MB never sent (it could never be allowed)."""
    host, port = target.server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"POST /target/git-receive-pack HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/x-git-receive-pack-request\r\n"
                     b"Content-Length: 104857600\r\n\r\n" + b"0" * 1000)
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 401 "), answer[:200]
    assert b"www-authenticate: basic" in answer.lower()
