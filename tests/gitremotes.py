"""Real git remotes on loopback for the tests and the benchmark: no mocks.

- ``Upstream``: a bare repository that grows commits quickly (``git fast-import``).
- ``GitDaemon``: ``git daemon`` serving a directory over ``git://`` on a free port.
- ``SmartHttp``: git's smart-HTTP backend (``git http-backend``, run as CGI) behind a tiny
  threaded HTTP server, with optional basic auth and switchable misbehaviour (stall, die
  half-way through the pack, delete the repository between the ref advertisement and the pack).
- ``Blackhole``: a TCP port that accepts connections and never answers (timeouts).
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

GIT = shutil.which("git") or "git"
#: 2024-01-01T00:00:00Z; commit n is made n minutes later, so dates are predictable.
EPOCH = 1_704_067_200


def git_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull, LC_ALL="C")
    return env


def git(*args: str, git_dir: Path | None = None, input: bytes | None = None) -> str:
    argv = [GIT]
    if git_dir is not None:
        argv.append(f"--git-dir={git_dir}")
    out = subprocess.run([*argv, *args], input=input, capture_output=True, check=True,
                         env=git_env())
    return out.stdout.decode()


def wide_commit(git_dir: Path, files: int, *, dirs: int = 0) -> str:
    """Make ``master`` of the bare ``git_dir`` one commit adding ``files`` files (and ``dirs``
    directories of one file each), through mktree: fast-import is quadratic in a tree's width."""
    blob = git("hash-object", "-w", "--stdin", git_dir=git_dir, input=b"x\n").strip()
    inner = git("mktree", git_dir=git_dir, input=f"100644 blob {blob}\tf\n".encode()).strip()
    lines = [f"100644 blob {blob}\tf{i:06d}\n" for i in range(files)]
    lines += [f"040000 tree {inner}\td{i:06d}\n" for i in range(dirs)]
    tree = git("mktree", git_dir=git_dir, input="".join(lines).encode()).strip()
    stamp = f"{EPOCH} +0000"
    env_args = ("-c", "user.name=C", "-c", "user.email=c@example.com")
    argv = [GIT, f"--git-dir={git_dir}", *env_args, "commit-tree", tree, "-m", "wide"]
    commit = subprocess.run(argv, capture_output=True, check=True, text=True,
                            env={**git_env(), "GIT_AUTHOR_DATE": stamp,
                                 "GIT_COMMITTER_DATE": stamp}).stdout.strip()
    git("update-ref", "refs/heads/master", commit, git_dir=git_dir)
    return commit


class Upstream:
    """A bare repository we add commits to; what the server pulls from."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.made = 0
        path.mkdir(parents=True, exist_ok=True)
        git("init", "--bare", "--quiet", "--initial-branch=master", str(path))

    def commit(self, n: int = 1, *, branch: str = "master", files: int = 1,
               prefix: str = "change", base: str | None = None) -> list[str]:
        """Add ``n`` commits on ``branch`` (each touching ``files`` files); their ids.

        A new branch starts from ``base`` (a ref or id), else as a root commit."""
        parent = self.ref(f"refs/heads/{branch}") or (self.ref(base) if base else None)
        chunks: list[bytes] = []
        for i in range(n):
            self.made += 1
            when = EPOCH + 60 * self.made
            message = f"{prefix} {self.made}\n\nbody of commit {self.made}\n".encode()
            lines = [f"commit refs/heads/{branch}", f"mark :{i + 1}",
                     f"author A U Thor <author@example.com> {when} +0000",
                     f"committer C O Mitter <committer@example.com> {when} +0000",
                     f"data {len(message)}"]
            chunks.append("\n".join(lines).encode() + b"\n" + message)
            if i == 0 and parent:
                chunks.append(f"from {parent}\n".encode())
            for f in range(files):
                content = f"{branch} {self.made} {f}\n".encode()
                path = f"dir{f % 7}/file{f}.txt" if files > 1 else f"{branch}.txt"
                chunks.append(f"M 100644 inline {path}\ndata {len(content)}\n".encode()
                              + content + b"\n")
            chunks.append(b"\n")
        marks = self.path / "marks.tmp"
        git("fast-import", "--quiet", f"--export-marks={marks}", git_dir=self.path,
            input=b"".join(chunks))
        ids = [line.split()[1] for line in marks.read_text().splitlines()]
        marks.unlink()
        return ids

    def tag(self, name: str, target: str = "master", message: str | None = None) -> None:
        if message is None:
            git("tag", name, target, git_dir=self.path)
        else:
            git("-c", "user.name=T", "-c", "user.email=t@example.com", "tag", "-a", "-m",
                message, name, target, git_dir=self.path)

    def ref(self, ref: str) -> str | None:
        try:
            return git("rev-parse", "--verify", "--quiet", ref, git_dir=self.path).strip()
        except subprocess.CalledProcessError:
            return None

    def refs(self) -> dict[str, str]:
        out = git("for-each-ref", "--format=%(objectname) %(refname)", git_dir=self.path)
        return {ref: oid for oid, ref in (line.split() for line in out.splitlines())}


def refs_of(path: Path) -> dict[str, str]:
    """Every ref of a repository on disk (all namespaces) and HEAD's target."""
    out = git("for-each-ref", "--format=%(objectname) %(refname)", git_dir=path)
    refs = {ref: oid for oid, ref in (line.split() for line in out.splitlines())}
    refs["HEAD"] = git("symbolic-ref", "HEAD", git_dir=path).strip()
    return refs


def snapshot(path: Path) -> dict[str, Any]:
    """Refs plus every file name under the repository: "exactly as it was" means equal."""
    files = sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())
    return {"refs": refs_of(path), "files": files}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(port: int, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("the server exited at start")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.02)
    raise RuntimeError(f"nothing listens on port {port}")


class GitDaemon:
    """``git daemon`` exporting every repository under ``base`` on ``git://127.0.0.1:<port>``."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> GitDaemon:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [GIT, "daemon", "--reuseaddr", "--export-all", "--listen=127.0.0.1",
             f"--port={self.port}", f"--base-path={self.base}", str(self.base)],
            env=git_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        _wait_for_port(self.port, self.proc)
        return self

    def url(self, name: str) -> str:
        return f"git://127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, 9)
            self.proc.wait()
            self.proc = None


class SmartHttp:
    """git's smart-HTTP protocol on ``http://127.0.0.1:<port>/<name>``.

    ``behaviour``: ``"normal"``; ``"stall"`` (the pack request hangs for ``stall_for`` s);
    ``"die"`` (half of the pack, then the connection drops); ``"delete"`` (the repository is
    deleted after the ref advertisement, before the pack is asked for).
    """

    def __init__(self, base: Path, *, credentials: tuple[str, str] | None = None) -> None:
        self.base = base
        self.credentials = credentials
        self.behaviour = "normal"
        self.stall_for = 30.0
        #: seconds every request waits before it is served: a network's round trip
        self.delay = 0.0
        #: (HTTP method, path, time.monotonic() of arrival) of every request
        self.requests: list[tuple[str, str, float]] = []
        self.server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._release = threading.Event()

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.server_address[1])

    def start(self) -> SmartHttp:
        owner = self

        class Handler(_CgiHandler):
            remote = owner

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def url(self, name: str, user: str | None = None, password: str | None = None) -> str:
        auth = ""
        if user is not None:
            auth = user + (f":{password}" if password is not None else "") + "@"
        return f"http://{auth}127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        self._release.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


class _CgiHandler(BaseHTTPRequestHandler):
    remote: SmartHttp

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def do_GET(self) -> None:
        self._serve(b"")

    def do_POST(self) -> None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = self._read_chunked()
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._serve(body)

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                self.rfile.readline()
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline()

    def _serve(self, body: bytes) -> None:
        remote = self.remote
        path, _, query = self.path.partition("?")
        remote.requests.append((self.command, self.path, time.monotonic()))
        if remote.delay:
            time.sleep(remote.delay)
        if remote.credentials is not None and not self._authorised(remote.credentials):
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        # Protocol v2 posts ls-refs first, then fetch; v0 posts the wants directly.
        pack_request = (self.command == "POST" and path.endswith("/git-upload-pack")
                        and (b"command=fetch" in body or b"0032want " in body))
        if pack_request and remote.behaviour == "stall":
            remote._release.wait(remote.stall_for)
        if pack_request and remote.behaviour == "delete":
            repo = remote.base / path.strip("/").rsplit("/", 1)[0]
            shutil.rmtree(repo, ignore_errors=True)
        env = git_env()
        env.update(GIT_PROJECT_ROOT=str(remote.base), GIT_HTTP_EXPORT_ALL="1",
                   PATH_INFO=path, QUERY_STRING=query, REQUEST_METHOD=self.command,
                   CONTENT_TYPE=self.headers.get("Content-Type", ""),
                   CONTENT_LENGTH=str(len(body)), REMOTE_ADDR="127.0.0.1")
        if self.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        out = subprocess.run([GIT, "http-backend"], input=body, capture_output=True,
                             env=env).stdout
        head, _, payload = out.partition(b"\r\n\r\n")
        if not _:
            head, _, payload = out.partition(b"\n\n")
        status = 200
        headers: list[tuple[str, str]] = []
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if pack_request and remote.behaviour == "die":
            self.wfile.write(payload[: max(1, len(payload) // 2)])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(payload)

    def _authorised(self, credentials: tuple[str, str]) -> bool:
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        return (user, password) == credentials


class Blackhole:
    """Accepts TCP connections and never answers: git waits until its timeout."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])

    def stop(self) -> None:
        self.sock.close()


@contextlib.contextmanager
def running(server: Any) -> Iterator[Any]:
    server.start()
    try:
        yield server
    finally:
        server.stop()


# -- pytest fixtures and helpers shared by the repository tests ----------------------------

_call_ids = itertools.count(100_000)


def api_caller(config: Any, db: Any, key: str) -> Callable[..., dict[str, Any]]:
    """``call(method, **args)`` on its own app instance, as another worker process would
    have; safe to use from a thread. ``config`` may differ from the test's."""
    from werkzeug.test import Client

    from rpcserver.api import build_registry
    from rpcserver.web.app import create_app

    client = Client(create_app(config, registry=build_registry(), db=db))

    def call(method: str, **args: Any) -> dict[str, Any]:
        body = {"id": next(_call_ids), "api_key": key, "method": method, "args": args}
        answer: dict[str, Any] = client.post("/_admin/api", json=body).get_json()
        return answer

    return call



@pytest.fixture
def remotes(tmp_path: Path) -> Path:
    """Where upstream repositories live (served by ``daemon`` and ``http_remote``)."""
    base = tmp_path / "remotes"
    base.mkdir()
    return base


@pytest.fixture
def upstream(remotes: Path) -> Upstream:
    """``up``: three commits on master, tag ``v1`` (annotated) on the last."""
    up = Upstream(remotes / "up")
    up.commit(3)
    up.tag("v1", message="release one")
    return up


@pytest.fixture
def daemon(remotes: Path) -> Iterator[GitDaemon]:
    with running(GitDaemon(remotes)) as server:
        yield server


@pytest.fixture
def http_remote(remotes: Path) -> Iterator[SmartHttp]:
    with running(SmartHttp(remotes, credentials=("bob", "s3cr3t"))) as server:
        yield server


def on_disk(repos_root: str | Path) -> list[str]:
    """Names of the bare repositories under a repository root (what the server keeps)."""
    root = Path(repos_root)
    found = []
    for head in sorted(root.rglob("HEAD")):
        path = head.parent
        rel = path.relative_to(root)
        if rel.parts and rel.parts[0] == ".rpcserver":
            continue
        if (path / "objects").is_dir() and (path / "refs").is_dir():
            found.append(str(rel))
    return found


def leftovers(repos_root: str | Path) -> list[str]:
    """Scratch and trash entries left behind (there should be none after a call)."""
    internal = Path(repos_root) / ".rpcserver"
    return sorted(str(p.relative_to(internal)) for sub in ("tmp", "trash")
                  if (internal / sub).is_dir() for p in (internal / sub).iterdir())
