"""outbox: an index by chat, for the per-chat order checks (claim in turn, earlier pending)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 17:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_outbox_chat", "outbox", ["channel", "chat_id", "delivered_at", "id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_chat", table_name="outbox")
