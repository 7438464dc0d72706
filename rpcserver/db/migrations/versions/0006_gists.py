"""Gists

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 21:20:00

Kallithea's gists (get_gist, get_gists, create_gist, delete_gist): a row per gist, its files
in a git repository under ``.rpcserver/gists/<access_id>``.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "gists",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("access_id", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("gist_type", sa.String(length=16), nullable=False),
        sa.Column("expires", sa.Float(precision=53), nullable=False),
        sa.Column("created_on", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name="fk_gists_owner_id_users"),
        sa.PrimaryKeyConstraint("id", name="pk_gists"),
        sa.UniqueConstraint("access_id", name="uq_gists_access_id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_gists_owner_id", "gists", ["owner_id"])
    op.create_index("ix_gists_created_on", "gists", ["created_on"])


def downgrade() -> None:
    op.drop_index("ix_gists_created_on", table_name="gists")
    op.drop_index("ix_gists_owner_id", table_name="gists")
    op.drop_table("gists")
