"""inbox and outbox: ids never reused on SQLite, now that handled rows are deleted

A handled journal entry and a delivered message are now deleted at once (their bodies go,
their space is reused). SQLite gives a new row the highest id plus one, so an id held in
memory (the mailbox, the danger lane, a sender) could name a newer row once the older one is
gone: AUTOINCREMENT, which SQLite can only set by rebuilding the table, never gives an id
twice. PostgreSQL's sequences never did.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 18:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("inbox", "outbox")


def _rebuild(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
        ):
            pass


def upgrade() -> None:
    _rebuild(True)


def downgrade() -> None:
    _rebuild(False)
