"""Per-chat mailboxes: each chat's updates handled, and its replies sent, in the order they came,
with one worker or several, across restarts; and a bound on the work one process takes on.

The order guarantee
    Every journalled update carries its chat's key (channel + a keyed hash of the chat id; the
    raw id is only in the encrypted body). After journalling, the channel "kicks" the chat. Whoever
    holds the chat's claim takes the chat's open journal entries in journal order and, for each,
    handles it AND delivers its replies before taking the next; then releases the claim and looks
    again (an update journalled while the claim was being given back is not left behind: its own
    kick either took the claim, or failed because the holder had not yet released, and the holder
    looks again after releasing: in the database when other processes claim too, else at the
    kicks it was given meanwhile). Replies go out per chat in outbox order (`Delivery.deliver`):
    a reply never overtakes an older undelivered one of the same chat, even one a dead process
    had claimed (it waits for that claim's lease, then sends the older one first). Recovery at
    start-up goes through the same mailboxes.

The claim
    `bot.locks.ChatClaims`: an in-process set on SQLite (one process); on PostgreSQL a
    session-level advisory lock on one connection per process, gone the moment the process dies.

An entry the engine could not handle (its replies carry `meta["retry"]`: the database was away)
stays open and stops its chat's pass; it is taken again, first, by the next kick or by the
periodic `App.recover`.

Backpressure
    At most `MailboxLimits.chats` chats are worked on at once, and at most
    `MailboxLimits.backlog` accepted updates wait in this process. When the backlog is full,
    `admitted` raises `Busy` before anything is journalled: the webhook answers 429 (Telegram sends
    the update again later, and holds that chat's next ones meanwhile), polling and VK wait for
    `room()`. An update that reads as danger is always admitted.

The danger lane
    An update that reads as danger (`DialogEngine.urgent`: danger words, or a button that means
    danger) is kicked as urgent. Its chat never waits for a free slot (a chat already waiting
    for one is let in at once), the entry is handled before the chat's older open entries (a
    child who floods and then writes danger is answered first: safety before order), and it is
    handled inside `storage.lane.danger_lane`, so it also goes first for the SQLite writer; its
    replies and the counsellors' alert are critical, which the sender's pacer lets go first.
    While a danger entry is open, no ordinary entry starts in any chat (for up to `CALM_MAX`):
    the event loop is not shared with a thousand ordinary turns while the contacts and the
    alert go out.
    The lane is this process's: an urgent entry whose chat another worker holds is handled by
    that worker, in order.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from bot.locks import ChatClaims, ChatKey
from dialogs.messages import Outbound
from storage.db import Database
from storage.lane import danger_lane
from storage.repositories import Repos, chat_waiting

log = logging.getLogger(__name__)

BATCH = 20  # journal entries of a chat read at a time
# The longest an ordinary entry waits for danger being handled before it goes ahead anyway
# (seconds): a danger entry is handled in well under this; one whose chat another worker
# holds is that worker's.
CALM_MAX = 2.0


class Busy(RuntimeError):
    """This process has as much work as it may take: the platform should send it again later."""


_DANGER_ONLY: ContextVar[bool] = ContextVar("danger_only", default=False)


def taking_danger_only() -> bool:
    return _DANGER_ONLY.get()


@contextmanager
def danger_only() -> Iterator[None]:
    """Inside, only an update that reads as danger is taken in; any other raises `Busy`
    before it is journalled. A poller that must wait for room feeds the rest of its batch
    this way first, so that danger behind ordinary updates does not wait with them."""
    token = _DANGER_ONLY.set(True)
    try:
        yield
    finally:
        _DANGER_ONLY.reset(token)


@dataclass(frozen=True, slots=True)
class MailboxLimits:
    chats: int = 32  # chats worked on at once (each uses a database connection at a time)
    backlog: int = 2000  # accepted updates waiting in this process (MAILBOX_BACKLOG)


@dataclass(frozen=True, slots=True)
class Handled:
    """What handling one journal entry gave: its replies, and whether the entry is closed
    (False: the engine could not handle it; the chat waits for the next attempt)."""

    replies: list[Outbound]
    closed: bool = True


# Handle one journal entry (its id and decrypted body) and deliver its replies.
Step = Callable[[int, dict[str, Any]], Awaitable[Handled]]


class Slots:
    """At most `size` chats worked on at once, first come first served; a chat with danger
    waiting never waits for a slot (`promote` lets a waiting one in at once)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.busy = 0
        self._waiting: dict[ChatKey, asyncio.Future[None]] = {}

    async def acquire(self, key: ChatKey, urgent: bool = False) -> None:
        if urgent or (self.busy < self.size and not self._waiting):
            self.busy += 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting[key] = future
        try:
            await future
        except asyncio.CancelledError:
            if self._waiting.get(key) is future:
                del self._waiting[key]
            elif future.done() and not future.cancelled():
                self.release()  # let in as it was cancelled: pass the slot on
            raise

    @property
    def contended(self) -> bool:
        """Whether chats wait for a slot."""
        return bool(self._waiting)

    def promote(self, key: ChatKey) -> None:
        future = self._waiting.pop(key, None)
        if future is not None and not future.done():
            self.busy += 1
            future.set_result(None)

    def release(self) -> None:
        self.busy -= 1
        while self.busy < self.size and self._waiting:
            key = next(iter(self._waiting))
            future = self._waiting.pop(key)
            if not future.done():
                self.busy += 1
                future.set_result(None)


class Mailbox:
    def __init__(self, db: Database, claims: ChatClaims, step: Step,
                 limits: MailboxLimits | None = None) -> None:
        self.db = db
        self.claims = claims
        self.step = step
        self.limits = limits or MailboxLimits()
        self._slots = Slots(self.limits.chats)
        self._urgent: dict[ChatKey, set[int]] = {}  # entries in the danger lane, by chat
        self._drainers: dict[ChatKey, asyncio.Task[None]] = {}
        self._dirty: set[ChatKey] = set()
        self._backlog: dict[int, ChatKey] = {}
        # Entries journalled here with nothing older open in their chat, and their bodies:
        # handled from memory, without reading the journal back (`kick(first=...)`).
        self._fresh: dict[ChatKey, dict[int, dict[str, Any]]] = {}
        self._unread: set[ChatKey] = set()  # chats with work only the journal shows
        self._results: dict[int, asyncio.Future[list[Outbound]]] = {}
        self._freed = asyncio.Event()
        self._admitting = 0  # updates admitted and being journalled
        # Danger entries kicked and not yet handled; while there are any, no ordinary entry
        # starts (`_calm`): the event loop is the danger's alone, bar what is already running.
        self._danger_open: set[int] = set()
        self._calm = asyncio.Event()
        self._calm.set()
        self._paused: dict[ChatKey, asyncio.Event] = {}  # chats waiting in `_danger_first`
        self._stopped = False  # past shutdown's grace period (`cancel`): nothing new starts

    # ------------------------------------------------------------------ admission
    @property
    def full(self) -> bool:
        return len(self._backlog) + self._admitting >= self.limits.backlog

    @property
    def backlog(self) -> int:
        return len(self._backlog)

    @property
    def working(self) -> bool:
        return bool(self._drainers)

    @contextmanager
    def admitted(self, is_danger: Callable[[], bool]) -> Iterator[None]:
        """Inside, an update is being journalled and counts towards the backlog (kick it
        before leaving). Raises `Busy` when the backlog is full, unless it reads as danger
        (and, inside `danger_only()`, whenever it does not read as danger)."""
        self.reserve(is_danger())
        try:
            yield
        finally:
            self.unreserve()

    def reserve(self, danger: bool) -> None:
        """Count one update being journalled towards the backlog (`unreserve` once it is
        kicked or given up). Raises `Busy` as `admitted` does."""
        if (self.full or _DANGER_ONLY.get()) and not danger:
            raise Busy("too many updates in progress")
        self._admitting += 1

    def unreserve(self, n: int = 1) -> None:
        self._admitting -= n
        if not self.full:
            self._freed.set()

    def only(self, key: ChatKey) -> bool:
        """Nothing waits here but this chat's entries: no other chat's, none being taken in."""
        return not self._admitting and all(k == key for k in self._backlog.values())

    async def room(self) -> None:
        """Wait until the backlog has room."""
        while self.full:
            self._freed.clear()
            await self._freed.wait()

    # ------------------------------------------------------------------ kicks
    def kick(self, key: ChatKey, inbox_id: int | None = None, *, urgent: bool = False,
             first: dict[str, Any] | None = None) -> None:
        """The chat has new work (`inbox_id`, journalled and committed): make sure someone
        takes it (`urgent`: in the danger lane). `first`: the entry's body, when its journal
        transaction saw nothing older open in the chat (it is then handled from memory).
        Never waits. After `cancel` (shutdown) nothing starts: the entry stays open in the
        journal, for the next start."""
        if self._stopped:
            return
        if inbox_id is not None:
            self._backlog[inbox_id] = key
            if first is not None:
                self._fresh.setdefault(key, {})[inbox_id] = first
            if urgent:
                self._urgent.setdefault(key, set()).add(inbox_id)
                self._slots.promote(key)
                self._danger_open.add(inbox_id)
                self._calm.clear()
                paused = self._paused.get(key)
                if paused is not None:
                    paused.set()
        if inbox_id is None or first is None:
            self._unread.add(key)  # the journal must be read to find it
        self._dirty.add(key)
        if key not in self._drainers:
            task = asyncio.create_task(self._drain(key), name=f"mailbox {key[0]}")
            self._drainers[key] = task
            task.add_done_callback(lambda done: self._ended(key, done))

    async def result(self, key: ChatKey, inbox_id: int, *, urgent: bool = False,
                     first: dict[str, Any] | None = None) -> list[Outbound]:
        """Kick the chat and wait for entry `inbox_id`: its replies, or [] if another worker
        took it (or it stays open for later)."""
        if self._stopped:
            return []
        future = self._results.setdefault(inbox_id, asyncio.get_running_loop().create_future())
        self.kick(key, inbox_id, urgent=urgent, first=first)
        return await future

    async def settle(self, keys: Iterable[ChatKey] | None = None) -> None:
        """Wait until the chats' drainers (all, by default) have finished."""
        while True:
            wanted = set(keys) if keys is not None else None
            tasks = [t for k, t in self._drainers.items() if wanted is None or k in wanted]
            if not tasks:
                return
            await asyncio.gather(*tasks, return_exceptions=True)

    def cancel(self) -> int:
        """Stop working (shutdown past its grace period); open entries wait for the next
        start, and no chat starts again: a recovery pass still running would otherwise kick
        the whole backlog's chats, and the close after it wait for all of them. Returns how
        many chats were cut short."""
        self._stopped = True
        for task in self._drainers.values():
            task.cancel()
        return len(self._drainers)

    # ------------------------------------------------------------------ one chat
    async def _drain(self, key: ChatKey) -> None:
        try:
            while True:
                await self._slots.acquire(key, urgent=bool(self._urgent.get(key)))
                try:
                    again = await self._passes(key)
                finally:
                    self._slots.release()
                if not again:
                    break
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database went away: `App.recover` comes back to it
            log.warning("a chat's mailbox pass failed (%s); it is taken again later",
                        type(exc).__name__, exc_info=log.isEnabledFor(logging.DEBUG))
        finally:
            self._finished(key)

    async def _passes(self, key: ChatKey) -> bool:
        """Work through the chat's entries, pass after pass while new ones come. True when
        it stops to let chats waiting for a slot go first (it queues for a slot again, behind
        them): a child who answers at once would otherwise keep the slot while a thousand
        others wait, and at saturation their replies took 10 s and more."""
        while True:
            self._dirty.discard(key)
            with danger_lane(bool(self._urgent.get(key))):  # asks before ordinary claims
                claimed = await self.claims.try_claim(key)
            if not claimed:
                return False  # the holder looks again after it releases
            try:
                stalled = await self._work_through(key)
            finally:
                await self.claims.release(key)
            if stalled:
                return False
            waiting = key in self._dirty
            if not waiting and self.claims.shared:
                # Another process may have journalled one while we held the claim (its kick
                # failed to take it): look after releasing.
                async with self.db.lone() as on:
                    waiting = await chat_waiting(on, *key)
            # No await between this check and `_finished`: a kick from now on starts a new
            # drainer, and one from before set `_dirty`.
            if not waiting and key not in self._dirty:
                return False
            if self._slots.contended and not self._urgent.get(key):
                return True

    async def _work_through(self, key: ChatKey) -> bool:
        """Handle the chat's open entries, danger first, then in order; True when stopped
        before the end (an entry stays open, or the claim was lost)."""
        while True:
            urgent = self._urgent.pop(key, set())
            fresh = self._fresh.pop(key, {})
            in_memory = bool(fresh) and key not in self._unread and urgent <= fresh.keys()
            if in_memory:
                # Journalled here with nothing older open: no need to read the journal back.
                # What came in meanwhile (not first) is read on the next pass (`_dirty`).
                rest: Sequence[object] = []
                rows = sorted(fresh.items())
            else:  # the journal has it all (what `fresh` held too: it was committed)
                self._unread.discard(key)
                with danger_lane(bool(urgent)):
                    async with self.db.session() as s:
                        first = (await Repos(s).inbox.open_by_ids(sorted(urgent))
                                 if urgent else [])
                        rest = await Repos(s).inbox.for_chat(*key, limit=BATCH)
                        rows = [(r.id, dict(r.body)) for r in (*first, *rest)]
            handled_ids: set[int] = set()
            for inbox_id, body in rows:
                if inbox_id in handled_ids:
                    continue  # a danger entry taken first comes again in its place
                if not self.claims.holds(key):
                    return True
                if inbox_id not in urgent and not self._calm.is_set():
                    if not self._urgent.get(key):
                        await self._danger_first(key)
                    if self._urgent.get(key):
                        break  # the chat's own danger goes next
                with danger_lane(inbox_id in urgent):
                    handled = await self.step(inbox_id, body)
                handled_ids.add(inbox_id)
                self._done(inbox_id, handled.replies)
                if not handled.closed:
                    return True
                if self._urgent.get(key):
                    break  # danger came in meanwhile: it goes next
            else:
                if len(rest) < BATCH:  # all handled (from memory, `rest` is empty)
                    return False

    async def _danger_first(self, key: ChatKey) -> None:
        """Wait, before an ordinary entry of chat `key`, while danger is being handled; or
        until danger comes in this chat (its drainer must then take it); at most `CALM_MAX`
        (an entry another worker holds is not waited for long)."""
        own = self._paused[key] = asyncio.Event()
        waits = [asyncio.ensure_future(self._calm.wait()), asyncio.ensure_future(own.wait())]
        try:
            await asyncio.wait(waits, timeout=CALM_MAX, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
            if self._paused.get(key) is own:
                del self._paused[key]

    def _done(self, inbox_id: int, replies: list[Outbound]) -> None:
        self._backlog.pop(inbox_id, None)
        if inbox_id in self._danger_open:
            self._danger_open.discard(inbox_id)
            if not self._danger_open:
                self._calm.set()
        future = self._results.pop(inbox_id, None)
        if future is not None and not future.done():
            future.set_result(replies)
        if not self.full:
            self._freed.set()

    def _ended(self, key: ChatKey, task: asyncio.Task[None]) -> None:
        """A drainer cancelled before it began (`cancel` right after a kick) never ran its
        own `_finished`: without this, `settle` waited for it for ever (a shutdown past its
        grace period hung in `close`)."""
        if self._drainers.get(key) is task:
            self._finished(key)

    def _finished(self, key: ChatKey) -> None:
        """The chat's drainer ended: what it leaves is another worker's, or for later."""
        self._drainers.pop(key, None)
        self._dirty.discard(key)
        self._urgent.pop(key, None)
        self._fresh.pop(key, None)
        self._unread.discard(key)
        for inbox_id in [i for i, k in self._backlog.items() if k == key]:
            self._done(inbox_id, [])


__all__ = ["Busy", "Handled", "Mailbox", "MailboxLimits", "Slots", "Step", "danger_only",
           "taking_danger_only"]
