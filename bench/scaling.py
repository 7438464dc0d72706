"""Scaling: SQL statements and latency per call as the stored data grows (issue 6 §4).

Point lookups must stay flat as the tables grow; a list's cost must follow what it returns,
not what is stored. Each size is its own database, all open at once, and the calls alternate
between them (1k, 10k, 100k, 1k, ...), so that the machine's noise falls on every size alike.
This part runs in-process through werkzeug's test client: no HTTP, only our code and the
database. Rows beyond the first are inserted with SQLAlchemy core inserts, for speed.
"""

from __future__ import annotations

import contextlib
import json
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import event, insert, select
from werkzeug.test import Client

from rpcserver.api import build_registry
from rpcserver.core.config import Config
from rpcserver.db import migrations
from rpcserver.db.database import Database
from rpcserver.db.models import Level, Repository, User, UserRepoPerm
from rpcserver.domain.auth import issue_api_key
from rpcserver.domain.bootstrap import create_first_admin, seed_default_user
from rpcserver.web.app import create_app

from .report import ScalingRow
from .servers import analyze, database

FLAT = 1.2
#: auth.KeyLookup's one statement per call runs on the bare driver connection, where
#: SQLAlchemy's hook does not see it.
KEY_LOOKUP = 1
BATCH = 5000
#: Time spent measuring one group of sizes, and the least samples per size.
BUDGET_SECONDS = 8.0
MIN_SAMPLES = 15
MAX_SAMPLES = 400
EMPTY_CHANGESET = {"short_id": "000000000000", "raw_id": "0" * 40, "revision": -1,
                   "message": "", "date": "1970-01-01T00:00:00", "author": ""}


@dataclass(frozen=True)
class ScaleCall:
    label: str
    method: str
    args: dict[str, Any]
    caller: str  # "admin" or "reader"
    #: True: must stay within FLAT x the smallest size (a point lookup, or a list whose
    #: returned size does not change).
    flat: bool


USER_CALLS = (
    ScaleCall("get_user (self)", "get_user", {}, "admin", True),
    ScaleCall("get_user (other, by name)", "get_user", {"userid": "user-000500"}, "admin", True),
    # Without ``n``, more than 10,000 users (max_list_items) are refused: the 100k database
    # is listed a page of 10,000 at a time, as a script must.
    ScaleCall("get_users (n=10,000)", "get_users", {"n": 10_000}, "admin", False),
    ScaleCall("get_users (page of 100)", "get_users", {"n": 100, "last": "user-000500"},
              "admin", True),
)
REPO_CALLS = (
    ScaleCall("get_repos (non-admin, 10 readable)", "get_repos", {}, "reader", True),
    ScaleCall("get_repos (admin)", "get_repos", {}, "admin", False),
    # A keyset page (``n``, ``last``): the name's index, whatever the table's size.
    ScaleCall("get_repos (admin, page of 100)", "get_repos", {"n": 100, "last": "repo-000050"},
              "admin", True),
)


@dataclass
class Dataset:
    """One database of a given size and an in-process app over it."""

    size: str
    db: Database
    client: Client
    keys: dict[str, str]
    statements: list[int] = field(default_factory=lambda: [0])
    serial: int = 0

    def call(self, c: ScaleCall) -> Any:
        args = c.args
        if any(isinstance(v, str) and "@N@" in v for v in args.values()):
            # a write that must be unique each time (as in bench/envelope.lua)
            self.serial += 1
            args = {k: v.replace("@N@", f"n{self.serial}") if isinstance(v, str) else v
                    for k, v in args.items()}
        body = {"id": 1, "api_key": self.keys[c.caller], "method": c.method, "args": args}
        answer = json.loads(self.client.post("/_admin/api", json=body).get_data())
        if answer["error"] is not None:
            raise RuntimeError(f"{c.label} on {self.size}: {answer['error']}")
        return answer["result"]


def new_database(url: str) -> tuple[Database, str]:
    """A migrated database holding ``default`` and ``admin``; the admin's key."""
    db = Database.connect(url)
    migrations.upgrade(db.engine)
    with db.transaction(write=True) as session:
        seed_default_user(session)
        admin_key = create_first_admin(session, "admin", "admin@bench.test")
    return db, admin_key


def api_key_for(db: Database, username: str) -> str:
    with db.transaction(write=True) as session:
        user = session.scalars(select(User).where(User.username == username)).one()
        key, _row = issue_api_key(session, user)
        return key


def _bulk_insert(db: Database, users: int, repos: int) -> None:
    """``reader`` plus users up to ``users`` in all, and ``repos`` private repositories of
    which ``reader`` may read ten."""
    with db.engine.begin() as conn:
        admin_id = conn.scalar(select(User.id).where(User.username == "admin"))
        conn.execute(insert(User), [{"username": "reader", "email": "reader@bench.test"}])
        reader_id = conn.scalar(select(User.id).where(User.username == "reader"))
        rest = users - 2  # admin and reader
        for start in range(1, rest + 1, BATCH):
            conn.execute(insert(User), [
                {"username": f"user-{i:06d}", "email": f"user-{i:06d}@bench.test",
                 "firstname": "User", "lastname": f"{i}"}
                for i in range(start, min(start + BATCH, rest + 1))])
        for start in range(1, repos + 1, BATCH):
            conn.execute(insert(Repository), [
                {"name": f"repo-{i:06d}", "repo_type": "git", "description": "",
                 "private": True, "landing_rev": "rev:tip", "owner_id": admin_id,
                 "changeset_cache": EMPTY_CHANGESET}
                for i in range(start, min(start + BATCH, repos + 1))])
        if repos:
            step = repos // 10
            names = [f"repo-{i:06d}" for i in range(step, repos + 1, step)][:10]
            ids = conn.scalars(select(Repository.id).where(Repository.name.in_(names))).all()
            conn.execute(insert(UserRepoPerm), [
                {"user_id": reader_id, "repo_id": repo_id, "level": Level.READ}
                for repo_id in ids])


def in_process(db: Database, url: str, size: str, keys: dict[str, str],
               workdir: Path) -> Dataset:
    """The app over ``db``, called through werkzeug's test client, counting statements."""
    config = Config.load(env={"RPCSERVER_DATABASE_URL": url,
                              "RPCSERVER_REPOS_ROOT": str(workdir / f"repos-{size}"),
                              "RPCSERVER_LOG_LEVEL": "WARNING"})
    app = create_app(config, db=db)

    def from_loopback(environ: dict[str, Any], start_response: Any) -> Any:
        environ.setdefault("REMOTE_ADDR", "127.0.0.1")
        return app(environ, start_response)

    data = Dataset(size=size, db=db, client=Client(from_loopback), keys=keys)

    def count(*_args: Any) -> None:
        data.statements[0] += 1

    for engine in db.engines:
        event.listen(engine, "before_cursor_execute", count)
    return data


def build(url: str, size: str, users: int, repos: int, workdir: Path) -> Dataset:
    """A database of ``users`` users and ``repos`` repositories, inserted in bulk."""
    db, admin_key = new_database(url)
    _bulk_insert(db, users, repos)
    analyze(url)
    keys = {"admin": admin_key, "reader": api_key_for(db, "reader")}
    return in_process(db, url, size, keys, workdir)


def _measure(datasets: list[Dataset], c: ScaleCall) -> list[ScalingRow]:
    counts, returned = [], []
    for data in datasets:
        for _ in range(3):  # warm the caches
            data.call(c)
        data.statements[0] = 0
        result = data.call(c)
        counts.append(data.statements[0] + KEY_LOOKUP)
        returned.append(len(result) if isinstance(result, list) else 1)
    started = time.perf_counter()
    for data in datasets:
        data.call(c)
    once = time.perf_counter() - started
    samples = max(MIN_SAMPLES, min(MAX_SAMPLES, int(BUDGET_SECONDS / max(once, 1e-6))))
    times: list[list[float]] = [[] for _ in datasets]
    n = len(datasets)
    for sample in range(samples):
        # The order rotates, so that each size follows every other equally often: a large
        # answer right after a small one pays for memory the small one did not need.
        for k in range(n):
            i = (sample + k) % n
            t0 = time.perf_counter()
            datasets[i].call(c)
            times[i].append(time.perf_counter() - t0)
    p50 = [statistics.median(t) * 1000 for t in times]
    rows = []
    for i, data in enumerate(datasets):
        relative = p50[i] / p50[0]
        target, met = "", None
        if c.flat and i:
            target, met = f"<= {FLAT}x smallest", relative <= FLAT
        rows.append(ScalingRow(call=c.label, size=data.size, returned=returned[i],
                               statements=counts[i], p50_ms=p50[i], relative=relative,
                               target=target, met=met))
    return rows


@contextlib.contextmanager
def _datasets(backend: str, workdir: Path, pg_url: str,
              sizes: list[tuple[str, int, int]]) -> Iterator[list[Dataset]]:
    with contextlib.ExitStack() as stack:
        built = []
        for label, users, repos in sizes:
            name = f"scale_{label.replace(' ', '_').replace(',', '')}"
            url = stack.enter_context(database(backend, workdir, pg_url, name))
            data = build(url, label, users, repos, workdir)
            stack.callback(data.db.dispose)
            built.append(data)
        yield built


def _group(backend: str, workdir: Path, pg_url: str, sizes: list[tuple[str, int, int]],
           calls: tuple[ScaleCall, ...], progress: Callable[[str], None]) -> list[ScalingRow]:
    registry = build_registry()
    rows: list[ScalingRow] = []
    runnable = [c for c in calls if registry.lookup(c.method) is not None]
    for c in calls:
        if c not in runnable:
            rows.append(ScalingRow(call=c.label, size="", returned=0, statements=0,
                                   p50_ms=0.0, relative=0.0,
                                   skipped=f"n/a (method missing: {c.method})"))
    if not runnable:
        return rows
    t0 = time.monotonic()
    with _datasets(backend, workdir, pg_url, sizes) as datasets:
        progress(f"  built {', '.join(s[0] for s in sizes)} in {time.monotonic() - t0:.0f} s")
        for c in runnable:
            measured = _measure(datasets, c)
            progress("  " + c.label + ": " + ", ".join(
                f"{r.size} {r.p50_ms:.2f} ms / {r.statements} statements" for r in measured))
            rows += measured
    return rows


def run(backend: str, workdir: Path, pg_url: str,
        progress: Callable[[str], None] = print,
        words: tuple[str, ...] = ()) -> list[ScalingRow]:
    """Every scaling row, or (``words``, from ``--calls``) those whose label holds a word;
    a group none of whose calls is chosen builds no databases."""

    def chosen(calls: tuple[ScaleCall, ...]) -> tuple[ScaleCall, ...]:
        return tuple(c for c in calls if not words or any(w in c.label for w in words))

    rows: list[ScalingRow] = []
    for sizes, calls in (([("1k users", 1_000, 0), ("10k users", 10_000, 0),
                           ("100k users", 100_000, 0)], USER_CALLS),
                         ([("200 repos", 1_000, 200), ("10k repos", 1_000, 10_000)],
                          REPO_CALLS)):
        if chosen(calls):
            rows += _group(backend, workdir, pg_url, sizes, chosen(calls), progress)
    return rows
