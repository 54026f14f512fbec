"""Re-encrypt every encrypted column under the newest key (`helpline db rotate-keys`)."""

from __future__ import annotations

from sqlalchemy import column, select, table, update

from storage import crypto
from storage.crypto import Cipher, EncryptedJSON, EncryptedJSONFromPlain, EncryptedText
from storage.db import Database
from storage.models import Base


def encrypted_columns() -> list[tuple[str, str, str]]:
    """(table, primary key column, encrypted column) for every encrypted column (the columns
    that may still hold legacy plain JSON among them: see `legacy_plain_columns`)."""
    found = []
    for tbl in Base.metadata.sorted_tables:
        pk = [c.name for c in tbl.primary_key.columns]
        for col in tbl.columns:
            if isinstance(col.type, EncryptedText | EncryptedJSON) and len(pk) == 1:
                found.append((tbl.name, pk[0], col.name))
    return found


def legacy_plain_columns() -> set[tuple[str, str]]:
    """(table, column) of encrypted columns whose older rows may hold plain JSON."""
    return {
        (tbl.name, col.name)
        for tbl in Base.metadata.sorted_tables
        for col in tbl.columns
        if isinstance(col.type, EncryptedJSONFromPlain)
    }


def reseal(cipher: Cipher, value: str, *, legacy_ok: bool) -> str:
    """`value` under the newest key: a token re-encrypted, a legacy plain value encrypted."""
    if legacy_ok and not crypto.is_token(value):
        crypto.legacy_json(value)  # raises unless it really is plain JSON
        return cipher.encrypt(value)
    return cipher.rotate(value)


async def rotate_keys(db: Database, batch: int = 500) -> int:
    """Rewrite each encrypted value under the first key of ENCRYPTION_KEYS; returns the count.
    Safe to run while the bot runs: every value stays readable under the old or new key.
    Legacy plain JSON (a column encrypted by a later migration) is encrypted on the way."""
    cipher = crypto.current()
    legacy = legacy_plain_columns()
    total = 0
    for name, pk, col in encrypted_columns():
        legacy_ok = (name, col) in legacy
        raw = table(name, column(pk), column(col))  # untyped: the stored tokens, not plaintext
        last = None
        while True:
            async with db.session() as s:
                stmt = select(raw.c[pk], raw.c[col]).where(raw.c[col].is_not(None))
                if last is not None:
                    stmt = stmt.where(raw.c[pk] > last)
                rows = (await s.execute(stmt.order_by(raw.c[pk]).limit(batch))).all()
                for key, token in rows:
                    value = reseal(cipher, token, legacy_ok=legacy_ok)
                    await s.execute(update(raw).where(raw.c[pk] == key).values({col: value}))
                total += len(rows)
            if len(rows) < batch:
                break
            last = rows[-1][0]
    return total
