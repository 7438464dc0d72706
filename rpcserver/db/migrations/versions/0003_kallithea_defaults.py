"""Kallithea's defaults in existing rows

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 13:00:00

Until now an empty description was answered as the repository's full name at read time and
a repository group's stayed empty; Kallithea stores the short name when the object is made
(a later rename or move keeps it), and so do we now. Existing empty descriptions get the
short name they would have been given. The ``default`` user gets Kallithea's address.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    connection = op.get_bind()
    for name in ("repositories", "repo_groups"):
        table = sa.table(name, sa.column("id"), sa.column("name"), sa.column("description"))
        empty = connection.execute(
            sa.select(table.c.id, table.c.name).where(table.c.description == "")).all()
        for row_id, full_name in empty:
            connection.execute(sa.update(table).where(table.c.id == row_id)
                               .values(description=full_name.rpartition("/")[2]))
    connection.execute(sa.text(
        "UPDATE users SET email = 'anonymous@kallithea-scm.org' "
        "WHERE id = 1 AND email = 'anonymous@localhost'"))


def downgrade() -> None:
    # The filled-in descriptions cannot be told from ones an admin wrote; they stay.
    op.get_bind().execute(sa.text(
        "UPDATE users SET email = 'anonymous@localhost' "
        "WHERE id = 1 AND email = 'anonymous@kallithea-scm.org'"))
