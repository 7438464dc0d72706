"""Driving wrk: install it when missing, run one load against one URL, read its summary."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

SCRIPT = Path(__file__).with_name("envelope.lua")
#: One wrk thread leaves the two cores to the server; 32 connections keep every gunicorn
#: thread of both workers busy. The kernel hands each new connection to whichever worker
#: accepts first, and a run keeps its connections, so a run now and then puts nearly all of
#: them on one worker, with 8 connections as with 32: ``measure.balanced`` makes such a run
#: again.
THREADS = 1
CONNECTIONS = 32


def ensure_wrk() -> str:
    """The path of wrk, installed with apt-get (Debian package ``wrk``) when missing."""
    found = shutil.which("wrk")
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt is None:
        raise SystemExit("wrk is missing and there is no apt-get: install wrk, then re-run")
    print("installing wrk (apt-get install -y wrk) ...", flush=True)
    if subprocess.run([apt, "install", "-y", "-qq", "wrk"], check=False,
                      capture_output=True).returncode != 0:
        subprocess.run([apt, "update", "-qq"], check=True)
        subprocess.run([apt, "install", "-y", "-qq", "wrk"], check=True)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("apt-get installed wrk but it is not on PATH")
    return found


@dataclass(frozen=True)
class Load:
    """One wrk run's figures."""

    requests: int
    seconds: float
    unexpected: int
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


#: What every good answer contains, unless a call expects an error.
EXPECT_OK = '"error": null'


def run(url: str, body: str, *, expect: str = EXPECT_OK, unique: str = "u",
        seconds: float = 5.0, connections: int = CONNECTIONS, wrk: str = "wrk") -> Load:
    """Load ``url`` with ``body`` for ``seconds``; every non-200 or unexpected answer counts."""
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError(f"the bench only loads servers on 127.0.0.1, not {url}")
    cmd = [wrk, "-t", str(THREADS), "-c", str(connections), "-d", f"{seconds:g}s",
           "--timeout", "30s", "-s", str(SCRIPT), url, "--", body, expect, unique]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True,
                         timeout=seconds + 60).stdout
    line = next((x for x in out.splitlines() if x.startswith("BENCH ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{out}")
    data = json.loads(line.removeprefix("BENCH "))
    return Load(requests=data["requests"], seconds=data["duration_us"] / 1e6,
                unexpected=data["unexpected"] + data["socket_errors"],
                p50_ms=data["p50_us"] / 1000, p99_ms=data["p99_us"] / 1000)
