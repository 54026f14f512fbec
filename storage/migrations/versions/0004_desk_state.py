"""desk state on the case row: the card, the critical announcement and their claims

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.models

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MOMENTS = ("desk_topic_claimed_at", "desk_announcement_claimed_at", "desk_announcement_pinned_at")
IDS = ("desk_card_message_id", "desk_announcement_message_id")


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        for name in MOMENTS:
            batch_op.add_column(
                sa.Column(name, storage.models.UTCDateTime(timezone=True), nullable=True)
            )
        for name in IDS:
            batch_op.add_column(sa.Column(name, sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        for name in (*IDS, *MOMENTS):
            batch_op.drop_column(name)
