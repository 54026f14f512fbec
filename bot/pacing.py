"""Pacing sends to each platform's published limits, so a surge is smoothed instead of being
answered with 429s.

Telegram (https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this):
about one message a second per chat, 20 a minute per group, 30 a second in all.
VK (https://dev.vk.com/ru/api/api-requests#Ограничения и рекомендации): 20 requests a second
per community token.

The buckets live in this process (SQLite: one worker) or in PostgreSQL
(`storage.ratebuckets.SharedBuckets`), where every worker takes from the same budget. Danger
replies and critical alerts are urgent: they take their token and go at once, and the debt
they leave delays the ordinary sends behind them.

A group is different: Telegram refuses the 21st post of a minute, so going past the budget gains
nothing. Posts to a group take turns (`_GroupTurns`): one token at a time, each given to the
most urgent post waiting when it frees (a critical alert before a routine line), so a group
stays within its budget and the urgent post still goes first.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from typing import Protocol

from bot import metrics


class Buckets(Protocol):
    async def take(self, key: str, rate: float, burst: float) -> float:
        """Take one token from bucket `key`; return the seconds to wait before using it."""
        ...


class _Bucket:
    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate, self.burst, self.tokens, self.updated = rate, burst, burst, now

    def delay(self, now: float) -> float:
        """Take a token; return how long to wait before it may be used."""
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        self.tokens -= 1
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


class LocalBuckets:
    """Token buckets in this process's memory."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}

    async def take(self, key: str, rate: float, burst: float) -> float:
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) > 50_000:
                self._buckets.clear()
            bucket = self._buckets[key] = _Bucket(rate, burst, now)
        return bucket.delay(now)


class _GroupTurns:
    """Posts waiting for one group's budget: the most urgent first, then in arrival order."""

    def __init__(self) -> None:
        self.waiting: list[tuple[int, int, asyncio.Future[float]]] = []
        self.order = itertools.count()
        self.dispatcher: asyncio.Task[None] | None = None

    def join(self, urgent: bool) -> asyncio.Future[float]:
        turn: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        heapq.heappush(self.waiting, (0 if urgent else 1, next(self.order), turn))
        return turn

    def grant(self, delay: float) -> bool:
        """Give the token in hand (it took `delay` to free) to the most urgent post still
        waiting (False: none is)."""
        while self.waiting:
            _, _, turn = heapq.heappop(self.waiting)
            if not turn.done():
                turn.set_result(delay)
                return True
        return False


class Pacer:
    def __init__(
        self,
        *,
        global_rate: float,
        chat_rate: float | None = None,
        group_per_minute: float | None = None,
        group_burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        buckets: Buckets | None = None,
        scope: str = "bot",
    ) -> None:
        self.global_rate = global_rate
        self.chat_rate = chat_rate
        self.group_per_minute = group_per_minute
        # Posts at once before the per-minute rate applies (default, Telegram's: the minute's).
        self.group_burst = group_burst
        self.buckets: Buckets = buckets or LocalBuckets(clock)
        self.scope = scope  # the platform (and bot) whose limits these are
        self._turns: dict[str, _GroupTurns] = {}

    def _limits(self, chat_id: str) -> list[tuple[str, float, float]]:
        """(bucket key, rate per second, burst) of every limit a send to `chat_id` counts in."""
        limits = [(f"{self.scope}:all", self.global_rate, self.global_rate)]
        if chat_id.startswith("-") and self.group_per_minute:
            limits.append((f"{self.scope}:group:{chat_id}", self.group_per_minute / 60,
                           self.group_burst or self.group_per_minute))
        elif self.chat_rate:
            limits.append((f"{self.scope}:chat:{chat_id}", self.chat_rate, 3))
        return limits

    async def wait(self, chat_id: str, *, urgent: bool = False) -> float:
        """Wait until a message to `chat_id` may go; return the time waited. An urgent message
        takes its tokens and goes at once; to a group, it goes first, within the budget."""
        # No lock around the takes: each bucket takes atomically on its own (in memory, or in
        # one SQL statement), and a send must never queue behind another's slow take.
        group_wait, other = 0.0, []
        for key, rate, burst in self._limits(chat_id):
            if ":group:" in key:  # waited for in turn, urgent or not
                group_wait = await self._group_turn(key, rate, burst, urgent)
            else:
                other.append(await self.buckets.take(key, rate, burst))
        rest = 0.0 if urgent else max(other, default=0.0)
        if rest > 0:
            await asyncio.sleep(rest)
        waited = group_wait + rest  # what the budget asked for (not the take's own time)
        if waited > 0:
            metrics.PACER_WAIT.observe(waited)
        return waited

    async def _group_turn(self, key: str, rate: float, burst: float, urgent: bool) -> float:
        """Wait for a token of the group's budget, urgent posts first (`_GroupTurns`)."""
        turns = self._turns.setdefault(key, _GroupTurns())
        turn = turns.join(urgent)
        if turns.dispatcher is None or turns.dispatcher.done():
            turns.dispatcher = asyncio.create_task(self._dispatch(key, rate, burst, turns),
                                                   name=f"pacer-{key}")
        return await turn

    async def _dispatch(self, key: str, rate: float, burst: float, turns: _GroupTurns) -> None:
        """One token at a time from the group's bucket (shared by the workers where the
        buckets are), each given when it frees to the most urgent post waiting then."""
        while turns.waiting:
            delay = await self.buckets.take(key, rate, burst)
            if delay > 0:
                await asyncio.sleep(delay)
            if not turns.grant(delay):
                return  # every waiter gave up meanwhile (shutdown): the token is unused


class Unpaced(Pacer):
    """No limits at all: SEND_PACING=off, against a fake API server only (bot/settings.py
    refuses it with a real platform's URL). A benchmark then measures the bot as shipped."""

    def __init__(self) -> None:
        super().__init__(global_rate=float("inf"), scope="unpaced")

    async def wait(self, chat_id: str, *, urgent: bool = False) -> float:
        return 0.0


def telegram_pacer(buckets: Buckets | None = None, *, paced: bool = True) -> Pacer:
    if not paced:
        return Unpaced()
    return Pacer(global_rate=30, chat_rate=1, group_per_minute=20, buckets=buckets,
                 scope="telegram")


def vk_pacer(buckets: Buckets | None = None, *, paced: bool = True) -> Pacer:
    if not paced:
        return Unpaced()
    return Pacer(global_rate=20, buckets=buckets, scope="vk")
