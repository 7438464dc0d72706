"""Interleaved load runs: baseline, server, baseline, server, ... and what they add up to."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from . import servers, wrk
from .calls import Call
from .populate import Population

#: A run in which one worker did less than this share of the two workers' CPU time got (nearly)
#: all of wrk's connections from the kernel, and is run again, up to ``MAX_TRIES`` times.
MIN_WORKER_SHARE = 0.25
MAX_TRIES = 4


@dataclass
class Row:
    """One call on one backend: a server run and the baseline run beside it, per round."""

    call: Call
    server: list[wrk.Load] = field(default_factory=list)
    baseline: list[wrk.Load] = field(default_factory=list)
    #: Why there are no figures ("n/a (method missing: ...)"), or "".
    skipped: str = ""

    #: The best baseline round of the whole backend's run (set by ``run_calls``).
    reference_rps: float = 0.0
    #: Runs (baseline and server) made again because one worker got nearly all connections.
    repeated: int = 0

    # Best rounds, not medians: what disturbs a run here only ever slows it. Besides other
    # people's load, the kernel now and then hands all of a run's connections to one of the
    # two workers (seen with `ss`: 32 on one, none on the other), and that run goes at a third
    # of the speed, baseline and server alike, at random. The baseline app does the same work
    # for every call, so the best of all its rounds in the run is the reference: a row whose
    # own baseline rounds were all unlucky would otherwise look two or three times better.

    @property
    def rps(self) -> float:
        return max(load.rps for load in self.server)

    @property
    def baseline_rps(self) -> float:
        return self.reference_rps or max(load.rps for load in self.baseline)

    @property
    def ratio(self) -> float:
        """The server's best round over the best baseline round of the run."""
        return self.rps / self.baseline_rps

    @property
    def p50_ms(self) -> float:
        return statistics.median(load.p50_ms for load in self.server)

    @property
    def p99_ms(self) -> float:
        return statistics.median(load.p99_ms for load in self.server)

    @property
    def unexpected(self) -> int:
        return sum(load.unexpected for load in self.server)

    @property
    def met(self) -> bool | None:
        if self.skipped or not self.server:
            return None
        ok = self.call.target.met(self.rps, self.baseline_rps)
        if ok is None:
            return None
        # The ratio target is judged on the interleaved ratio, the robust figure.
        if self.call.target.ratio is not None:
            ok = self.ratio >= self.call.target.ratio
        return ok and self.unexpected == 0


def balanced(run: Callable[[int], wrk.Load], master: int) -> tuple[wrk.Load, int]:
    """``run(attempt)``, again while one of gunicorn's workers did almost none of the work;
    the load and how many runs were thrown away."""
    pids = servers.worker_pids(master)
    for attempt in range(MAX_TRIES):
        before = [servers.cpu_ticks(pid) for pid in pids]
        load = run(attempt)
        used = [servers.cpu_ticks(pid) - ticks for pid, ticks in zip(pids, before, strict=True)]
        total = sum(used)
        if len(pids) < 2 or total == 0 or min(used) / total >= MIN_WORKER_SHARE:
            return load, attempt
    return load, MAX_TRIES - 1


def _run(url: str, attempt: int, *, body: str, unique: str, expect: str, seconds: float,
         wrk_path: str) -> wrk.Load:
    # A run made again must not send the names its first try created.
    return wrk.run(url, body, expect=expect, unique=f"{unique}r{attempt}", seconds=seconds,
                   wrk=wrk_path)


def run_calls(calls: tuple[Call, ...], pop: Population, server_url: str, baseline_url: str,
              *, server_pid: int, baseline_pid: int, rounds: int, seconds: float, tag: str,
              wrk_path: str, progress: Callable[[str], None] = print) -> list[Row]:
    """Every call ``rounds`` times, each server run right after a baseline run."""
    rows = [Row(call) for call in calls]
    for row in rows:
        missing = row.call.missing(pop)
        if missing:
            row.skipped = f"n/a (method missing: {', '.join(missing)})"
    reads = [row for row in rows if not row.skipped and not row.call.writes]
    writes = [row for row in rows if not row.skipped and row.call.writes]
    # All reads before any write: the reads must see exactly the populated data.
    for phase in (reads, writes):
        for round_ in range(rounds):
            for row in phase:
                body = row.call.body(pop)
                unique = f"{tag}{round_}"
                run = partial(_run, body=body, seconds=seconds, wrk_path=wrk_path)
                b, b_again = balanced(partial(run, baseline_url, unique=f"b{unique}",
                                              expect=wrk.EXPECT_OK), baseline_pid)
                s, s_again = balanced(partial(run, server_url, unique=unique,
                                              expect=row.call.expect), server_pid)
                row.baseline.append(b)
                row.server.append(s)
                row.repeated += b_again + s_again
                progress(f"  [{tag} round {round_ + 1}/{rounds}] {row.call.label}: "
                         f"{s.rps:,.0f}/s (baseline {b.rps:,.0f}/s, {s.rps / b.rps:.2f}x), "
                         f"p50 {s.p50_ms:.1f} ms, p99 {s.p99_ms:.1f} ms"
                         + (f", {s.unexpected} unexpected" if s.unexpected else "")
                         + (f" ({b_again + s_again} unbalanced runs repeated)"
                            if b_again + s_again else ""))
    measured = [load.rps for row in rows for load in row.baseline]
    for row in rows:
        row.reference_rps = max(measured, default=0.0)
    return rows
