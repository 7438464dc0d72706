"""Mercurial's command server (``hg serve --cmdserver pipe``): long-lived hg processes that run
one command after another, so a local hg command costs a few milliseconds instead of starting
Python and Mercurial again (measured in docs/performance.md).

Why our own client and not python-hglib: hglib starts ``hg`` from ``PATH`` with the caller's
whole environment plus ``HGPLAIN``; the server needs its own launcher, a scrubbed environment
and a session of its own, and the protocol is four message kinds
(https://www.mercurial-scm.org/wiki/CommandServer).

Each command gets a fresh ``ui`` copied from the one the process started with (``HGRCPATH`` and
``HGRCSKIPREPO`` apply to every command) and opens its repository anew from ``-R``, so nothing
of one command's repository or ``--config`` carries over to the next. Only local commands come
here: a command that talks to a remote needs per-call pins and limits (``command.Hg.run``).

Servers are kept per process (a forked worker starts its own) in a small pool; one that times
out is killed with its children, one that misbehaves is dropped, one that has run
``MAX_USES`` commands is retired. An idle server exits when its pipe closes, which the
kernel does when the worker dies.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import selectors
import struct
import subprocess
import threading
import time
from collections.abc import Sequence

from rpcserver.vcs.process import kill_group

#: Idle servers kept per process and configuration.
KEEP_IDLE = 2
#: Commands one server runs before it is replaced (bounds what a long-lived process gathers).
MAX_USES = 500
#: An idle server unused this long exits (a pool of a configuration no longer in use empties).
IDLE_SECONDS = 60.0
#: How long a new server may take to greet.
START_TIMEOUT = 30.0
_HEADER = struct.Struct(">cI")


class ServerFailed(Exception):
    """The command server died or broke the protocol (the command may be retried once on a
    fresh one when nothing was sent yet)."""


class CommandTimeout(Exception):
    pass


class CommandServer:
    """One ``hg serve --cmdserver pipe`` process."""

    def __init__(self, argv: Sequence[str], env: dict[str, str], cwd: str) -> None:
        self.proc = subprocess.Popen(
            [*argv, "serve", "--cmdserver", "pipe"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=cwd,
            start_new_session=True, bufsize=0)
        self.uses = 0
        self.closed = False
        self.last_used = time.monotonic()
        try:
            channel, hello = self._message(time.monotonic() + START_TIMEOUT)
        except BaseException:
            self.close()
            raise
        if channel != b"o" or b"runcommand" not in hello:
            self.close()
            raise ServerFailed(f"unexpected greeting {hello[:200]!r}")

    def run(self, args: Sequence[str], timeout: float) -> tuple[int, bytes, bytes]:
        """(exit code, stdout, stderr) of ``hg <args>``; ``CommandTimeout`` past
        ``timeout`` (the server is killed), ``ServerFailed`` when it breaks."""
        self.uses += 1
        data = b"\0".join(a.encode("utf-8", "surrogateescape") for a in args)
        stdin = self.proc.stdin
        if stdin is None:
            raise ServerFailed("no pipe to hg")
        try:
            stdin.write(b"runcommand\n" + struct.pack(">I", len(data)) + data)
        except OSError as exc:
            raise ServerFailed(f"cannot write to hg: {exc}") from None
        deadline = time.monotonic() + timeout
        out: list[bytes] = []
        err: list[bytes] = []
        while True:
            channel, payload = self._message(deadline)
            if channel == b"o":
                out.append(payload)
            elif channel == b"e":
                err.append(payload)
            elif channel == b"r":
                (code,) = struct.unpack(">i", payload)
                return code, b"".join(out), b"".join(err)
            elif channel in (b"I", b"L"):  # hg asks for input: there is none
                with contextlib.suppress(OSError):
                    stdin.write(struct.pack(">I", 0))
            elif channel.isupper():  # a required channel we do not speak
                raise ServerFailed(f"hg asked on channel {channel!r}")

    def _message(self, deadline: float) -> tuple[bytes, bytes]:
        channel, length = _HEADER.unpack(self._read(_HEADER.size, deadline))
        if channel in (b"I", b"L"):
            return channel, b""  # ``length`` is how much input hg wants
        return channel, self._read(length, deadline)

    def _read(self, size: int, deadline: float) -> bytes:
        stdout = self.proc.stdout
        if stdout is None:
            raise ServerFailed("no pipe from hg")
        chunks: list[bytes] = []
        wanted = size
        with selectors.DefaultSelector() as selector:
            selector.register(stdout, selectors.EVENT_READ)
            while wanted:
                left = deadline - time.monotonic()
                if left <= 0 or not selector.select(left):
                    self.close()
                    raise CommandTimeout
                chunk = os.read(stdout.fileno(), min(wanted, 1 << 20))
                if not chunk:
                    self.close()
                    raise ServerFailed("hg command server exited")
                chunks.append(chunk)
                wanted -= len(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        """Kill the server and whatever it started, and reap it (once: its process group id
        may be another's afterwards)."""
        if not self.closed:
            self.closed = True
            kill_group(self.proc)

    def retire(self) -> None:
        """Let an idle server exit by itself (end of its input), killing it if it lingers."""
        with contextlib.suppress(OSError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=2)
        self.close()


class Pool:
    """Idle command servers of one configuration in this process."""

    def __init__(self, argv: Sequence[str], env: dict[str, str], cwd: str) -> None:
        self.argv = tuple(argv)
        self.env = env
        self.cwd = cwd
        self.idle: list[CommandServer] = []
        self.lock = threading.Lock()

    def run(self, args: Sequence[str], timeout: float) -> tuple[int, bytes, bytes]:
        """Run on an idle server (a new one if none is idle); a reused server found dead
        before it answered is replaced once."""
        for attempt in (1, 2):
            server, reused = self._take()
            try:
                result = server.run(args, timeout)
            except ServerFailed:
                server.close()
                if reused and attempt == 1:
                    continue
                raise
            except BaseException:
                server.close()
                raise
            self._give_back(server)
            return result
        raise AssertionError("unreachable")

    def _take(self) -> tuple[CommandServer, bool]:
        with self.lock:
            if self.idle:
                return self.idle.pop(), True
        return CommandServer(self.argv, self.env, self.cwd), False

    def _give_back(self, server: CommandServer) -> None:
        server.last_used = time.monotonic()
        with self.lock:
            if server.uses < MAX_USES and len(self.idle) < KEEP_IDLE:
                self.idle.append(server)
                return
        server.retire()

    def expire(self, now: float) -> None:
        with self.lock:
            old = [s for s in self.idle if now - s.last_used > IDLE_SECONDS]
            self.idle = [s for s in self.idle if s not in old]
        for server in old:
            server.retire()

    def drop_all(self, *, inherited: bool = False) -> None:
        with self.lock:
            servers, self.idle = self.idle, []
        for server in servers:
            if inherited:  # a forked child: close our copies of the pipes, leave the process
                for pipe in (server.proc.stdin, server.proc.stdout):
                    if pipe is not None:
                        with contextlib.suppress(OSError):
                            pipe.close()
            else:
                server.retire()


_pools: dict[tuple[object, ...], Pool] = {}
_pools_lock = threading.Lock()


def pool_for(argv: Sequence[str], env: dict[str, str], cwd: str) -> Pool:
    """This process's pool for that launcher, environment and directory; servers idle past
    ``IDLE_SECONDS`` in any pool are retired on the way."""
    key = (tuple(argv), tuple(sorted(env.items())), cwd)
    with _pools_lock:
        pool = _pools.get(key)
        if pool is None:
            pool = _pools[key] = Pool(argv, env, cwd)
        pools = list(_pools.values())
    now = time.monotonic()
    for each in pools:
        each.expire(now)
    return pool


def _forget_inherited() -> None:
    """In a forked child the parent's servers are not ours: drop them without a word."""
    global _pools_lock
    _pools_lock = threading.Lock()
    for pool in list(_pools.values()):
        pool.lock = threading.Lock()
        pool.drop_all(inherited=True)
    _pools.clear()


def shutdown() -> None:
    with _pools_lock:
        pools = list(_pools.values())
    for pool in pools:
        pool.drop_all()


os.register_at_fork(after_in_child=_forget_inherited)
atexit.register(shutdown)
