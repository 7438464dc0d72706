"""Engines, sessions and the transaction boundary.

SQLite is tuned for a multi-process server: WAL so readers never wait for a writer, a busy
timeout instead of instant "database is locked", foreign keys on, and write transactions begun
``IMMEDIATE`` so two writers queue up front instead of deadlocking when a reader upgrades.

PostgreSQL reads run on an engine of their own, in autocommit and read-only. Under READ
COMMITTED (PostgreSQL's default) every statement takes its own snapshot anyway, so a read
transaction's BEGIN and ROLLBACK were two round trips that bought nothing (a bad key cost
0.71 ms in-process with them and the pool's ping, 0.44 ms without); read-only means a method
wrongly registered as a read still cannot write. The read pool does not ping a connection
before lending it; the dispatcher retries a read once when its connection turns out to be
dead (a restarted server). Writes keep the ping.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 30_000


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine with the connection settings this server relies on."""
    # A database error logged with its traceback must not carry the statement's parameters:
    # they can hold password hashes and clone_uri credentials.
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def make_read_engine(url: str, **kwargs: Any) -> Engine:
    """PostgreSQL: autocommit, read-only sessions, no ping (see the module's docstring)."""
    connect_args = dict(kwargs.pop("connect_args", {}))
    connect_args["options"] = (connect_args.get("options", "") +
                               " -c default_transaction_read_only=on").strip()
    kwargs.update(isolation_level="AUTOCOMMIT", pool_pre_ping=False, connect_args=connect_args)
    return make_engine(url, **kwargs)


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event, not the driver, decide how a transaction starts.
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_on_begin(conn: Any) -> None:
    mode = "IMMEDIATE" if conn.get_execution_options().get("rpc_write") else "DEFERRED"
    conn.exec_driver_sql(f"BEGIN {mode}")


@dataclass(frozen=True)
class Database:
    """The engine plus two session factories: one for reads, one for writes."""

    engine: Engine
    read_sessions: sessionmaker[Session]
    write_sessions: sessionmaker[Session]
    #: PostgreSQL's read engine; on SQLite reads use ``engine``.
    read_engine: Engine | None = None

    @classmethod
    def connect(cls, url: str, **engine_kwargs: Any) -> Database:
        engine = make_engine(url, **engine_kwargs)
        writer = engine.execution_options(rpc_write=True)
        read_engine = None if url.startswith("sqlite") else make_read_engine(url, **engine_kwargs)
        return cls(
            engine=engine,
            read_sessions=sessionmaker(read_engine or engine, expire_on_commit=False),
            write_sessions=sessionmaker(writer, expire_on_commit=False),
            read_engine=read_engine,
        )

    @property
    def engines(self) -> tuple[Engine, ...]:
        """Every engine (to listen to events on all of them)."""
        return (self.engine,) if self.read_engine is None else (self.engine, self.read_engine)

    @contextmanager
    def transaction(self, *, write: bool) -> Iterator[Session]:
        """One unit of work: commit when the block succeeds, roll back on any exception."""
        factory = self.write_sessions if write else self.read_sessions
        with factory() as session, session.begin():
            yield session

    def dispose(self) -> None:
        for engine in self.engines:
            engine.dispose()
