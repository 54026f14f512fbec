"""Live parts of the console: the queue feed behind every open queue page, the per-case watcher
behind the chat panel, server-sent events, and the alert sound.

One `QueueFeed` reads the desk once a second while anyone is watching (not once per browser), and
at once when a desk notice arrives in this process; each browser gets the board filtered to what
its counsellor may see. Another process's changes (the Telegram desk, a second worker) show up
within a second through the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import math
import struct
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot.app import App
from dialogs.escalation import CaseSummary
from dialogs.messages import Outbound
from dialogs.taxonomy import category_chi_group
from storage.models import Case, Counsellor, utcnow
from storage.repos.reads import ReadRepo
from storage.repositories import Repos

log = logging.getLogger(__name__)

HEARTBEAT = 15.0


@dataclass(frozen=True, slots=True)
class Board:
    """The desk at one moment: waiting cases (queue order), the cases being worked on, and
    marks that move when any line is written or read (for the inboxes' unread counts)."""

    waiting: tuple[CaseSummary, ...]
    active: tuple[CaseSummary, ...]
    marks: tuple[int, int] = (0, 0)

    def for_staff(self, counsellor: Counsellor) -> Board:
        """What this counsellor may see: the queue and their own cases; a supervisor, all."""
        if counsellor.role == "supervisor":
            return self
        mine = tuple(c for c in self.active if c.owner == counsellor.name)
        return Board(self.waiting, mine, self.marks)


def summary_of(case: Case, owner: str | None) -> CaseSummary:
    """The same summary `Desk` gives, for the active cases the desk has no list of."""
    waited = (case.taken_at or utcnow()) - case.created_at
    return CaseSummary(
        id=case.id,
        category=case.category,
        risk=case.risk,
        status=case.status,
        channel=case.channel,
        created_at=case.created_at,
        owner=owner,
        waiting_minutes=max(0, int(waited.total_seconds() // 60)),
        chi_group=category_chi_group(case.category),
    )


async def read_board(app: App) -> Board:
    """The queue through `Desk.queue`; the cases in work from the repositories (read only)."""
    waiting = tuple(await app.desk.queue())
    async with app.db.session() as s:
        repos = Repos(s)
        names = {c.id: c.name for c in await repos.counsellors.all()}
        active = tuple(
            summary_of(c, names.get(c.owner_id) if c.owner_id else None)
            for c in await repos.board.active()
        )
        marks = await ReadRepo(s).marks()
    return Board(waiting, active, marks)


class QueueFeed:
    """Polls the board while someone listens; every listener gets the newest board."""

    def __init__(self, app: App, *, interval: float = 1.0) -> None:
        self.app = app
        self.interval = interval
        self._listeners: set[asyncio.Queue[Board]] = set()
        # Listeners that have had nothing yet: they get the next board read, changed or not.
        self._fresh: set[asyncio.Queue[Board]] = set()
        self._board: Board | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """Read again now (a desk notice arrived: a new case, a raised risk, a message)."""
        self._wake.set()

    @contextlib.asynccontextmanager
    async def listen(self) -> AsyncIterator[asyncio.Queue[Board]]:
        queue: asyncio.Queue[Board] = asyncio.Queue(maxsize=1)
        self._listeners.add(queue)
        # Not the board read up to a second ago: a page just drawn from the database must not
        # be patched back to what was true before it (a case taken meanwhile).
        self._fresh.add(queue)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="web-queue-feed")
        else:
            self.wake()
        try:
            yield queue
        finally:
            self._listeners.discard(queue)
            self._fresh.discard(queue)

    async def _run(self) -> None:
        while self._listeners:
            self._wake.clear()
            # Only listeners already waiting when this read starts may take it as their first.
            waiting = set(self._fresh)
            try:
                board = await read_board(self.app)
            except Exception:  # a database hiccup must not end every open queue page
                log.exception("web console: reading the queue failed")
            else:
                late = self._fresh - waiting  # they will have the next read, at once
                changed = board != self._board
                told = (self._listeners - late) if changed else (waiting & self._fresh)
                self._board = board
                self._fresh -= told
                for queue in told:
                    _put_latest(queue, board)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval)
        self._board = None

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def _put_latest(queue: asyncio.Queue[Board], board: Board) -> None:
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(board)


class DeskNotifier:
    """A desk `Sender` that only wakes the feed: registered where the channels run, so a new
    case reaches open queue pages at once instead of within the second."""

    def __init__(self, feed: QueueFeed) -> None:
        self.feed = feed

    async def send(self, message: Outbound) -> None:
        self.feed.wake()


# ---------------------------------------------------------------------- server-sent events
class EventStream:
    """A `text/event-stream` response: `await stream.send(event, data)`; comments keep it open
    through proxies (https://html.spec.whatwg.org/multipage/server-sent-events.html)."""

    def __init__(self, request: web.Request) -> None:
        self.request = request
        self.response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",
            }
        )

    async def open(self) -> EventStream:
        await self.response.prepare(self.request)
        await self.response.write(b"retry: 2000\n\n")
        return self

    async def send(self, event: str, data: Any, event_id: str | None = None) -> None:
        body = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        head = f"id: {event_id}\n" if event_id is not None else ""
        await self.response.write(f"{head}event: {event}\ndata: {body}\n\n".encode())

    async def ping(self) -> None:
        await self.response.write(b": ping\n\n")


# ---------------------------------------------------------------------- the alert sound
def alert_wav(rate: int = 8000) -> bytes:
    """Two short rising beeps as an 8-bit mono WAV (about 3 KB), made when the console starts:
    no binary file in the repository, nothing fetched from elsewhere."""
    frames = bytearray()
    for freq, seconds in ((660.0, 0.14), (0.0, 0.05), (880.0, 0.18)):
        count = int(rate * seconds)
        for i in range(count):
            fade = min(1.0, i / 80, (count - i) / 80)
            value = math.sin(2 * math.pi * freq * i / rate) * 0.6 * fade if freq else 0.0
            frames += struct.pack("B", int(128 + 127 * value))
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(1)
        out.setframerate(rate)
        out.writeframes(bytes(frames))
    return buffer.getvalue()
