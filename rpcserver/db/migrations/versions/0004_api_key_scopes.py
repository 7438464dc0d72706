"""API key scopes and per-key address ranges

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 13:10:00

Every key that exists keeps its user's full rights: the column's default, ``all``, marks them
so (docs/authentication.md).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("scopes", sa.String(length=2048), nullable=False,
                                      server_default="all"))
        batch_op.add_column(sa.Column("ip_ranges", sa.String(length=2048), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_column("ip_ranges")
        batch_op.drop_column("scopes")
