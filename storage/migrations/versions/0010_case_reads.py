"""case_reads: how far each counsellor has read each case (the web console's unread counts)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.models

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "case_reads",
        sa.Column("counsellor_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column(
            "last_message_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("updated_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["counsellor_id"],
            ["counsellors.id"],
            name=op.f("fk_case_reads_counsellor_id_counsellors"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_case_reads_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("counsellor_id", "case_id", name=op.f("pk_case_reads")),
    )
    with op.batch_alter_table("case_reads", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_reads_case_id"), ["case_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("case_reads", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_reads_case_id"))
    op.drop_table("case_reads")
