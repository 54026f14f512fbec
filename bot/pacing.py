"""Pacing sends to each platform's published limits, so a surge is smoothed instead of being
answered with 429s.

Telegram (https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this):
about one message a second per chat, 20 a minute per group, 30 a second in all.
VK (https://dev.vk.com/ru/api/api-requests#Ограничения и рекомендации): 20 requests a second
per community token.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class _Bucket:
    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate, self.burst, self.tokens, self.updated = rate, burst, burst, now

    def delay(self, now: float) -> float:
        """Take a token; return how long to wait before it may be used."""
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        self.tokens -= 1
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


class Pacer:
    def __init__(
        self,
        *,
        global_rate: float,
        chat_rate: float | None = None,
        group_per_minute: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.clock = clock
        self.global_bucket = _Bucket(global_rate, global_rate, clock())
        self.chat_rate = chat_rate
        self.group_rate = group_per_minute / 60 if group_per_minute else None
        self.group_burst = group_per_minute or 0
        self._chats: dict[str, _Bucket] = {}
        self._lock = asyncio.Lock()

    def _chat_bucket(self, chat_id: str, now: float) -> _Bucket | None:
        is_group = chat_id.startswith("-")
        rate = self.group_rate if is_group and self.group_rate else self.chat_rate
        if rate is None:
            return None
        bucket = self._chats.get(chat_id)
        if bucket is None:
            if len(self._chats) > 50_000:
                self._chats.clear()
            burst = self.group_burst if is_group and self.group_rate else 3
            bucket = self._chats[chat_id] = _Bucket(rate, burst, now)
        return bucket

    async def wait(self, chat_id: str) -> float:
        """Wait until a message to `chat_id` may go; return the time waited."""
        async with self._lock:
            now = self.clock()
            delay = self.global_bucket.delay(now)
            bucket = self._chat_bucket(chat_id, now)
            if bucket is not None:
                delay = max(delay, bucket.delay(now))
        if delay > 0:
            await asyncio.sleep(delay)
        return delay


def telegram_pacer() -> Pacer:
    return Pacer(global_rate=30, chat_rate=1, group_per_minute=20)


def vk_pacer() -> Pacer:
    return Pacer(global_rate=20)
