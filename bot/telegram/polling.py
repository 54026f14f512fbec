"""Long polling that acknowledges nothing before it is safe.

Telegram confirms an update once `getUpdates` is called with an offset above its id
(https://core.telegram.org/bots/api#getupdates). aiogram's `Dispatcher.start_polling` moves the
offset past every update it fed, whether its handler succeeded or not, and parses a whole batch at
once, so one update its models cannot read fails every `getUpdates` and stalls the bot. This loop
instead:

- feeds updates one by one, in update-id order, through the real `Dispatcher`;
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
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.methods import TelegramMethod
from aiogram.types import Update
from pydantic import ValidationError

from bot.app import JournalUnavailable
from bot.mailbox import Busy, danger_only

log = logging.getLogger(__name__)

# Waits between attempts after a failed getUpdates or journal write (seconds), the last repeated.
BACKOFF = (0.5, 1.0, 2.0, 4.0, 5.0)


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
                 full: Callable[[], bool] | None = None) -> None:
        self.bot = bot
        self.room = room
        self.full = full  # is the process full (feeding would wait for room)?
        # Updates of the batch in hand taken in ahead of their turn (danger), and those that
        # were refused for not being danger: neither is fed ahead again.
        self._ahead: set[int] = set()
        self._not_danger: set[int] = set()
        self.dispatcher = dispatcher
        self.timeout = timeout
        self.backoff = backoff
        self.offset: int | None = None  # the first update not yet confirmed (handled)
        self.skipped = 0

    async def run(self, stop: asyncio.Event) -> None:
        allowed = self.dispatcher.resolve_used_update_types()
        failures = 0
        while not stop.is_set():
            method = GetRawUpdates(offset=self.offset, timeout=self.timeout,
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
            for i, raw in enumerate(batch):
                if stop.is_set():
                    break
                if not await self._feed(raw, stop, batch[i + 1:]):
                    break
        await self._confirm()

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
        update_id = raw.get("update_id")
        if not isinstance(update_id, int):
            log.warning("skipped an update without an update id")
            self.skipped += 1
            return True
        if self.offset is not None and update_id < self.offset:
            return True  # already confirmed (a repeat in the batch)
        if update_id in self._ahead:
            self.offset = update_id + 1  # journalled ahead of its turn: nothing more to do
            return True
        try:
            update = Update.model_validate(raw, context={"bot": self.bot})
        except ValidationError:
            log.warning("skipped update %s: it does not read as a Telegram update", update_id)
            self.skipped += 1
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
                    or update_id in self._not_danger or not _from_a_private_chat(raw)):
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
        if self.offset is None:
            return
        with contextlib.suppress(Exception):
            await self.bot(GetRawUpdates(offset=self.offset, limit=1, timeout=0))

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


def _from_a_private_chat(raw: dict[str, Any]) -> bool:
    """A child's message, edit or button press (a private chat), read from the raw update."""
    for kind in ("message", "edited_message"):
        if isinstance(raw.get(kind), dict):
            return bool((raw[kind].get("chat") or {}).get("type") == "private")
    query = raw.get("callback_query")
    if isinstance(query, dict) and isinstance(query.get("message"), dict):
        return bool((query["message"].get("chat") or {}).get("type") == "private")
    return False


__all__ = ["GetRawUpdates", "Poller"]

