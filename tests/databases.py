"""Test databases: a SQLite file, or a fresh PostgreSQL database per test session.

``RPCSERVER_TEST_DATABASE_URL`` names a PostgreSQL server and a database we may connect to;
the tests create their own databases beside it and drop them afterwards, so they never touch
data that is already there.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, make_url, text

from rpcserver.db.database import Database
from rpcserver.db.models import Base

ENV = "RPCSERVER_TEST_DATABASE_URL"


def server_url() -> str | None:
    return os.environ.get(ENV) or None


@contextmanager
def scratch_database(tmp_dir: Path, name: str, server: str | None) -> Iterator[str]:
    """The URL of a new, empty database: a SQLite file in ``tmp_dir`` when ``server`` is None,
    else a PostgreSQL database beside ``server``'s, dropped again when the block ends.

    ``server`` is an argument rather than read from the environment so that the bench, which
    chooses its backend on the command line, makes its databases with this same helper.
    """
    if server is None:
        yield f"sqlite:///{tmp_dir / (name + '.db')}"
        return
    url = make_url(server)
    db_name = f"rpct_{name}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{db_name}"'))
        yield url.set(database=db_name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
        admin.dispose()


def reset(db: Database) -> None:
    """Empty every table and restart ids, as on a fresh database."""
    tables = list(reversed(Base.metadata.sorted_tables))
    with db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                conn.execute(table.delete())
            conn.execute(text("DELETE FROM sqlite_sequence"))
