"""Token buckets in PostgreSQL, so every worker paces its sends against one shared budget.

One statement per bucket takes a token and says how long the caller must wait for it: the
bucket refills at `rate` tokens a second up to `burst`, and goes into debt when the caller is
early (the debt is the wait). An urgent take (a danger reply, a critical alert) takes its token
without waiting: it goes out at once, and the debt it leaves delays the next ordinary sends.
"""

from __future__ import annotations

import asyncio
import logging
import time

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from storage.db import Database

log = logging.getLogger(__name__)

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
    the in-process buckets. While the database is away (or slow to answer) this worker paces
    itself alone: a send, above all the emergency contacts said from memory during an outage,
    never waits for the database that is away."""

    def __init__(self, db: Database, *, timeout: float = 0.5) -> None:
        self.db = db
        self.timeout = timeout
        self._local: dict[str, tuple[float, float]] = {}  # key -> (tokens, monotonic time)

    async def take(self, key: str, rate: float, burst: float) -> float:
        """Take one token; return the seconds to wait before using it (0 when there is one)."""
        try:
            tokens = await asyncio.wait_for(self._take(key, rate, burst), self.timeout)
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            log.warning("shared send limits unavailable (%s): pacing this worker alone",
                        type(exc).__name__)
            tokens = self._take_here(key, rate, burst)
        return 0.0 if tokens >= 0 else -tokens / rate

    async def _take(self, key: str, rate: float, burst: float) -> float:
        async with self.db.session() as s:
            result = await s.execute(_TAKE, {"key": key, "rate": rate, "burst": burst})
            return float(result.scalar_one())

    def _take_here(self, key: str, rate: float, burst: float) -> float:
        now = time.monotonic()
        tokens, then = self._local.get(key, (burst, now))
        tokens = min(burst, tokens + (now - then) * rate) - 1
        self._local[key] = (tokens, now)
        return tokens
