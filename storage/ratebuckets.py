"""Token buckets in PostgreSQL, so every worker paces its sends against one shared budget.

One statement per bucket takes a token and says how long the caller must wait for it: the
bucket refills at `rate` tokens a second up to `burst`, and goes into debt when the caller is
early (the debt is the wait). An urgent take (a danger reply, a critical alert) takes its token
without waiting: it goes out at once, and the debt it leaves delays the next ordinary sends.
"""

from __future__ import annotations

from sqlalchemy import text

from storage.db import Database

_TAKE = text(
    """
    INSERT INTO rate_buckets AS b (key, tokens, updated_at)
    VALUES (:key, :burst - 1, clock_timestamp())
    ON CONFLICT (key) DO UPDATE SET
        tokens = LEAST(:burst, b.tokens
                 + EXTRACT(EPOCH FROM clock_timestamp() - b.updated_at) * :rate) - 1,
        updated_at = clock_timestamp()
    RETURNING tokens
    """
)


class SharedBuckets:
    """`bot.pacing.Buckets` over PostgreSQL (several workers); SQLite has one worker and uses
    the in-process buckets."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def take(self, key: str, rate: float, burst: float) -> float:
        """Take one token; return the seconds to wait before using it (0 when there is one)."""
        async with self.db.session() as s:
            tokens = float((await s.execute(_TAKE, {"key": key, "rate": rate,
                                                    "burst": burst})).scalar_one())
        return 0.0 if tokens >= 0 else -tokens / rate
