"""conversation data encrypted: conversations.data becomes text holding a Fernet token

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 12:20:00

The migration has no keys: existing rows keep their plain JSON text, which the model reads as
legacy (storage.crypto.EncryptedJSONFromPlain) and writes back encrypted on the next save;
`helpline db rotate-keys` encrypts every remaining one at once.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column(
            "conversations",
            "data",
            type_=sa.Text(),
            existing_type=sa.JSON(),
            existing_nullable=False,
            postgresql_using="data::text",
        )
        return
    with op.batch_alter_table("conversations") as batch:
        batch.alter_column(
            "data", type_=sa.Text(), existing_type=sa.JSON(), existing_nullable=False
        )


def downgrade() -> None:
    # Without keys an encrypted value cannot be turned back into JSON: those conversations
    # lose their collected answers (flow and state stay); legacy plain rows are kept.
    op.execute("UPDATE conversations SET data = '{}' WHERE data NOT LIKE '{%'")
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column(
            "conversations",
            "data",
            type_=sa.JSON(),
            existing_type=sa.Text(),
            existing_nullable=False,
            postgresql_using="data::json",
        )
        return
    with op.batch_alter_table("conversations") as batch:
        batch.alter_column(
            "data", type_=sa.JSON(), existing_type=sa.Text(), existing_nullable=False
        )
