"""The results file: machine facts, the load and scaling tables, worker memory, notes."""

from __future__ import annotations

import datetime as dt
import os
import platform
import sqlite3
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rpcserver.core.config import Config

from .measure import Row
from .wrk import CONNECTIONS, THREADS

HERE = Path(__file__).parent
#: Hand-written notes (what stands in the way of an unmet target, profiles before/after),
#: copied into every results file.
NOTES = HERE / "notes.md"
RSS_TARGET_MB = 60.0
PG_WITHIN = 1.5


@dataclass
class BackendResult:
    rows: list[Row]
    worker_rss: list[float]
    populate_seconds: float
    missing: list[str]


@dataclass
class ScalingRow:
    call: str
    size: str
    returned: int
    statements: int
    p50_ms: float
    #: p50 / p50 of the smallest size of the same call.
    relative: float
    target: str = ""
    met: bool | None = None
    #: Why there are no figures, or "".
    skipped: str = ""


@dataclass
class Results:
    facts: dict[str, str]
    rounds: int
    seconds: float
    backends: dict[str, BackendResult] = field(default_factory=dict)
    scaling: dict[str, list[ScalingRow]] = field(default_factory=dict)
    #: The auth part's rows (``bench.auth_paths.AuthRow``), by backend.
    auth_paths: dict[str, list[Any]] = field(default_factory=dict)
    baseline_rss: list[float] = field(default_factory=list)
    minutes: float = 0.0


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=True,
                              cwd=HERE).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gb() -> str:
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        return f"{kb / 1024 / 1024:.0f} GB"
    except (OSError, ValueError, IndexError):
        return "unknown"


def _postgres_version(url: str) -> str:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return str(conn.execute(text("SHOW server_version")).scalar())
    except Exception as exc:  # only a fact for the report: never fail the run on it
        return f"unreachable ({type(exc).__name__})"
    finally:
        engine.dispose()


def machine_facts(pg_url: str | None) -> dict[str, str]:
    config = Config()
    wrk_version = subprocess.run(["sh", "-c", "wrk -v 2>&1 | head -1"], capture_output=True,
                                 text=True, check=False).stdout.strip()
    return {
        "date": dt.date.today().isoformat(),
        "commit": _git("rev-parse", "--short", "HEAD") or "unknown",
        "dirty": "yes" if _git("status", "--porcelain", "--untracked-files=no") else "no",
        "cpu": f"{_cpu()}, {os.cpu_count()} cores",
        "memory": _memory_gb(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": _postgres_version(pg_url) if pg_url else "not run",
        "wrk": wrk_version or "not installed",
        "gunicorn": (f"{config.workers} workers x {config.threads} threads "
                     f"({'gthread' if config.threads > 1 else 'sync'})"),
        "load_before": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def _fmt_rps(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def _yes(met: bool | None) -> str:
    return {True: "yes", False: "**no**", None: "-"}[met]


def _load_table(result: BackendResult, sqlite: BackendResult | None) -> list[str]:
    compare = sqlite is not None
    head = ("| call | requests/s | p50 ms | p99 ms | baseline/s | ratio | target | met? |"
            + (" SQLite ratio / this |" if compare else ""))
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    by_label = {row.call.label: row for row in sqlite.rows} if sqlite else {}
    for row in result.rows:
        if row.skipped or not row.server:
            cells = [row.call.label, row.skipped or "not run", "", "", "", "",
                     str(row.call.target), "-"]
            lines.append("| " + " | ".join(cells) + " |" + (" |" if compare else ""))
            continue
        bad = f" ({row.unexpected} unexpected)" if row.unexpected else ""
        cells = [row.call.label, _fmt_rps(row.rps) + bad, f"{row.p50_ms:.1f}",
                 f"{row.p99_ms:.1f}", _fmt_rps(row.baseline_rps), f"{row.ratio:.2f}",
                 str(row.call.target), _yes(row.met)]
        if compare:
            other = by_label.get(row.call.label)
            if other is not None and other.server and row.ratio:
                slower = other.ratio / row.ratio
                mark = "" if slower <= PG_WITHIN else " **over 1.5**"
                cells.append(f"{slower:.2f}{mark}")
            else:
                cells.append("-")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _rss_line(name: str, rss: list[float]) -> str:
    if not rss:
        return f"- {name}: not measured"
    worst = max(rss)
    verdict = "met" if worst <= RSS_TARGET_MB else "**not met**"
    figures = ", ".join(f"{mb:.1f}" for mb in rss)
    return f"- {name}: {figures} MB (target <= {RSS_TARGET_MB:.0f} MB: {verdict})"


def render(results: Results) -> str:
    f = results.facts
    out = [f"# Benchmark results: {f['date']}, commit {f['commit']}"
           + (" (with uncommitted changes)" if f["dirty"] == "yes" else ""), ""]
    out += [
        f"- Machine: {f['cpu']}, {f['memory']}, {f['os']}; load average before the run: "
        f"{f['load_before']}",
        f"- Software: Python {f['python']}, SQLite {f['sqlite']}, PostgreSQL "
        f"{f['postgresql']}, {f['wrk']}",
        f"- Server: `rpcserver serve`, gunicorn {f['gunicorn']}; the baseline app "
        "(`bench/baseline.py`) runs on the same gunicorn settings.",
        f"- Load: wrk, {THREADS} thread, {CONNECTIONS} connections, {results.seconds:g} s per "
        f"run, {results.rounds} interleaved rounds (baseline, server, baseline, server, ...). "
        "A run in which one of the two workers did less than a quarter of the work (the "
        "kernel gave the other nearly all connections) is made again, up to 4 times. "
        "requests/s: the best round (noise only slows a run); p50, p99: medians over the "
        "rounds; baseline/s: the best baseline round of the backend's run (the baseline does the "
        "same work for every call); ratio: the server's best round over it. An answer that "
        "is not HTTP 200 with the expected `error` "
        "counts as unexpected and fails the row.",
        "- Data: populated through the API (`bench/populate.py`): 1,000 users, 50 user "
        "groups x 20 members, 4 repository groups, 200 private repositories (20 in the "
        "groups); the non-admin `reader` has read on 10 of them.",
        f"- Whole run: {results.minutes:.1f} minutes.",
        "",
    ]
    sqlite = results.backends.get("sqlite")
    for backend, result in results.backends.items():
        title = "SQLite" if backend == "sqlite" else "PostgreSQL"
        out += [f"## Load on {title}", ""]
        compare = sqlite if backend != "sqlite" else None
        out += _load_table(result, compare)
        repeated = sum(row.repeated for row in result.rows)
        out += ["", f"Populated in {result.populate_seconds:.0f} s. Runs made again because "
                f"the kernel gave one worker nearly all connections: {repeated}."]
        if result.missing:
            out.append("Methods the server does not have yet (their rows are n/a): "
                       + ", ".join(f"`{m}`" for m in result.missing) + ".")
        if compare is not None:
            out.append(f"Last column: SQLite's ratio to baseline divided by this backend's; "
                       f"the target is <= {PG_WITHIN}.")
        out.append("")
    if results.scaling:
        out += ["## Scaling", "",
                "In-process (werkzeug's test client against `create_app`), so no HTTP: the "
                "sizes are measured interleaved and compared with each other. Bulk data "
                "(users beyond 1,000, repositories beyond 200) is inserted directly with "
                "SQLAlchemy core inserts for speed; statements are counted with a "
                "SQLAlchemy `before_cursor_execute` hook, plus the API key's look-up, which "
                "runs on the bare driver connection (one per call).", ""]
        out += ["| backend | call | size | returned | SQL statements | p50 ms | vs smallest "
                "| target | met? |", "|---|---|---|---|---|---|---|---|---|"]
        for backend, rows in results.scaling.items():
            for r in rows:
                if r.skipped:
                    out.append(f"| {backend} | {r.call} | {r.skipped} | | | | | | |")
                    continue
                out.append(f"| {backend} | {r.call} | {r.size} | {r.returned:,} | "
                           f"{r.statements} | {r.p50_ms:.2f} | {r.relative:.2f} | "
                           f"{r.target or '-'} | {_yes(r.met) if r.target else '-'} |")
        out.append("")
    if results.auth_paths:
        from .auth_paths import render as render_auth_paths

        out += render_auth_paths(results.auth_paths)
    out += ["## Worker memory (VmRSS after the run)", ""]
    for backend, result in results.backends.items():
        out.append(_rss_line(f"rpcserver on {backend}", result.worker_rss))
    if results.baseline_rss:
        out.append(f"- baseline app: {', '.join(f'{mb:.1f}' for mb in results.baseline_rss)} "
                   "MB (for comparison)")
    out.append("")
    unmet = _unmet(results)
    out += ["## Targets not met", ""]
    out += [f"- {line}" for line in unmet] or ["- none"]
    out.append("")
    if NOTES.exists():
        out += ["## Notes", "", NOTES.read_text().strip(), ""]
    return "\n".join(out)


def _unmet(results: Results) -> list[str]:
    lines: list[str] = []
    sqlite = results.backends.get("sqlite")
    for backend, result in results.backends.items():
        for row in result.rows:
            if row.met is False:
                lines.append(f"{backend}: {row.call.label} ({_fmt_rps(row.rps)}/s, ratio "
                             f"{row.ratio:.2f}; target {row.call.target})")
            elif row.skipped:
                lines.append(f"{backend}: {row.call.label}: {row.skipped}")
        if backend != "sqlite" and sqlite is not None:
            theirs = {r.call.label: r for r in sqlite.rows if r.server}
            for row in result.rows:
                other = theirs.get(row.call.label)
                if row.server and other is not None and other.ratio / row.ratio > PG_WITHIN:
                    lines.append(f"{backend}: {row.call.label} is "
                                 f"{other.ratio / row.ratio:.2f}x slower than on SQLite")
        if result.worker_rss and max(result.worker_rss) > RSS_TARGET_MB:
            lines.append(f"{backend}: worker RSS {max(result.worker_rss):.0f} MB")
    for backend, rows in results.scaling.items():
        lines += [f"{backend} scaling: {r.call} at {r.size} is {r.relative:.2f}x the "
                  f"smallest ({r.target})" for r in rows if r.met is False]
    return lines


def write(text: str, directory: Path, facts: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{facts['date']}-{facts['commit']}.md"
    path.write_text(text + "\n")
    return path
