"""The danger lane: work for a child in danger goes ahead of ordinary work.

Whoever handles an update that reads as danger (`bot.mailbox`) runs it inside `danger_lane()`;
every wait on the way that this process orders itself (the SQLite writer's turn, here) lets
that work go first. A context variable carries the flag through every await of the task.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar

_URGENT: ContextVar[bool] = ContextVar("danger_lane", default=False)


def in_danger_lane() -> bool:
    return _URGENT.get()


@contextmanager
def danger_lane(urgent: bool = True) -> Iterator[None]:
    """Inside, this task's waits are the danger lane's (when `urgent`)."""
    token = _URGENT.set(urgent or _URGENT.get())
    try:
        yield
    finally:
        _URGENT.reset(token)


class LaneLock:
    """A lock whose waiters in the danger lane go before ordinary ones (each lane first come,
    first served). An ordinary holder is never interrupted: danger waits at most for one
    ordinary transaction, never for the queue behind it."""

    def __init__(self) -> None:
        self._held = False
        self._urgent: deque[asyncio.Future[None]] = deque()
        self._ordinary: deque[asyncio.Future[None]] = deque()

    @property
    def locked(self) -> bool:
        return self._held

    def waiting(self) -> tuple[int, int]:
        """(danger, ordinary) waiters."""
        return len(self._urgent), len(self._ordinary)

    async def acquire(self, urgent: bool = False) -> None:
        if not self._held and not self._urgent and (urgent or not self._ordinary):
            self._held = True
            return
        queue = self._urgent if urgent else self._ordinary
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
        """Hand the lock to the first danger waiter, else the first ordinary one."""
        for queue in (self._urgent, self._ordinary):
            while queue:
                future = queue.popleft()
                if not future.done():
                    future.set_result(None)  # handed over: stays held
                    return
        self._held = False

    @asynccontextmanager
    async def hold(self, urgent: bool | None = None) -> AsyncIterator[None]:
        """Hold the lock; `urgent` defaults to whether this task is in the danger lane."""
        await self.acquire(in_danger_lane() if urgent is None else urgent)
        try:
            yield
        finally:
            self.release()


__all__ = ["LaneLock", "danger_lane", "in_danger_lane"]
