"""Re-encrypt every encrypted column under the newest key (`helpline db rotate-keys`)."""

from __future__ import annotations

from sqlalchemy import column, select, table, update

from storage import crypto
from storage.crypto import EncryptedJSON, EncryptedText
from storage.db import Database
from storage.models import Base


def encrypted_columns() -> list[tuple[str, str, str]]:
    """(table, primary key column, encrypted column) for every encrypted column."""
    found = []
    for tbl in Base.metadata.sorted_tables:
        pk = [c.name for c in tbl.primary_key.columns]
        for col in tbl.columns:
            if isinstance(col.type, EncryptedText | EncryptedJSON) and len(pk) == 1:
                found.append((tbl.name, pk[0], col.name))
    return found


async def rotate_keys(db: Database, batch: int = 500) -> int:
    """Rewrite each encrypted value under the first key of ENCRYPTION_KEYS; returns the count.
    Safe to run while the bot runs: every value stays readable under the old or new key."""
    cipher = crypto.current()
    total = 0
    for name, pk, col in encrypted_columns():
        raw = table(name, column(pk), column(col))  # untyped: the stored tokens, not plaintext
        last = None
        while True:
            async with db.session() as s:
                stmt = select(raw.c[pk], raw.c[col]).where(raw.c[col].is_not(None))
                if last is not None:
                    stmt = stmt.where(raw.c[pk] > last)
                rows = (await s.execute(stmt.order_by(raw.c[pk]).limit(batch))).all()
                for key, token in rows:
                    await s.execute(
                        update(raw).where(raw.c[pk] == key).values({col: cipher.rotate(token)})
                    )
                total += len(rows)
            if len(rows) < batch:
                break
            last = rows[-1][0]
    return total
