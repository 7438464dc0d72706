"""Data migrations: rows written by older versions read as the current version writes them."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from rpcserver.db import migrations
from rpcserver.db.database import Database
from tests.databases import scratch_database, server_url


def test_0003_gives_old_empty_descriptions_the_short_name(tmp_path: Path) -> None:
    """Older versions stored an empty description and answered the full name at read time;
    Kallithea stores the short name at creation, and so does the upgrade for old rows."""
    with scratch_database(tmp_path, "mig", server_url()) as url:
        db = Database.connect(url)
        try:
            migrations.upgrade(db.engine, "0002")
            with db.engine.begin() as conn:
                conn.execute(text(
                    "INSERT INTO users (id, username, email, firstname, lastname, active, admin,"
                    " extern_type, extern_name, created_on) VALUES (1, 'default', "
                    "'anonymous@localhost', 'Anonymous', 'User', true, false, 'internal', '',"
                    " CURRENT_TIMESTAMP)"))
                conn.execute(text(
                    "INSERT INTO repo_groups (id, name, description, owner_id, created_on) "
                    "VALUES (1, 'proj', '', 1, CURRENT_TIMESTAMP), "
                    "(2, 'proj/sub', 'kept', 1, CURRENT_TIMESTAMP)"))
                for repo_id, name, description in ((1, "proj/web", ""), (2, "top", ""),
                                                   (3, "proj/api", "The API")):
                    conn.execute(text(
                        "INSERT INTO repositories (id, name, repo_type, description, private, "
                        "landing_rev, enable_statistics, enable_downloads, owner_id, "
                        "created_on, updated_on) VALUES (:id, :name, 'git', :description, "
                        "false, 'rev:tip', false, false, 1, CURRENT_TIMESTAMP, "
                        "CURRENT_TIMESTAMP)"),
                        {"id": repo_id, "name": name, "description": description})
            migrations.upgrade(db.engine)
            with db.engine.connect() as conn:
                repos = conn.execute(text(
                    "SELECT name, description FROM repositories ORDER BY id")).all()
                groups = conn.execute(text(
                    "SELECT name, description FROM repo_groups ORDER BY id")).all()
                email = conn.execute(text("SELECT email FROM users WHERE id = 1")).scalar()
        finally:
            db.dispose()
    assert [tuple(r) for r in repos] == [("proj/web", "web"), ("top", "top"),
                                         ("proj/api", "The API")]
    assert [tuple(g) for g in groups] == [("proj", "proj"), ("proj/sub", "kept")]
    assert email == "anonymous@kallithea-scm.org"
