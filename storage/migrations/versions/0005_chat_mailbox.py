"""chat mailbox: the journal knows each update's chat (a keyed hash), for per-chat order

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Rows journalled before this have no chat key: `App.recover` fills it in from the
    # (encrypted) body, which needs the keys the migration does not have.
    with op.batch_alter_table("inbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("chat_key", sa.String(length=64), nullable=True))
        batch_op.create_index(
            "ix_inbox_chat", ["channel", "chat_key", "processed_at", "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("inbox", schema=None) as batch_op:
        batch_op.drop_index("ix_inbox_chat")
        batch_op.drop_column("chat_key")
