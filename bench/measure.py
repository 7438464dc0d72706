"""Interleaved load runs: baseline, server, baseline, server, ... and what they add up to."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

from . import wrk
from .calls import Call
from .populate import Population


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


def run_calls(calls: tuple[Call, ...], pop: Population, server_url: str, baseline_url: str,
              *, rounds: int, seconds: float, tag: str, wrk_path: str,
              progress: Callable[[str], None] = print) -> list[Row]:
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
                row.baseline.append(wrk.run(baseline_url, body, unique=f"b{unique}",
                                            seconds=seconds, wrk=wrk_path))
                row.server.append(wrk.run(server_url, body, expect=row.call.expect,
                                          unique=unique, seconds=seconds, wrk=wrk_path))
                s, b = row.server[-1], row.baseline[-1]
                progress(f"  [{tag} round {round_ + 1}/{rounds}] {row.call.label}: "
                         f"{s.rps:,.0f}/s (baseline {b.rps:,.0f}/s, {s.rps / b.rps:.2f}x), "
                         f"p50 {s.p50_ms:.1f} ms, p99 {s.p99_ms:.1f} ms"
                         + (f", {s.unexpected} unexpected" if s.unexpected else ""))
    measured = [load.rps for row in rows for load in row.baseline]
    for row in rows:
        row.reference_rps = max(measured, default=0.0)
    return rows
