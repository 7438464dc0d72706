"""clone_uri passwords encrypted at rest

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07 06:30:00

Only the column: existing plaintext passwords are encrypted right after the upgrade, with the
server's key, by ``clone_uri_at_rest.seal_plaintext`` (``rpcserver db upgrade``, ``init`` and
``serve`` call it), so that migrations never need the secret key.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("repositories", schema=None) as batch_op:
        batch_op.add_column(sa.Column("clone_uri_encrypted", sa.Text(), nullable=True))


def downgrade() -> None:
    # The encrypted passwords go with the column: clone_uri keeps only the masked form, so
    # those repositories need their clone_uri set again after a downgrade.
    with op.batch_alter_table("repositories", schema=None) as batch_op:
        batch_op.drop_column("clone_uri_encrypted")
