"""``make bench`` / ``python -m bench``: load the server on SQLite and PostgreSQL, measure how
SQL statements and latency scale, and write ``bench/results/<date>-<commit>.md``."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from . import auth_paths, measure, populate, report, scaling, servers, wrk
from .calls import CALLS, Call

HERE = Path(__file__).parent
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3,
                        help="interleaved baseline/server rounds per call (default 3)")
    parser.add_argument("--seconds", type=float, default=5.0,
                        help="length of each wrk run (default 5)")
    parser.add_argument("--backends", default="sqlite,postgresql",
                        help="comma-separated: sqlite, postgresql (default both)")
    parser.add_argument("--pg-url", default=os.environ.get("RPCSERVER_BENCH_PG_URL",
                                                           DEFAULT_PG_URL),
                        help="a PostgreSQL database; scratch databases are made beside it "
                             "(default $RPCSERVER_BENCH_PG_URL or %(default)s)")
    parser.add_argument("--calls", default="",
                        help="only the calls (load and scaling rows) whose label contains "
                             "one of these comma-separated words")
    parser.add_argument("--no-scaling", action="store_true", help="skip the scaling part")
    parser.add_argument("--no-load", action="store_true", help="skip the wrk part")
    parser.add_argument("--out", type=Path, default=HERE / "results",
                        help="directory of the results file (default bench/results)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(backends) - {"sqlite", "postgresql"}
    if unknown:
        raise SystemExit(f"unknown backend(s): {', '.join(sorted(unknown))}")
    words = [w.strip() for w in args.calls.split(",") if w.strip()]
    calls = tuple(c for c in CALLS if not words or any(w in c.label for w in words))
    started = time.monotonic()
    # Before the machine's facts, which name wrk's version.
    wrk_path = None if args.no_load else wrk.ensure_wrk()
    facts = report.machine_facts(args.pg_url if "postgresql" in backends else None)
    if "postgresql" in backends and facts["postgresql"].startswith("unreachable"):
        print(f"PostgreSQL at {args.pg_url} is {facts['postgresql']}: running SQLite only "
              "(start it, or pass --pg-url / RPCSERVER_BENCH_PG_URL)", file=sys.stderr)
        backends.remove("postgresql")
    (HERE / "work").mkdir(exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="run-", dir=HERE / "work"))
    results = report.Results(facts=facts, rounds=args.rounds, seconds=args.seconds)
    try:
        if wrk_path is not None:
            with servers.baseline(workdir) as (baseline_url, baseline_proc):
                for backend in backends:
                    results.backends[backend] = _load_backend(
                        backend, args, calls, workdir, baseline_url, baseline_proc.pid,
                        wrk_path)
                results.baseline_rss = servers.workers_rss_mb(baseline_proc.pid)
        if not args.no_scaling:
            for backend in backends:
                print(f"== scaling on {backend}", flush=True)
                results.scaling[backend] = scaling.run(
                    backend, workdir, args.pg_url, progress=_progress, words=tuple(words))
                print(f"== authentication paths on {backend}", flush=True)
                results.auth_paths[backend] = auth_paths.run(
                    backend, workdir, args.pg_url, progress=_progress)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    results.minutes = (time.monotonic() - started) / 60
    text = report.render(results)
    print(text)
    path = report.write(text, args.out, facts)
    print(f"written to {path}", file=sys.stderr)
    return 0


def _progress(line: str) -> None:
    print(line, flush=True)


def _load_backend(backend: str, args: argparse.Namespace, calls: tuple[Call, ...],
                  workdir: Path, baseline_url: str, baseline_pid: int,
                  wrk_path: str) -> report.BackendResult:
    print(f"== {backend}: starting rpcserver serve and populating it through the API",
          flush=True)
    instance = workdir / f"instance-{backend}"
    with (servers.database(backend, workdir, args.pg_url, "load") as database_url,
          servers.rpcserver(instance, database_url) as server):
        t0 = time.monotonic()
        pop = populate.populate(server)
        servers.analyze(database_url)
        populated = time.monotonic() - t0
        print(f"  populated in {populated:.0f} s"
              + (f"; missing methods: {', '.join(sorted(pop.missing))}" if pop.missing
                 else ""), flush=True)
        assert server.process is not None
        rows = measure.run_calls(calls, pop, server.api_url, baseline_url,
                                 server_pid=server.process.pid, baseline_pid=baseline_pid,
                                 rounds=args.rounds, seconds=args.seconds, tag=backend[0],
                                 wrk_path=wrk_path, progress=_progress)
        rss = servers.workers_rss_mb(server.process.pid)
        return report.BackendResult(rows=rows, worker_rss=rss, populate_seconds=populated,
                                    missing=sorted(pop.missing))


if __name__ == "__main__":
    sys.exit(main())
