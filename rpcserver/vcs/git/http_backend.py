"""git's own smart HTTP server, ``git http-backend``, run as a CGI program for one request.

Why git's program and not our own protocol code: pkt-lines, capabilities, protocol v2,
shallow and partial clones, gzip request bodies and the pack checks are git's, kept up to date
by git; we only decide who may do what (``web.git_http``) and pass the request on.

Streaming: the request body (already whole in the HTTP layer's spooled buffer: memory, then a
temporary file) is copied to git's stdin by a thread in ``CHUNK`` pieces while the caller
reads git's stdout: first the CGI headers (``parse_cgi_headers``), then the body, handed on in
pieces as git writes them. Neither side is ever held whole in memory.

git runs as every git of ours does (``command.Git.environment``: no system or user config,
hooks off, prompts off) in a session of its own, killed with its children when the answer is
closed early, and killed when it writes nothing for ``stall`` seconds.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import selectors
import signal
import subprocess
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, BinaryIO

from rpcserver.vcs.git.command import Git
from rpcserver.vcs.process import die_with_parent

log = logging.getLogger(__name__)

#: How much is read or written at a time.
CHUNK = 64 * 1024
#: The most CGI header bytes git may write before its body.
MAX_HEADER_BYTES = 64 * 1024
#: How much of git's stderr is kept for the log.
_ERR_KEEP = 16 * 1024
#: What a client's ``Git-Protocol`` header may hold (``version=2``, ``key=value:...``).
_GIT_PROTOCOL = re.compile(r"[A-Za-z0-9=:._-]{1,256}")


class CgiError(Exception):
    """git's output did not start with CGI headers."""


@dataclass(frozen=True)
class CgiRequest:
    """The parts of an HTTP request ``git http-backend`` reads (RFC 3875 variables)."""

    method: str
    #: ``/<repository path>/info/refs`` etc., relative to ``project_root``.
    path_info: str
    query: str = ""
    content_type: str | None = None
    content_length: int | None = None
    content_encoding: str | None = None
    git_protocol: str | None = None
    #: The authenticated user (None: anonymous).
    remote_user: str | None = None
    remote_addr: str | None = None

    def environment(self, project_root: str) -> dict[str, str]:
        env = {
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "GIT_PROJECT_ROOT": project_root,
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": self.path_info,
            "REQUEST_METHOD": self.method,
            "QUERY_STRING": self.query,
            "REMOTE_ADDR": self.remote_addr or "",
        }
        if self.remote_user:
            env["REMOTE_USER"] = self.remote_user
        if self.content_type:
            env["CONTENT_TYPE"] = self.content_type
        if self.content_length is not None:
            env["CONTENT_LENGTH"] = str(self.content_length)
        if self.content_encoding:
            env["HTTP_CONTENT_ENCODING"] = self.content_encoding
        if self.git_protocol and _GIT_PROTOCOL.fullmatch(self.git_protocol):
            env["HTTP_GIT_PROTOCOL"] = self.git_protocol
        return env


def parse_cgi_headers(raw: bytes) -> tuple[str, list[tuple[str, str]]]:
    """A CGI program's header block (without the blank line) -> (HTTP status, headers).

    ``Status: 404 Not Found`` becomes the status (``200 OK`` when absent); lines end in LF
    or CRLF. ``CgiError`` for a line that is no header.
    """
    status = "200 OK"
    headers: list[tuple[str, str]] = []
    for line in raw.replace(b"\r\n", b"\n").split(b"\n"):
        if not line:
            continue
        name, colon, value = line.decode("latin-1").partition(":")
        name, value = name.strip(), value.strip()
        if not colon or not name or any(c in name for c in " \t"):
            raise CgiError(f"not a CGI header line: {line[:80]!r}")
        if name.lower() == "status":
            if not re.fullmatch(r"\d{3}( .*)?", value):
                raise CgiError(f"bad CGI status: {value[:80]!r}")
            status = value if " " in value else f"{value} Status"
        else:
            headers.append((name, value))
    return status, headers


def split_headers(buffer: bytes) -> tuple[bytes, bytes] | None:
    """(header block, the start of the body) once ``buffer`` holds the blank line, else
    None."""
    ends = [(i, n) for i, n in ((buffer.find(b"\r\n\r\n"), 4), (buffer.find(b"\n\n"), 2))
            if i >= 0]
    if not ends:
        return None
    index, width = min(ends)
    return buffer[:index], buffer[index + width:]


def merged_config_env(pairs: Sequence[tuple[str, str]],
                      extra: Mapping[str, str]) -> dict[str, str]:
    """``extra`` environment on top of ours; git configuration in ``extra``
    (``GIT_CONFIG_COUNT``/``KEY_n``/``VALUE_n``) is appended after ``pairs``, so it wins."""
    env = {k: v for k, v in extra.items() if not k.startswith("GIT_CONFIG_")}
    all_pairs = list(pairs)
    count = int(extra.get("GIT_CONFIG_COUNT", "0") or 0)
    for i in range(count):
        all_pairs.append((extra[f"GIT_CONFIG_KEY_{i}"], extra.get(f"GIT_CONFIG_VALUE_{i}", "")))
    env["GIT_CONFIG_COUNT"] = str(len(all_pairs))
    for i, (key, value) in enumerate(all_pairs):
        env[f"GIT_CONFIG_KEY_{i}"] = key
        env[f"GIT_CONFIG_VALUE_{i}"] = value
    return env


@dataclass
class BackendAnswer:
    """What git answered: the status and headers, and the body, read as it is iterated.

    Iterate it to the end, or ``close()`` it: either way git has exited afterwards and
    ``returncode`` is set.
    """

    status: str
    headers: list[tuple[str, str]]
    _proc: subprocess.Popen[bytes]
    _first: bytes
    _stall: float
    _stderr: bytearray = field(default_factory=bytearray)
    _threads: tuple[threading.Thread, ...] = ()
    returncode: int | None = None
    _ended: bool = False

    def __iter__(self) -> Iterator[bytes]:
        try:
            if self._first:
                yield self._first
            stdout = self._proc.stdout
            while stdout is not None:
                chunk = _read(stdout, self._stall)
                if chunk is None:
                    log.warning("git http-backend wrote nothing for %g s; killed", self._stall)
                    break
                if not chunk:
                    self._ended = True
                    break
                yield chunk
        finally:
            self.close()

    def close(self) -> None:
        """Stop git if it still runs (the client went away, or it stalled), and reap it."""
        if self.returncode is not None:
            return
        proc = self._proc
        if self._ended:
            # Its output is complete: let it exit by itself (a hook may still be finishing).
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(self._stall)
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        # The threads end once git is gone (its pipes reach their end); their pipes are
        # closed only then, so that no descriptor is closed under a thread still using it.
        for thread in self._threads:
            thread.join(timeout=10)
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError, ValueError):
                    pipe.close()
        self.returncode = proc.returncode
        if self.returncode != 0:
            log.warning("git http-backend exited %s: %s", self.returncode,
                        self.stderr.strip()[-2000:])

    @property
    def stderr(self) -> str:
        return bytes(self._stderr).decode("utf-8", "replace")


def run(git: Git, project_root: str, request: CgiRequest, body: BinaryIO | None, *,
        config: Sequence[tuple[str, str]] = (), env: Mapping[str, str] = {},
        stall: float) -> BackendAnswer:
    """Start ``git http-backend`` for ``request``, feed it ``body`` (``content_length``
    bytes of it) and read its CGI headers; the body follows as the answer is iterated.

    ``config`` is git configuration for this request only (``http.receivepack``), ``env``
    more environment (see ``merged_config_env``). ``CgiError`` when git answers no headers.
    """
    base = git.environment()
    environment = {k: v for k, v in base.items() if not k.startswith("GIT_CONFIG_")}
    environment.update(merged_config_env([*_pairs_of(base), *config], env))
    environment.update(request.environment(project_root))
    proc = subprocess.Popen([*die_with_parent(), git.executable, "http-backend"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=environment, start_new_session=True)
    stderr = bytearray()
    threads = (threading.Thread(target=_feed, args=(proc, body, request.content_length or 0),
                                daemon=True),
               threading.Thread(target=_drain, args=(proc, stderr), daemon=True))
    for thread in threads:
        thread.start()
    try:
        status, headers, first = _headers(proc, stall)
    except BaseException:
        BackendAnswer(status="", headers=[], _proc=proc, _first=b"", _stall=stall,
                      _stderr=stderr, _threads=threads).close()
        raise
    return BackendAnswer(status=status, headers=headers, _proc=proc, _first=first,
                         _stall=stall, _stderr=stderr, _threads=threads)


def _pairs_of(env: Mapping[str, str]) -> list[tuple[str, str]]:
    count = int(env.get("GIT_CONFIG_COUNT", "0"))
    return [(env[f"GIT_CONFIG_KEY_{i}"], env[f"GIT_CONFIG_VALUE_{i}"]) for i in range(count)]


def _headers(proc: subprocess.Popen[bytes],
             stall: float) -> tuple[str, list[tuple[str, str]], bytes]:
    if proc.stdout is None:
        raise CgiError("git's stdout is no pipe")
    buffer = b""
    while True:
        found = split_headers(buffer)
        if found is not None:
            status, headers = parse_cgi_headers(found[0])
            return status, headers, found[1]
        if len(buffer) > MAX_HEADER_BYTES:
            raise CgiError("no end of the CGI headers")
        chunk = _read(proc.stdout, stall)
        if chunk is None:
            raise CgiError(f"git http-backend wrote no headers for {stall:g} s")
        if not chunk:
            raise CgiError(f"git http-backend ended before its headers: {buffer[:80]!r}")
        buffer += chunk


def _read(pipe: IO[bytes], timeout: float) -> bytes | None:
    """Up to ``CHUNK`` bytes; b"" at the end; None when nothing came within ``timeout``."""
    with selectors.DefaultSelector() as selector:
        selector.register(pipe, selectors.EVENT_READ)
        if not selector.select(timeout):
            return None
    return os.read(pipe.fileno(), CHUNK)


def _feed(proc: subprocess.Popen[bytes], body: BinaryIO | None, length: int) -> None:
    """Copy ``length`` bytes of ``body`` to git's stdin in pieces, then close it; git may
    stop reading early (a refused request, a bad pack): that ends the copy."""
    stdin = proc.stdin
    if stdin is None:
        return
    with contextlib.suppress(OSError, ValueError):
        left = length
        while body is not None and left > 0:
            chunk = body.read(min(CHUNK, left))
            if not chunk:
                break
            stdin.write(chunk)
            left -= len(chunk)
    with contextlib.suppress(OSError, ValueError):
        stdin.close()


def _drain(proc: subprocess.Popen[bytes], kept: bytearray) -> None:
    """Read git's stderr to its end, keeping the last ``_ERR_KEEP`` bytes for the log."""
    stderr = proc.stderr
    if stderr is None:
        return
    with contextlib.suppress(OSError, ValueError):
        while chunk := os.read(stderr.fileno(), CHUNK):
            kept += chunk
            if len(kept) > 2 * _ERR_KEEP:
                del kept[:-_ERR_KEEP]
