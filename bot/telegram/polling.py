"""Long polling that acknowledges nothing before it is safe.

Telegram confirms an update once `getUpdates` is called with an offset above its id
(https://core.telegram.org/bots/api#getupdates). aiogram's `Dispatcher.start_polling` moves the
offset past every update it fed, whether its handler succeeded or not, and parses a whole batch at
once, so one update its models cannot read fails every `getUpdates` and stalls the bot. This loop
instead:

- feeds updates in update-id order through the real `Dispatcher`. With a `journal`
  (`App.batching`), a `getUpdates` answer's children's updates are taken in and journalled
  together, in one transaction, before any of them is confirmed; staff-group updates (a
  counsellor's action, which acts at once and is not journalled) go to the staff lane, a task
  of their own that handles them one by one in order, so that a slow desk action never holds
  up a child's message behind it. With a `staff_journal` (`bot.telegram.deskjournal`) a staff
  update is kept in the database first and confirmed with the rest: handled in order, deleted
  once handled, and handled at the next start after a crash. Without one, or while the
  database refuses, a staff update not yet handled holds the confirmed offset back (and what
  Telegram then sends again is passed over): at most 100 updates from the offset come back,
  so under load every child's update more than 100 behind a slow counsellor's action, danger
  too, would wait for it;
- keeps the offset before an update whose journal write failed (`JournalUnavailable`) and feeds
  it again until it is journalled: it is never confirmed, so a crash meanwhile loses nothing;
- reads each update of a batch on its own and skips one it cannot read (its id is logged, never
  its content);
- stops between updates when asked (SIGTERM), after the one in hand is journalled;
- waits for `room()` before feeding an update while the process is full (`bot.mailbox`), and
  feeds it again if it was refused as `Busy`; before it waits, it feeds the rest of the batch's
  children's updates under `danger_only()`, so that danger behind them is taken in at once
  (the others are refused before they are journalled, and fed again in their turn).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol

from aiogram import Bot, Dispatcher
from aiogram.methods import TelegramMethod
from aiogram.types import Update
from pydantic import ValidationError

from bot.app import JournalUnavailable
from bot.mailbox import Busy, danger_only
from storage.lane import Lane, lane

log = logging.getLogger(__name__)
# How long the poller takes updates in before it journals what it took (so their turns start)
# and lets the turns under way go on (seconds); and the shortest it takes them in between two
# looks at the turns: it yields after as long as its last yield took, within these bounds.
INTAKE_SLICE = 0.02
INTAKE_SLICE_MIN = 0.002

# Waits between attempts after a failed getUpdates or journal write (seconds), the last repeated.
BACKOFF = (0.5, 1.0, 2.0, 4.0, 5.0)
# While the staff lane holds the offset back, the longest wait before asking again (seconds).
STAFF_POLL = 0.25


class Together(Protocol):
    """Updates fed inside `journal()` are taken in, not yet journalled, until `commit()`."""

    async def commit(self) -> None: ...


class StaffJournal(Protocol):
    """Where staff-group updates are kept until handled (`bot.telegram.deskjournal`)."""

    async def keep(self, update_id: int, raw: dict[str, Any]) -> bool: ...

    async def done(self, update_id: int) -> None: ...

    async def waiting(self) -> list[tuple[int, dict[str, Any]]]: ...


class GetRawUpdates(TelegramMethod[list[dict[str, Any]]]):
    """`getUpdates` whose answer is left as JSON objects, so that each update is read on its own
    and one that cannot be read is skipped instead of failing the whole batch."""

    __returning__ = list[dict[str, Any]]
    __api_method__ = "getUpdates"

    offset: int | None = None
    limit: int | None = None
    timeout: int | None = None
    allowed_updates: list[str] | None = None


class Poller:
    """`await Poller(bot, dispatcher).run(stop)` polls until `stop` is set."""

    def __init__(self, bot: Bot, dispatcher: Dispatcher, *, timeout: int = 30,
                 backoff: tuple[float, ...] = BACKOFF,
                 room: Callable[[], Awaitable[None]] | None = None,
                 full: Callable[[], bool] | None = None,
                 journal: Callable[[], AbstractContextManager[Together]] | None = None,
                 staff_journal: StaffJournal | None = None) -> None:
        self.bot = bot
        # Keeps staff-group updates until handled, so that they are confirmed at once.
        self.staff_journal = staff_journal
        self._kept: set[int] = set()  # kept staff updates fed to the lane, not yet handled
        # Journals a run of children's updates in one transaction (`App.batching`).
        self.journal = journal
        self.room = room
        self.full = full  # is the process full (feeding would wait for room)?
        # Updates of the batch in hand taken in ahead of their turn (danger), and those that
        # were refused for not being danger: neither is fed ahead again.
        self._ahead: set[int] = set()
        self._not_danger: set[int] = set()
        self.dispatcher = dispatcher
        self.timeout = timeout
        self.backoff = backoff
        self.offset: int | None = None  # the first update not yet fed (taken or handled)
        self.skipped = 0
        # The staff lane (with `journal`): staff-group updates handled one by one, in order, by
        # their own task, so that a counsellor's action never holds up the children's intake.
        # One not yet handled holds the confirmed offset back (`_confirmable`): a crash
        # meanwhile loses nothing, Telegram sends it again.
        self._staff: asyncio.Queue[tuple[int, Update] | None] = asyncio.Queue()
        self._staff_open: list[int] = []  # fed to the staff lane, not yet handled, in order
        self._staff_moved = asyncio.Event()

    def _confirmable(self) -> int | None:
        """The offset to ask with: past every update fed, but not past a staff update that
        is not handled yet (nor past a child's update not yet journalled: `offset` moves
        past those only once they are)."""
        if self._staff_open and self.offset is not None:
            return min(self._staff_open[0], self.offset)
        return self.offset

    async def run(self, stop: asyncio.Event) -> None:
        if self.journal is not None:
            await self._kept_before(stop)
        staff = asyncio.create_task(self._staff_lane(stop)) if self.journal else None
        try:
            await self._poll(stop)
        finally:
            if staff is not None:
                self._staff.put_nowait(None)  # the one in hand finishes, the rest wait
                await staff
            await self._confirm()

    async def _poll(self, stop: asyncio.Event) -> None:
        allowed = self.dispatcher.resolve_used_update_types()
        failures = 0
        news = True  # did the last answer bring updates not fed before?
        while not stop.is_set():
            behind = self._held_back()
            if behind and not news:
                # The staff lane holds the offset back, and Telegram answered only with what
                # was fed already: ask again once the lane moved, or shortly.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._staff_moved.wait(), STAFF_POLL)
                if stop.is_set():
                    break
                behind = self._held_back()
            self._staff_moved.clear()
            # Held back, Telegram has updates for us at once: no long poll.
            method = GetRawUpdates(offset=self._confirmable(),
                                   timeout=0 if behind else self.timeout,
                                   allowed_updates=allowed)
            try:
                batch = await self._until_stopped(stop, self._fetch(method))
            except Exception as exc:  # network, 5xx, an undecodable answer: wait and ask again
                # The exception's text may quote the answer (children's messages): type only.
                log.warning("getUpdates failed (%s); trying again", type(exc).__name__)
                await self._sleep(stop, failures)
                failures += 1
                continue
            if batch is None:
                break  # stopped while waiting for updates
            failures = 0
            self._ahead.clear()
            self._not_danger.clear()
            before = self.offset
            i = 0
            while i < len(batch) and not stop.is_set():
                if self.journal is not None:
                    taken = await self._feed_together(batch, i, stop)
                    if taken is None:
                        break  # stopped before the batch was journalled
                    i += taken
                    if i >= len(batch) or stop.is_set():
                        break
                if not await self._feed(batch[i], stop, batch[i + 1:]):
                    break
                i += 1
            news = self.offset != before

    def _held_back(self) -> bool:
        held = self._confirmable()
        return held is not None and self.offset is not None and held < self.offset

    def _screen(self, raw: dict[str, Any], offset: int | None
                ) -> tuple[int, Update | None] | None:
        """What to do with one update of a batch, `offset` being the first not yet fed:
        (its id, the update) to feed it; (its id, None) to pass over it (one fed ahead of
        its turn, or unreadable: skipped, its id logged, never its content); None for one
        without an id or fed already (held back by the staff lane, or a repeat)."""
        update_id = raw.get("update_id")
        if not isinstance(update_id, int):
            log.warning("skipped an update without an update id")
            self.skipped += 1
            return None
        if offset is not None and update_id < offset:
            return None
        if update_id in self._ahead:
            return update_id, None  # journalled ahead of its turn: nothing more to do
        try:
            return update_id, Update.model_validate(raw, context={"bot": self.bot})
        except ValidationError:
            log.warning("skipped update %s: it does not read as a Telegram update", update_id)
            self.skipped += 1
            return update_id, None

    def _to_staff_lane(self, update_id: int, update: Update) -> None:
        self._staff_open.append(update_id)  # not confirmed before it is handled, in order
        self._staff.put_nowait((update_id, update))

    async def _to_staff(self, update_id: int, raw: dict[str, Any], update: Update) -> None:
        """Hand a staff-group update to the staff lane: kept first, so that it can be
        confirmed at once; held back (not confirmed before it is handled) when it cannot be."""
        if self.staff_journal is not None:
            try:
                fresh = await self.staff_journal.keep(update_id, raw)
            except Exception as exc:  # the database is away: hold the offset back instead
                log.warning("could not keep staff update %s (%s); holding it back",
                            update_id, type(exc).__name__)
            else:
                if fresh:
                    self._kept.add(update_id)
                    self._staff.put_nowait((update_id, update))
                # else: kept already, by a run that stopped before handling it: this run
                # took it from the database at start (`_kept_before`).
                return
        self._to_staff_lane(update_id, update)

    async def _kept_before(self, stop: asyncio.Event) -> None:
        """Queue, first, the staff updates an earlier run kept but did not handle."""
        if self.staff_journal is None:
            return
        attempt = 0
        while not stop.is_set():
            try:
                waiting = await self.staff_journal.waiting()
                break
            except Exception as exc:
                log.warning("could not read the kept staff updates (%s); trying again",
                            type(exc).__name__)
                await self._sleep(stop, attempt)
                attempt += 1
        else:
            return
        for update_id, raw in waiting:
            try:
                update = Update.model_validate(raw, context={"bot": self.bot})
            except ValidationError:
                log.warning("skipped kept staff update %s: it does not read as an update",
                            update_id)
                with contextlib.suppress(Exception):
                    await self.staff_journal.done(update_id)
                continue
            self._kept.add(update_id)
            self._staff.put_nowait((update_id, update))
        if waiting:
            log.warning("handling %d staff updates kept by an earlier run", len(waiting))

    async def _staff_lane(self, stop: asyncio.Event) -> None:
        """Handle staff-group updates in the order they came, beside the children's intake.
        Ends at the marker `run` sends (None) once polling stopped: what is queued after the
        update in hand is left unconfirmed, for Telegram to send again."""
        while True:
            item = await self._staff.get()
            if item is None or stop.is_set():
                return
            update_id, update = item
            try:
                # A counsellor's action goes ahead of ordinary turns where they wait (the
                # database's turn, `storage.lane`): a child in danger may be waiting on it.
                with lane(Lane.INTAKE):
                    await self.dispatcher.feed_update(self.bot, update)
            except Exception as exc:  # a handler's bug must not stall the desk
                log.error("update %s failed (%s)", update_id, type(exc).__name__,
                          exc_info=log.isEnabledFor(logging.DEBUG))
            if update_id in self._kept:
                self._kept.discard(update_id)
                assert self.staff_journal is not None
                try:
                    await self.staff_journal.done(update_id)
                except Exception as exc:  # left kept: handled again at the next start
                    log.warning("could not mark staff update %s handled (%s)", update_id,
                                type(exc).__name__)
            else:
                self._staff_open.remove(update_id)
            self._staff_moved.set()

    async def _feed_together(self, batch: list[dict[str, Any]], start: int,
                             stop: asyncio.Event) -> int | None:
        """Feed children's updates from `batch[start]` on into one journal transaction, up to
        the first that is not a child's (a staff update acts at once: it goes on its own, after
        them) or that the full process refuses. Returns how many were taken (their offset
        moved past once journalled), or None when stopped before the journal took them."""
        assert self.journal is not None
        end = start
        offset = self.offset
        slice_began = yielded = time.perf_counter()
        between = INTAKE_SLICE_MIN  # intake between two yields: as long as the last yield took
        with self.journal() as together:
            while end < len(batch):
                raw = batch[end]
                screened = self._screen(raw, offset)
                if screened is not None:
                    update_id, update = screened
                    if update is None:
                        pass  # passed over
                    elif not from_a_private_chat(raw):
                        await self._to_staff(update_id, raw, update)
                    else:
                        try:
                            await self.dispatcher.feed_update(self.bot, update)
                        except Busy:
                            break  # full: this one and the rest go one by one, waiting
                        except Exception as exc:  # a handler's bug must not stall the chats
                            log.error("update %s failed (%s)", update_id, type(exc).__name__,
                                      exc_info=log.isEnabledFor(logging.DEBUG))
                    offset = update_id + 1
                end += 1
                # Taking an update in is CPU alone (parsing, triage, about 1 ms; a long text
                # more): every `INTAKE_SLICE` what was taken so far is journalled (its turns
                # start), and in between the turns under way go on, so that a hundred of one
                # child's flood in one answer do not hold everybody else's turns and replies up
                # for their whole length (another child's update in the same answer waited for
                # the flood's last to be journalled, and each of its turn's database round
                # trips for a whole slice). The turns go on as often as intake has had as
                # long as they took the last time: often while they are few, once per
                # `INTAKE_SLICE` when the loop is busy (each yield then waits for every ready
                # turn, and intake, where a danger message waits, would crawl).
                now = time.perf_counter()
                if now - slice_began > INTAKE_SLICE:
                    if not await self._commit(together, stop):
                        return None
                    self.offset = offset
                    slice_began = now
                if now - yielded > between:
                    # Twice: the first lets the loop read what came meanwhile (a database's
                    # answer), the second lets the turns it woke take their next step; once,
                    # each of a turn's round trips would wait for two slices of intake.
                    await asyncio.sleep(0)
                    await asyncio.sleep(0)
                    yielded = time.perf_counter()
                    between = min(INTAKE_SLICE, max(INTAKE_SLICE_MIN, yielded - now))
            if not await self._commit(together, stop):
                return None
        self.offset = offset
        return end - start

    async def _commit(self, together: Together, stop: asyncio.Event) -> bool:
        """Journal what `together` holds (`JournalBatch.commit`), trying again while the
        database is away; False when stopped first (nothing of it journalled: the offset
        stays before it, and Telegram offers it again after a restart)."""
        attempt = 0
        while True:
            try:
                await together.commit()
                return True
            except JournalUnavailable:
                # Nothing journalled: the entries are kept for the next try.
                await self._sleep(stop, attempt)
                attempt += 1
                if stop.is_set():
                    return False

    async def _fetch(self, method: GetRawUpdates) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {}
        if self.bot.session.timeout:
            kwargs["request_timeout"] = int(self.bot.session.timeout + self.timeout)
        result: list[dict[str, Any]] = await self.bot(method, **kwargs)
        return result

    async def _feed(self, raw: dict[str, Any], stop: asyncio.Event,
                    rest: list[dict[str, Any]] | None = None) -> bool:
        """Feed one update until it is journalled; False when stopped before that. `rest` is
        what follows it in the batch (fed ahead, danger only, while this one waits)."""
        screened = self._screen(raw, self.offset)
        if screened is None:
            return True
        update_id, update = screened
        if update is None:
            self.offset = update_id + 1  # passed over
            return True
        if self.journal is not None and not from_a_private_chat(raw):
            await self._to_staff(update_id, raw, update)
            self.offset = update_id + 1
            return True
        attempt = 0
        while True:
            if rest and self.full is not None and self.full():
                await self._danger_ahead(rest)
            if self.room is not None:
                await self._until_stopped(stop, self.room())
                if stop.is_set():
                    return False
            try:
                await self.dispatcher.feed_update(self.bot, update)
            except Busy:
                await self._sleep(stop, 0)  # full just now: wait for room and feed it again
                if stop.is_set():
                    return False
                continue
            except JournalUnavailable:
                # Not journalled: the offset stays before it; it is fed again (and would come
                # again from Telegram after a restart).
                if stop.is_set():
                    return False
                await self._sleep(stop, attempt)
                attempt += 1
                if stop.is_set():
                    return False
                continue
            except Exception as exc:  # a handler's bug must not stall every chat behind it
                log.error("update %s failed (%s)", update_id, type(exc).__name__,
                          exc_info=log.isEnabledFor(logging.DEBUG))
            break
        self.offset = update_id + 1
        return True

    async def _danger_ahead(self, rest: list[dict[str, Any]]) -> None:
        """Take in, ahead of their turn, the children's updates among `rest` that read as
        danger (the others are refused as `Busy`, unjournalled). The offset does not move:
        each is passed over when its turn comes. Staff-group updates never go ahead."""
        for raw in rest:
            update_id = raw.get("update_id")
            if (not isinstance(update_id, int) or update_id in self._ahead
                    or update_id in self._not_danger or not from_a_private_chat(raw)):
                continue
            try:
                update = Update.model_validate(raw, context={"bot": self.bot})
                with danger_only():
                    await self.dispatcher.feed_update(self.bot, update)
            except Busy:
                self._not_danger.add(update_id)
            except Exception as exc:  # unreadable, or the journal is away: fed in its turn
                log.debug("update %s not taken ahead (%s)", update_id, type(exc).__name__)
                self._not_danger.add(update_id)
            else:
                self._ahead.add(update_id)

    async def _confirm(self) -> None:
        """Tell Telegram, on the way out, which updates are handled, so that a restart is not
        sent them again (harmless if it were: the journal ignores a repeat)."""
        offset = self._confirmable()
        if offset is None:
            return
        with contextlib.suppress(Exception):
            await self.bot(GetRawUpdates(offset=offset, limit=1, timeout=0))

    async def _sleep(self, stop: asyncio.Event, attempt: int) -> None:
        delay = self.backoff[min(attempt, len(self.backoff) - 1)]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=delay)

    @staticmethod
    async def _until_stopped(stop: asyncio.Event,
                             call: Any) -> list[dict[str, Any]] | None:
        """The long poll's answer, or None if `stop` is set first (the poll is abandoned:
        what it would have returned is not confirmed, so Telegram keeps it)."""
        fetch: asyncio.Task[list[dict[str, Any]]] = asyncio.ensure_future(call)
        stopped = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({fetch, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            if not fetch.done():
                fetch.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await fetch
        if fetch.cancelled():
            return None
        return fetch.result()


def from_a_private_chat(raw: dict[str, Any]) -> bool:
    """A child's message, edit or button press (a private chat), read from the raw update."""
    for kind in ("message", "edited_message"):
        if isinstance(raw.get(kind), dict):
            return bool((raw[kind].get("chat") or {}).get("type") == "private")
    query = raw.get("callback_query")
    if isinstance(query, dict) and isinstance(query.get("message"), dict):
        return bool((query["message"].get("chat") or {}).get("type") == "private")
    return False


__all__ = ["GetRawUpdates", "Poller", "StaffJournal", "from_a_private_chat"]

