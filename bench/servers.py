"""The processes under load: the baseline app and ``rpcserver serve``, each gunicorn with two
workers on a free loopback port, and the memory and CPU time their workers use."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
from sqlalchemy import create_engine, text

from tests.databases import scratch_database
from tests.server_process import ServerProcess, free_port

WORKERS = 2


def worker_pids(master: int) -> list[int]:
    """gunicorn's workers: the children of its master process."""
    children = Path(f"/proc/{master}/task/{master}/children")
    try:
        return [int(pid) for pid in children.read_text().split()]
    except OSError:
        return []


def rss_mb(pid: int) -> float:
    """Resident memory of one process (VmRSS), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_ticks(pid: int) -> int:
    """User plus system CPU time of a process so far, in clock ticks."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 of stat(5)


#: wrk stops sending when its time is up, but the workers still finish what they accepted
#: (four password hashes each, 19 MiB apiece): memory is read once they are idle.
SETTLE_SECONDS = 3.0


def workers_rss_mb(master: int, *, settle: float = SETTLE_SECONDS) -> list[float]:
    time.sleep(settle)
    return [rss_mb(pid) for pid in worker_pids(master)]


def wait_until_answering(url: str, process: subprocess.Popen[bytes], log: Path,
                         timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            requests.post(url, data=b"{}", timeout=1)
            # Both workers booted: the load starts on a warm server.
            if len(worker_pids(process.pid)) >= WORKERS:
                return
        except requests.RequestException:  # not listening yet, or still booting
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer in {timeout}s")


def stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def baseline(workdir: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """The baseline app (bench/baseline.py) serving; yields its API URL and master process."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/_admin/api"
    log = workdir / "baseline.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.baseline", "--bind", f"127.0.0.1:{port}",
             "--workers", str(WORKERS)], stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until_answering(url, process, log)
        yield url, process
    finally:
        stop(process)


@contextmanager
def rpcserver(instance: Path, database_url: str) -> Iterator[ServerProcess]:
    """``rpcserver init`` + ``rpcserver serve`` (gunicorn, 2 workers) on ``database_url``."""
    server = ServerProcess(instance=instance, database_url=database_url, workers=WORKERS)
    try:
        server.start()
        assert server.process is not None
        wait_until_answering(server.api_url, server.process, instance / "server.log")
        yield server
    finally:
        server.stop()


def database(backend: str, workdir: Path, pg_url: str,
             name: str) -> contextlib.AbstractContextManager[str]:
    """A new, empty database for ``backend``: a SQLite file in ``workdir``, or a PostgreSQL
    database beside ``pg_url``'s (dropped when the block ends)."""
    return scratch_database(workdir, name, None if backend == "sqlite" else pg_url)


def analyze(database_url: str) -> None:
    """Give PostgreSQL's planner statistics for the data just loaded.

    A production server's autovacuum analyzes tables soon after they change (this machine's
    PostgreSQL runs with autovacuum off); without statistics the planner took the 1,000-user
    table for 28 rows and hash-joined all of it where an index lookup was right. SQLite's
    planner needs no statistics for these queries, and is left as a server would run it.
    """
    if not database_url.startswith("postgresql"):
        return
    engine = create_engine(database_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("ANALYZE"))
    finally:
        engine.dispose()
