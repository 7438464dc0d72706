"""Exchanged tokens: an API key's parent

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 13:20:00

A token from ``/_admin/token`` is a row of ``api_keys`` with the key it was exchanged with as
its parent (docs/authentication.md).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # SQLite adds a column that references another in place; alembic would copy the
        # whole table for the constraint (its batch mode).
        op.execute("ALTER TABLE api_keys ADD COLUMN parent_id INTEGER "
                   "CONSTRAINT fk_api_keys_parent_id_api_keys "
                   "REFERENCES api_keys (id) ON DELETE CASCADE")
    else:
        op.add_column("api_keys", sa.Column("parent_id", sa.Integer(), nullable=True))
        op.create_foreign_key("fk_api_keys_parent_id_api_keys", "api_keys", "api_keys",
                              ["parent_id"], ["id"], ondelete="CASCADE")
    op.create_index("ix_api_keys_parent_id", "api_keys", ["parent_id"])


def downgrade() -> None:
    op.drop_index("ix_api_keys_parent_id", table_name="api_keys")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_column("parent_id")
