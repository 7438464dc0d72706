"""What each way of presenting a key costs, against the body's ``api_key`` (docs/
authentication.md): the same ``get_user`` call with the key in the body, as a Bearer header,
as HTTP Basic, as a scoped key, and as an exchanged token; and the exchange itself.

In-process through werkzeug's test client, as the scaling part: the paths are measured
interleaved (body, bearer, basic, ..., body, ...), so the machine's noise falls on all alike,
and each is reported as its median's ratio to the body key's.
"""

from __future__ import annotations

import base64
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from rpcserver.db.models import ApiKey

from . import scaling
from .servers import database

ROUNDS = 300


@dataclass(frozen=True)
class AuthRow:
    path: str
    p50_ms: float
    relative: float


def run(backend: str, workdir: Path, pg_url: str,
        progress: Callable[[str], None] = print) -> list[AuthRow]:
    with database(backend, workdir, pg_url, "auth") as url:
        data = scaling.build(url, "auth", users=1000, repos=0, workdir=workdir)
        try:
            return _measure(data, progress)
        finally:
            data.db.dispose()


def _measure(data: scaling.Dataset, progress: Callable[[str], None]) -> list[AuthRow]:
    client, key = data.client, data.keys["admin"]
    scoped = _scoped_key(data, key)
    basic = "Basic " + base64.b64encode(f"admin:{key}".encode()).decode()
    token = client.get("/_admin/token", query_string={"scope": "read"},
                       headers={"Authorization": basic}).get_json()["token"]
    body = {"id": 1, "method": "get_user", "args": {}}

    def post(api_key: str | None, headers: dict[str, str] | None = None) -> Callable[[], Any]:
        payload = json.dumps({**body, "api_key": api_key} if api_key else body)
        return lambda: client.post("/_admin/api", data=payload, headers=headers or {})

    paths: dict[str, Callable[[], Any]] = {
        "body api_key": post(key),
        "Authorization: Bearer": post(None, {"Authorization": f"Bearer {key}"}),
        "Authorization: Basic": post(None, {"Authorization": basic}),
        "a read-scoped key (body)": post(scoped),
        "an exchanged token (Bearer)": post(None, {"Authorization": f"Bearer {token}"}),
        "the exchange (GET /_admin/token)": lambda: client.get(
            "/_admin/token", query_string={"scope": "read"}, headers={"Authorization": basic}),
    }
    for name, call in paths.items():  # warm up, and check each works
        answer = call()
        assert answer.status_code == 200, (name, answer.get_data())
        if name != "the exchange (GET /_admin/token)":
            assert answer.get_json()["error"] is None, (name, answer.get_json())
    samples: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(ROUNDS):
        for name, call in paths.items():
            started = time.perf_counter()
            call()
            samples[name].append((time.perf_counter() - started) * 1000)
    body_p50 = statistics.median(samples["body api_key"])
    rows = [AuthRow(name, statistics.median(s), statistics.median(s) / body_p50)
            for name, s in samples.items()]
    for row in rows:
        progress(f"  {row.path}: {row.p50_ms:.2f} ms ({row.relative:.2f}x the body key)")
    return rows


def _scoped_key(data: scaling.Dataset, key: str) -> str:
    scoped = scaling.api_key_for(data.db, "admin")
    with data.db.transaction(write=True) as session:
        row = session.scalars(select(ApiKey).order_by(ApiKey.id.desc())).first()
        assert row is not None
        row.scopes = "read"
    return scoped


def render(rows: dict[str, list[AuthRow]]) -> list[str]:
    out = ["## Authentication paths", "",
           f"In-process, the same `get_user` with the admin's key presented each way, "
           f"{ROUNDS} interleaved rounds; p50 and its ratio to the body key's.", "",
           "| backend | path | p50 ms | vs body key |", "|---|---|---|---|"]
    for backend, backend_rows in rows.items():
        out += [f"| {backend} | {r.path} | {r.p50_ms:.2f} | {r.relative:.2f} |"
                for r in backend_rows]
    return [*out, ""]
