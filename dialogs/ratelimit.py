"""A per-user token bucket: a burst is fine, a flood gets one calm "please wait"."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float
    warned: bool = False


class RateLimiter:
    """`check(key)` -> "ok", "warn" (first refusal: tell the user once per flood) or "drop"."""

    def __init__(
        self,
        burst: int = 10,
        per_second: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self.burst = burst
        self.rate = per_second
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: dict[str, _Bucket] = {}

    def check(self, key: str) -> str:
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._evict(now)
            bucket = self._buckets[key] = _Bucket(tokens=float(self.burst), updated=now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens >= self.burst / 2:
            # Quiet long enough to refill half the burst: this flood is over, and a new one
            # gets its own "please wait". A token freed mid-flood does not count.
            bucket.warned = False
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return "ok"
        if bucket.warned:
            return "drop"
        bucket.warned = True
        return "warn"

    def unwarn(self, key: str) -> None:
        """The refusal just answered "warn" was let through after all (it needs a person): the
        flood's one "please wait" is said on its next refusal instead."""
        bucket = self._buckets.get(key)
        if bucket is not None:
            bucket.warned = False

    def _evict(self, now: float) -> None:
        """Forget users whose bucket has refilled: they are no longer flooding."""
        full = [
            k
            for k, b in self._buckets.items()
            if b.tokens + (now - b.updated) * self.rate >= self.burst
        ]
        for key in full:
            del self._buckets[key]
