"""The danger lane: work for a child in danger goes ahead of ordinary work.

Whoever handles an update that reads as danger (`bot.mailbox`) runs it inside `danger_lane()`;
every wait on the way that this process orders itself (the SQLite writer's turn, here) lets
that work go first. Journalling an incoming update (`intake_lane()`: one short insert) goes next,
before ordinary turns, so that a danger message behind a hundred others in a `getUpdates` batch
is not journalled only after a hundred turns' worth of waits. A context variable carries the
lane through every await of the task.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager
from contextvars import ContextVar
from enum import IntEnum


class Lane(IntEnum):
    """Who goes first at a wait this process orders: the lower, the sooner."""

    DANGER = 0
    INTAKE = 1
    ORDINARY = 2


_LANE: ContextVar[Lane] = ContextVar("lane", default=Lane.ORDINARY)


def current_lane() -> Lane:
    return _LANE.get()


def in_danger_lane() -> bool:
    return _LANE.get() is Lane.DANGER


@contextmanager
def lane(which: Lane) -> Iterator[None]:
    """Inside, this task's waits are `which` lane's (or a sooner one it is already in)."""
    token = _LANE.set(min(which, _LANE.get()))
    try:
        yield
    finally:
        _LANE.reset(token)


def danger_lane(urgent: bool = True) -> AbstractContextManager[None]:
    """Inside, this task's waits are the danger lane's (when `urgent`)."""
    return lane(Lane.DANGER if urgent else Lane.ORDINARY)


def intake_lane() -> AbstractContextManager[None]:
    return lane(Lane.INTAKE)


class LaneLock:
    """A lock whose waiters go by lane (danger, then intake, then ordinary; each lane first
    come, first served). A holder is never interrupted: danger waits at most for the one
    transaction in hand, never for the queue behind it."""

    def __init__(self) -> None:
        self._held = False
        self._queues: tuple[deque[asyncio.Future[None]], ...] = tuple(deque() for _ in Lane)

    @property
    def locked(self) -> bool:
        return self._held

    def waiting(self) -> tuple[int, ...]:
        """Waiters per lane: (danger, intake, ordinary)."""
        return tuple(len(q) for q in self._queues)

    async def acquire(self, which: Lane = Lane.ORDINARY) -> None:
        if not self._held and not any(self._queues[: which + 1]):
            self._held = True
            return
        queue = self._queues[which]
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue.append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # handed the lock as it was cancelled: pass it on
            elif future in queue:
                queue.remove(future)
            raise

    def release(self) -> None:
        """Hand the lock to the first waiter of the soonest lane."""
        for queue in self._queues:
            while queue:
                future = queue.popleft()
                if not future.done():
                    future.set_result(None)  # handed over: stays held
                    return
        self._held = False

    @asynccontextmanager
    async def hold(self, which: Lane | None = None) -> AsyncIterator[None]:
        """Hold the lock; `which` lane defaults to this task's."""
        await self.acquire(current_lane() if which is None else which)
        try:
            yield
        finally:
            self.release()


__all__ = ["Lane", "LaneLock", "current_lane", "danger_lane", "in_danger_lane",
           "intake_lane", "lane"]
