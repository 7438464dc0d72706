"""Engines, sessions and the transaction boundary.

SQLite is tuned for a multi-process server: WAL so readers never wait for a writer, a busy
timeout instead of instant "database is locked", foreign keys on, and write transactions begun
``IMMEDIATE`` so two writers queue up front instead of deadlocking when a reader upgrades.

PostgreSQL reads run on an engine of their own, in autocommit and read-only. Under READ
COMMITTED (PostgreSQL's default) every statement takes its own snapshot anyway, so a read
transaction's BEGIN and ROLLBACK were two round trips that bought nothing (a bad key cost
0.71 ms in-process with them and the pool's ping, 0.44 ms without); read-only means a method
wrongly registered as a read still cannot write. The read pool does not ping a connection
before lending it. Writes keep the ping.

When the database goes away (a restart, a crash, a refused connection), ``connection_lost``
tells the dispatcher which failures it may run again: one whose transaction provably did not
commit, because it failed before COMMIT was sent. A write whose connection died during COMMIT
itself may have committed; ``transaction`` raises ``CommitUnknown`` for it, which is answered
but never retried. ``unavailable`` says which driver errors are the database's fault, not the
call's: they answer ``Database unavailable, try again`` rather than ``Internal server error``.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import OperationalError as SAOperationalError
from sqlalchemy.orm import Session, sessionmaker

from rpcserver.core.errors import DatabaseUnavailable

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000
#: PostgreSQL's SQLSTATEs of a connection that is gone or cannot be had now: class 08
#: (connection exception) is matched by prefix; 57P01-57P03 are an administrator's shutdown,
#: a crash shutdown and "the database system is starting up / shutting down"; 53300 is
#: "too many connections".
_PG_LOST = ("57P01", "57P02", "57P03", "53300")
#: SQLite's primary result codes of a database that cannot be used now: BUSY and LOCKED (the
#: busy timeout ran out), IOERR, FULL, CANTOPEN.
_SQLITE_UNAVAILABLE = (5, 6, 10, 13, 14)


class CommitUnknown(DatabaseUnavailable):
    """A write's connection died while its COMMIT was on the way: it may have committed, so
    it must not run again; the client is told to look before it tries again."""


def connection_lost(exc: DBAPIError) -> bool:
    """The connection died or could not be made (PostgreSQL): a call that failed with this
    before COMMIT was sent changed nothing and may run again."""
    orig = exc.orig
    if isinstance(orig, sqlite3.Error):
        return False
    if exc.connection_invalidated:
        return True
    if not isinstance(exc, SAOperationalError):
        return False
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    # No SQLSTATE: the driver's own report of a refused, reset or closed connection.
    return state is None or state.startswith("08") or state in _PG_LOST


def unavailable(exc: DBAPIError) -> bool:
    """The database cannot serve the call now: a lost connection, or SQLite's file locked past
    the busy timeout, unreadable, full or missing. Not a bug of the call: it is answered
    ``Database unavailable, try again``."""
    orig = exc.orig
    if isinstance(orig, sqlite3.OperationalError):
        code = getattr(orig, "sqlite_errorcode", None)
        return code is not None and code & 0xFF in _SQLITE_UNAVAILABLE
    return connection_lost(exc)


#: Seconds a new PostgreSQL connection may take (libpq's ``connect_timeout``; a
#: ``?connect_timeout=N`` in the URL wins). The call then answers ``Database unavailable``.
CONNECT_TIMEOUT = 10


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
    if "connect_timeout" not in make_url(url).query:
        # Without it a server that accepts and never answers (a dead host behind a live
        # address) holds the call's thread until the OS gives up on TCP, minutes later.
        kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT,
                                  **kwargs.get("connect_args", {})}
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
        """One unit of work: commit when the block succeeds, roll back on any exception.

        The block's changes are flushed before COMMIT, so that a failure in COMMIT itself is
        told apart: a write's lost connection there raises ``CommitUnknown``."""
        factory = self.write_sessions if write else self.read_sessions
        with factory() as session:
            session.begin()
            try:
                yield session
                session.flush()
            except BaseException:
                _roll_back(session)
                raise
            try:
                session.commit()
            except DBAPIError as exc:
                if not write or not connection_lost(exc):
                    raise
                log.error("the database connection was lost during COMMIT; the transaction "
                          "may or may not have committed: %s", type(exc.orig).__name__)
                raise CommitUnknown() from exc

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A read's connection: in one read transaction on SQLite (BEGIN DEFERRED: one
        snapshot for all its statements), in autocommit on PostgreSQL's read engine. It
        always ends in ROLLBACK, so a method wrongly registered as a read writes nothing on
        SQLite either (PostgreSQL's read-only engine refuses the write itself)."""
        with (self.read_engine or self.engine).connect() as conn:
            transaction = conn.begin()
            try:
                yield conn
            finally:
                _roll_back_read(transaction)

    def dispose(self) -> None:
        for engine in self.engines:
            engine.dispose()


def _roll_back_read(transaction: Any) -> None:
    """End a read; a connection too dead to roll back on has nothing to undo."""
    try:
        transaction.rollback()
    except DBAPIError as exc:
        log.warning("ending a read failed: %s", type(exc.orig).__name__)


def _roll_back(session: Session) -> None:
    """Roll back after the block failed; the block's error is what the caller must see, even
    when the connection is too dead to roll back on."""
    try:
        session.rollback()
    except DBAPIError as exc:
        log.warning("rollback failed too: %s", type(exc.orig).__name__)
