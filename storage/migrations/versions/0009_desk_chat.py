"""cases: the staff group a case's topic lives in (several Telegram staff groups)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable, no default: the cases made before keep NULL, read as "the first group".
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("desk_chat_id", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_column("desk_chat_id")
