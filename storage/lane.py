"""The danger lane: work for a child in danger goes ahead of ordinary work.

Whoever handles an update that reads as danger (`bot.mailbox`) runs it inside `danger_lane()`;
every wait on the way that this process orders itself (the SQLite writer's turn, here) lets
that work go first. Journalling an incoming update (`intake_lane()`: one short insert) goes next,
before ordinary turns, so that a danger message behind a hundred others in a `getUpdates` batch
is not journalled only after a hundred turns' worth of waits. A context variable carries the
lane through every await of the task. The bot's processes run on `LaneLoop`, whose ready queue
lets the danger lane's callbacks go first too.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import AsyncIterator, Coroutine, Iterator
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager
from contextvars import Context, ContextVar
from enum import IntEnum
from typing import Any, TypeVar


class Lane(IntEnum):
    """Who goes first at a wait this process orders: the lower, the sooner."""

    DANGER = 0
    INTAKE = 1
    ORDINARY = 2


T = TypeVar("T")

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


class LaneGate:
    """At most `capacity` holders at once; waiters go by lane (danger, then intake, then
    ordinary; each lane first come, first served). A holder is never interrupted: danger waits
    at most for the first transaction in hand to end, never for the queue behind it.

    `reentrant`: a task already holding a place passes through again (a session opened inside
    another of the same task must not wait for a place it holds itself)."""

    def __init__(self, capacity: int = 1, *, reentrant: bool = False) -> None:
        if capacity < 1:
            raise ValueError("a gate needs room for one holder at least")
        self.capacity = capacity
        self._free = capacity
        self._queues: tuple[deque[asyncio.Future[None]], ...] = tuple(deque() for _ in Lane)
        self._holder: ContextVar[asyncio.Task[object] | None] | None = (
            ContextVar(f"gate_holder_{id(self)}", default=None) if reentrant else None
        )

    @property
    def locked(self) -> bool:
        """No place free: the next to come waits."""
        return self._free == 0

    def waiting(self) -> tuple[int, ...]:
        """Waiters per lane: (danger, intake, ordinary)."""
        return tuple(len(q) for q in self._queues)

    async def acquire(self, which: Lane = Lane.ORDINARY) -> None:
        if self._free > 0 and not any(self._queues[: which + 1]):
            self._free -= 1
            return
        queue = self._queues[which]
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue.append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # handed a place as it was cancelled: pass it on
            elif future in queue:
                queue.remove(future)
            raise

    def release(self) -> None:
        """Hand the place to the first waiter of the soonest lane, else free it."""
        for queue in self._queues:
            while queue:
                future = queue.popleft()
                if not future.done():
                    future.set_result(None)  # handed over: stays taken
                    return
        self._free += 1

    @asynccontextmanager
    async def hold(self, which: Lane | None = None) -> AsyncIterator[None]:
        """Hold a place; `which` lane defaults to this task's."""
        task = asyncio.current_task()
        if self._holder is not None and task is not None and self._holder.get() is task:
            yield  # this task holds a place already
            return
        await self.acquire(current_lane() if which is None else which)
        token = self._holder.set(task) if self._holder is not None else None
        try:
            yield
        finally:
            if self._holder is not None and token is not None:
                self._holder.reset(token)
            self.release()


class LaneLock(LaneGate):
    """A lock whose waiters go by lane: a `LaneGate` with room for one (the SQLite writer)."""

    def __init__(self) -> None:
        super().__init__(1)


def _danger(context: Context | None) -> bool:
    return context is not None and context.get(_LANE) is Lane.DANGER


class LaneLoop(asyncio.SelectorEventLoop):
    """The event loop of the bot's processes (`new_loop`): a callback made ready for work in
    the danger lane runs before the ordinary callbacks already waiting, behind the danger ones
    made ready before it.

    Under load, hundreds of ordinary turns share one loop, and each wait of the danger work (a
    database round trip, an HTTP call) used to end behind every callback made ready before it.
    `LaneGate` puts danger first where this process orders a wait; this puts it first where the
    loop does. Only the loop's own thread reorders (a callback handed in from another thread
    keeps its place); a callback still runs once, only its turn changes. It builds on asyncio's
    `_call_soon` and `_ready` (the same since Python 3.8): `new_loop` checks they are there."""

    def _call_soon(self, callback: Any, args: Any, context: Context | None) -> asyncio.Handle:
        handle: asyncio.Handle = super()._call_soon(callback, args, context)  # type: ignore[misc]
        if _danger(context) and self._thread_id == threading.get_ident():  # type: ignore[attr-defined]
            ready: deque[asyncio.Handle] = self._ready  # type: ignore[attr-defined]
            ready.pop()
            ahead = 0
            for waiting in ready:  # the danger callbacks already at the front keep their order
                if not _danger(waiting._context):  # type: ignore[attr-defined]
                    break
                ahead += 1
            ready.insert(ahead, handle)
        return handle


def new_loop() -> asyncio.AbstractEventLoop:
    """A `LaneLoop`, or asyncio's own loop where its internals differ from what it builds on."""
    loop = LaneLoop()
    if isinstance(getattr(loop, "_ready", None), deque) and hasattr(loop, "_thread_id"):
        return loop
    loop.close()
    return asyncio.new_event_loop()


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run` on a `LaneLoop`."""
    with asyncio.Runner(loop_factory=new_loop) as runner:
        return runner.run(main)


__all__ = ["Lane", "LaneGate", "LaneLock", "LaneLoop", "current_lane", "danger_lane",
           "in_danger_lane", "intake_lane", "lane", "new_loop", "run"]
