"""The gunicorn worker: waitress's event loop reads every request whole before a thread runs it.

gunicorn's own threaded worker hands a connection to a thread as soon as it is accepted, and the
thread then reads the headers and the body: eight clients that send a byte a second held all
2 x 4 threads, and nobody else got an answer (the slowloris attack). Here each worker process
runs waitress's event loop, which reads headers and body of every connection without a thread,
buffers them (bounded), and only then gives the complete request to one of the worker's
threads; the answer is buffered too and written by the loop, so a client that reads slowly costs
no thread either. A connection that makes no progress for ``idle_timeout`` seconds is closed: an
idle timeout, not a total one, so a large request on a slow line still gets through.

gunicorn stays the process manager (forking, restarting a dead worker, graceful shutdown, the
heartbeat); docs/architecture.md says why this model and what builds on it.
"""

from __future__ import annotations

import logging
import os
import re
import resource
import time
from dataclasses import dataclass
from typing import Any

from gunicorn.workers.base import Worker
from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser, ParsingError
from waitress.server import create_server
from waitress.utilities import RequestEntityTooLarge

from rpcserver.web.git_http import RECEIVE_PACK, git_route
from rpcserver.web.hg_http import hg_route

log = logging.getLogger(__name__)

#: An hg push's query: its body is a bundle, up to ``max_push_bytes``.
HG_PUSH = re.compile(r"(?:^|[&;])cmd=unbundle(?:$|[&;])")
#: How long one turn of the event loop may wait; the heartbeat and shutdown checks run per turn.
LOOP_TIMEOUT = 1.0
#: File descriptors a worker keeps beside its connections (database, git pipes, logs).
SPARE_FDS = 256


class _OversizeAware(HTTPRequestParser):
    """Completes a request whose Content-Length is over its limit as soon as its headers
    are in, without its body, and closes the connection after the answer; refuses a request
    framed twice.

    The limit is the API's (``max_body_bytes``) except for git's smart HTTP (``web.git_http``)
    and hg's ``?cmd=unbundle`` (``web.hg_http``), whose pushes may be up to
    ``max_push_bytes``; a push without credentials is held to the API's limit (it will be
    refused anyway). The app then answers ``Request body too large`` in the JSON envelope
    (API.md §1 row 3), or git's and hg's 401/413, instead of waitress's
    plain-text 413, and no worker buffers a body it would refuse.
    """

    body_limit = 0  # set per server, see ``_channel_class``
    push_limit = 0
    #: The connection this request came on (set by ``_ApiChannel``).
    channel: _ApiChannel | None = None

    def _limit(self) -> int:
        path = getattr(self, "path", "") or ""
        route = git_route(path)
        if route is None:
            query = getattr(self, "query", "") or ""
            if hg_route(path, query) is None or not HG_PUSH.search(query):
                return self.body_limit
            pushing = True  # hg's unbundle carries the changesets
        else:
            pushing = route[1] == RECEIVE_PACK
        if pushing and not self.headers.get("AUTHORIZATION"):
            return self.body_limit
        return self.push_limit

    def received(self, data: bytes) -> int:
        consumed = int(super().received(data))
        if not self.headers_finished:
            return consumed
        limit = self._limit()
        if not self.chunked and self.content_length > limit:
            # waitress has just refused it with its own 413 (or is waiting for the body):
            # hand it to the app instead, body unread.
            return self._hand_over(data)
        if self.chunked and (isinstance(self.error, RequestEntityTooLarge)
                             or (self.error is None and self.body_bytes_received > limit)):
            # A chunked body that grew past the limit: the app sees its size so far.
            self.headers["CONTENT_LENGTH"] = str(self.body_bytes_received)
            return self._hand_over(data)
        return consumed

    def parse_header(self, header_plus: bytes) -> None:
        super().parse_header(header_plus)
        if self.chunked and "CONTENT_LENGTH" in self.headers:
            # Two framings: a proxy in front may read the other one (request smuggling).
            raise ParsingError("Content-Length and Transfer-Encoding: chunked together")

    def _hand_over(self, data: bytes) -> int:
        """Complete the request as it is; the rest of what the client sends on this
        connection is the unread body, never another request."""
        self.error = None
        self.completed = True
        self.connection_close = True
        if self.channel is not None:
            self.channel.discard_input = True
        return len(data)


class _ApiChannel(HTTPChannel):
    body_limit = 0
    push_limit = 0
    #: Set once a request was handed over with its body unread: the connection closes after
    #: the answer, and whatever else arrives is dropped.
    discard_input = False

    def parser_class(self, adj: Any) -> _OversizeAware:
        parser = _OversizeAware(adj)
        parser.body_limit = self.body_limit
        parser.push_limit = self.push_limit
        parser.channel = self
        return parser

    def received(self, data: bytes) -> bool:
        if self.discard_input:
            return True
        return bool(super().received(data))


def _channel_class(body_limit: int, push_limit: int) -> type[HTTPChannel]:
    return type("ApiChannel", (_ApiChannel,), {"body_limit": body_limit,
                                               "push_limit": max(push_limit, body_limit)})


@dataclass(frozen=True)
class Settings:
    """What each worker serves with; set in the master (``configure``) before it forks."""

    threads: int
    body_limit: int
    idle_timeout: int
    connection_limit: int
    #: The largest git push; 0: the same as ``body_limit``.
    push_limit: int = 0

    def waitress(self) -> dict[str, Any]:
        """waitress's adjustments for these settings."""
        return {
            "threads": self.threads,
            "connection_limit": self.connection_limit,
            "channel_timeout": self.idle_timeout,
            # Idle connections are looked for this often: a stalled one lives at most
            # idle_timeout plus this.
            "cleanup_interval": max(1, self.idle_timeout // 4),
            # A chunked body (no Content-Length) is counted as it arrives; over this: 413.
            # One bound per server: the larger (a push's); the parser holds the API's
            # requests to theirs. Bodies over inbuf_overflow (512 KiB) wait in a temporary
            # file, answers over outbuf_overflow (1 MiB) too: a push or a clone is never
            # whole in memory.
            "max_request_body_size": max(self.body_limit, self.push_limit) + 1,
            "max_request_header_size": 64 * 1024,
            # poll(), not select(): select cannot watch descriptors above 1024.
            "asyncore_use_poll": True,
            "asyncore_loop_timeout": LOOP_TIMEOUT,
            "ident": "rpcserver",
            "clear_untrusted_proxy_headers": False,
            "expose_tracebacks": False,
            "log_socket_errors": False,
        }


_settings: Settings | None = None


def configure(settings: Settings) -> None:
    global _settings
    _settings = settings


def _raise_fd_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        if new < wanted:
            log.warning("open files limited to %d: fewer than %d connections per worker",
                        new, wanted - SPARE_FDS)


class BufferedWorker(Worker):
    """One gunicorn worker process serving its share of connections with waitress."""

    def run(self) -> None:
        settings = _settings
        if settings is None:
            raise RuntimeError("rpcserver.web.worker.configure() was not called before forking")
        _raise_fd_limit(settings.connection_limit + SPARE_FDS)
        socket_map: dict[int, Any] = {}
        server = create_server(self.wsgi, map=socket_map,
                               sockets=[listener.sock for listener in self.sockets],
                               **settings.waitress())
        server.channel_class = _channel_class(settings.body_limit, settings.push_limit)
        try:
            while self.alive:
                self.notify()
                wasyncore.loop(timeout=LOOP_TIMEOUT, map=socket_map, use_poll=True, count=1)
                if self.ppid != os.getppid():
                    log.info("parent changed, shutting down: %s", self)
                    break
        finally:
            self._drain(server, socket_map)

    def _drain(self, server: Any, socket_map: dict[int, Any]) -> None:
        """Stop accepting; let running calls finish and their answers go out, for at most
        gunicorn's graceful timeout."""
        server.accepting = False
        server.del_channel()
        deadline = time.monotonic() + self.cfg.graceful_timeout
        while time.monotonic() < deadline:
            busy = [channel for channel in server.active_channels.values()
                    if channel.requests or channel.total_outbufs_len]
            if not busy:
                break
            self.notify()
            wasyncore.loop(timeout=0.1, map=socket_map, use_poll=True, count=1)
        server.task_dispatcher.shutdown(cancel_pending=True, timeout=1)
        wasyncore.close_all(socket_map)

