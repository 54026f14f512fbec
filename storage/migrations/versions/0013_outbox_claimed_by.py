"""outbox.claimed_by and the desk's on cases: which worker holds a claim, so a live worker
gives a dead one's back

A worker killed while it held claims on undelivered replies (a child's emergency numbers, the
counsellors' alert among them) left them to their lease (20 s) while other workers ran. Each
claim now names its worker (on PostgreSQL the backend pid of the connection holding the
worker's presence lock); a live worker gives back at once the claims of a worker whose lock
is gone. The desk's claims on a case (its topic being made, its critical alert being posted)
likewise.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


CASE_COLUMNS = ("desk_topic_claimed_by", "desk_announcement_claimed_by")


def upgrade() -> None:
    op.add_column("outbox", sa.Column("claimed_by", sa.Integer(), nullable=True))
    for column in CASE_COLUMNS:
        op.add_column("cases", sa.Column(column, sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        for column in CASE_COLUMNS:
            batch.drop_column(column)
    if op.get_bind().dialect.name != "sqlite":
        op.drop_column("outbox", "claimed_by")
        return
    # SQLite rebuilds the table: it keeps AUTOINCREMENT only when told (0012).
    with op.batch_alter_table(
        "outbox", recreate="always", table_kwargs={"sqlite_autoincrement": True}
    ) as batch:
        batch.drop_column("claimed_by")
