"""One HTTP request answered by a CGI program in a child process: what serving git
(``git http-backend``, ``vcs.git.http_backend``) and Mercurial (hgweb, ``vcs.hg.hgweb``) share.

Streaming: the request body (already whole in the HTTP layer's spooled buffer: memory, then a
temporary file) is copied to the program's stdin by a thread in ``CHUNK`` pieces while the
caller reads its stdout: first the CGI headers (``parse_cgi_headers``), then the body, handed
on in pieces as the program writes them. Neither side is ever held whole in memory.

The program runs in a session of its own: it is killed with its children when the answer is
closed early, and when it writes nothing for ``stall`` seconds.
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
from pathlib import Path
from typing import IO, BinaryIO

log = logging.getLogger(__name__)

#: How much is read or written at a time.
CHUNK = 64 * 1024
#: The most CGI header bytes a program may write before its body.
MAX_HEADER_BYTES = 64 * 1024
#: How much of the program's stderr is kept for the log.
_ERR_KEEP = 16 * 1024


class CgiError(Exception):
    """The program's output did not start with CGI headers."""


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


@dataclass
class CgiAnswer:
    """What the program answered: the status and headers, and the body, read as it is
    iterated.

    Iterate it to the end, or ``close()`` it: either way the program has exited afterwards
    and ``returncode`` is set.
    """

    status: str
    headers: list[tuple[str, str]]
    _proc: subprocess.Popen[bytes]
    _first: bytes
    _stall: float
    #: The program's name, for the log (``git http-backend``, ``hgweb``).
    program: str = "CGI program"
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
                    log.warning("%s wrote nothing for %g s; killed", self.program, self._stall)
                    break
                if not chunk:
                    self._ended = True
                    break
                yield chunk
        finally:
            self.close()

    def close(self) -> None:
        """Stop the program if it still runs (the client went away, or it stalled), and
        reap it."""
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
        # The threads end once the program is gone (its pipes reach their end); their pipes
        # are closed only then, so that no descriptor is closed under a thread still using it.
        for thread in self._threads:
            thread.join(timeout=10)
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError, ValueError):
                    pipe.close()
        self.returncode = proc.returncode
        if self.returncode != 0:
            log.warning("%s exited %s: %s", self.program, self.returncode,
                        self.stderr.strip()[-2000:])

    @property
    def stderr(self) -> str:
        return bytes(self._stderr).decode("utf-8", "replace")


def start(argv: Sequence[str], env: Mapping[str, str], body: BinaryIO | None,
          length: int | None, *, stall: float, program: str,
          cwd: Path | None = None) -> CgiAnswer:
    """Run ``argv`` in ``env`` (its whole environment), feed it ``length`` bytes of ``body``
    and read its CGI headers; the body follows as the answer is iterated. ``CgiError`` when
    the program answers no headers (it is killed then)."""
    proc = subprocess.Popen(list(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=dict(env), start_new_session=True,
                            cwd=cwd)
    stderr = bytearray()
    threads = (threading.Thread(target=_feed, args=(proc, body, length or 0), daemon=True),
               threading.Thread(target=_drain, args=(proc, stderr), daemon=True))
    for thread in threads:
        thread.start()
    try:
        status, headers, first = _headers(proc, stall, program)
    except BaseException:
        CgiAnswer(status="", headers=[], _proc=proc, _first=b"", _stall=stall,
                  program=program, _stderr=stderr, _threads=threads).close()
        raise
    return CgiAnswer(status=status, headers=headers, _proc=proc, _first=first, _stall=stall,
                     program=program, _stderr=stderr, _threads=threads)


def _headers(proc: subprocess.Popen[bytes], stall: float,
             program: str) -> tuple[str, list[tuple[str, str]], bytes]:
    if proc.stdout is None:
        raise CgiError(f"{program}'s stdout is no pipe")
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
            raise CgiError(f"{program} wrote no headers for {stall:g} s")
        if not chunk:
            raise CgiError(f"{program} ended before its headers: {buffer[:80]!r}")
        buffer += chunk


def _read(pipe: IO[bytes], timeout: float) -> bytes | None:
    """Up to ``CHUNK`` bytes; b"" at the end; None when nothing came within ``timeout``."""
    with selectors.DefaultSelector() as selector:
        selector.register(pipe, selectors.EVENT_READ)
        if not selector.select(timeout):
            return None
    return os.read(pipe.fileno(), CHUNK)


def _feed(proc: subprocess.Popen[bytes], body: BinaryIO | None, length: int) -> None:
    """Copy ``length`` bytes of ``body`` to the program's stdin in pieces, then close it; it
    may stop reading early (a refused request, a bad pack): that ends the copy."""
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
    """Read the program's stderr to its end, keeping the last ``_ERR_KEEP`` bytes for the
    log."""
    stderr = proc.stderr
    if stderr is None:
        return
    with contextlib.suppress(OSError, ValueError):
        while chunk := os.read(stderr.fileno(), CHUNK):
            kept += chunk
            if len(kept) > 2 * _ERR_KEEP:
                del kept[:-_ERR_KEEP]
