"""Running the app: gunicorn workers serving with waitress (``worker.py``) for production,
werkzeug's reloader for development."""

from __future__ import annotations

import argparse
import ctypes
import logging
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from gunicorn.app.base import BaseApplication

from rpcserver.core.config import Config

LOG_FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"


def configure_logging(config: Config) -> None:
    logging.basicConfig(level=config.log_level, format=LOG_FORMAT)


#: glibc's mallopt() parameter, and the size from which an allocation gets its own mapping.
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD = 128 * 1024


def keep_large_allocations_out_of_the_heap() -> None:
    """Give every large allocation its own mapping, returned to the system when freed.

    glibc raises its mmap threshold after the first large block is freed, so from then on
    argon2's 19 MiB per password hash comes from a thread's heap, which keeps it: a worker
    that hashed a few passwords on four threads held 70 MB more than before. A fixed
    threshold (the default value, made fixed) keeps the workers' memory flat. Other C
    libraries do not need it and are left alone.
    """
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)


class GunicornServer(BaseApplication):
    """Each worker builds its own app, so no database connection crosses a fork.

    ``app_factory`` replaces the API app (the benchmarks' baseline runs on the very same
    gunicorn settings).
    """

    def __init__(self, config: Config, options: dict[str, Any],
                 app_factory: Callable[[Config], Any] | None = None) -> None:
        self.config = config
        self.options = options
        self.app_factory = app_factory
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings:  # newer settings are skipped on older gunicorn
                self.cfg.set(key, value)

    def load(self) -> Any:
        from rpcserver.web.app import create_app

        keep_large_allocations_out_of_the_heap()
        configure_logging(self.config)
        app = (self.app_factory or create_app)(self.config)
        return AccessLog(app) if self.options.get("rpcserver_access_log") else app


class AccessLog:
    """One log line per request: method, path, status, duration (never the body: it holds the
    API key)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.log = logging.getLogger("rpcserver.access")

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        started = time.perf_counter()
        status: list[str] = []

        def recording(code: str, headers: Any, exc_info: Any = None) -> Any:
            status.append(code)
            return start_response(code, headers, exc_info)

        try:
            return self.app(environ, recording)
        finally:
            self.log.info("%s %s %s %s %.1f ms", environ.get("REMOTE_ADDR"),
                          environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"),
                          (status or ["-"])[0].split(" ", 1)[0],
                          (time.perf_counter() - started) * 1000)


def gunicorn_options(config: Config, bind: str, workers: int, *,
                     access_log: bool = False) -> dict[str, Any]:
    """The gunicorn settings ``rpcserver serve`` runs with (its workers: ``worker.py``)."""
    from rpcserver.web import worker

    worker.configure(worker.Settings(threads=config.threads, body_limit=config.max_body_bytes,
                                     idle_timeout=config.idle_timeout,
                                     connection_limit=config.connection_limit,
                                     push_limit=config.max_push_bytes))
    return {
        "bind": bind,
        "workers": workers,
        "threads": config.threads,
        "worker_class": "rpcserver.web.worker.BufferedWorker",
        # The heartbeat: the worker's event loop beats every second whatever its threads
        # are doing (a pull may take git_timeout), so a hung worker is found in 30 s.
        "timeout": 30,
        "graceful_timeout": 10,
        "loglevel": config.log_level.lower(),
        "errorlog": "-",
        "proc_name": "rpcserver",
        # gunicorn >= 24 opens a control socket at one fixed path per user; several servers
        # on one machine (tests, benchmarks) would fight over it, and we have no use for it.
        "control_socket_disable": True,
    }


def run_gunicorn(config: Config, bind: str, workers: int, *, access_log: bool = False) -> None:
    """Serve with gunicorn, from a fresh interpreter.

    The process replaces itself (same pid) with ``python -m rpcserver.web.serve``: gunicorn's
    workers are forks of it, and every page the admin command had loaded (click, alembic, mako,
    the schema check's engine: about 10 MB) would otherwise sit in each worker too.
    """
    argv = [sys.executable, "-m", "rpcserver.web.serve", "--bind", bind, "--workers", str(workers)]
    if config.path is not None:
        argv += ["--config", config.path]
    if access_log:
        argv.append("--access-log")
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, argv)  # noqa: S606 - our own interpreter, list arguments


def main(argv: list[str] | None = None) -> None:
    """``python -m rpcserver.web.serve``: what ``rpcserver serve`` runs (see ``run_gunicorn``)."""
    parser = argparse.ArgumentParser(prog="python -m rpcserver.web.serve")
    parser.add_argument("--bind", required=True)
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--config", default=None)
    parser.add_argument("--access-log", action="store_true")
    args = parser.parse_args(argv)
    config = Config.load(args.config)
    # Import (only import: no engine, no connection) what every worker needs before forking
    # them, so that each worker boots at once instead of importing it all again.
    from rpcserver import api  # noqa: F401
    from rpcserver.web import app  # noqa: F401
    options = gunicorn_options(config, args.bind, args.workers)
    options["rpcserver_access_log"] = args.access_log
    GunicornServer(config, options).run()


def run_development(config: Config, bind: str) -> None:
    from werkzeug.serving import run_simple

    from rpcserver.web.app import create_app

    configure_logging(config)
    host, _, port = bind.rpartition(":")
    run_simple(host or "127.0.0.1", int(port), create_app(config), use_reloader=True,
               threaded=True)


if __name__ == "__main__":
    main()
