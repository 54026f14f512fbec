"""Wiring: one `build_app(settings)` builds the database, knowledge base, engine, desk and
delivery; channels attach themselves to it. No globals are read inside handlers."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta

from sqlalchemy.exc import SQLAlchemyError

from bot import metrics
from bot.delivery import Delivery
from bot.settings import Settings
from dialogs.engine import DialogEngine, EngineConfig
from dialogs.escalation import Desk
from dialogs.messages import (
    DeskEvent,
    Inbound,
    Outbound,
    inbound_from_dict,
    inbound_to_dict,
)
from dialogs.operations import DeskConfig, DeskPolicy
from dialogs.ports import StoreUnavailable
from knowledge_base import KnowledgeBase
from storage import crypto
from storage.db import Database
from storage.models import utcnow
from storage.repositories import Repos

log = logging.getLogger(__name__)
_ALERTS = (DeskEvent.CASE_OPENED, DeskEvent.CASE_RAISED)
# What a database that is away raises: the driver's errors (wrapped by SQLAlchemy, or raw from
# the connect call), a pool timeout, or the dialogs' own StoreUnavailable.
DATABASE_ERRORS: tuple[type[BaseException], ...] = (
    SQLAlchemyError, StoreUnavailable, OSError, TimeoutError,
)
# Updates answered from memory while the database was away, remembered so that a platform's
# (or our own) retries of the same update do not repeat the emergency contacts.
_OFFLINE_MEMORY = 10_000
# How long `handle` waits between attempts to journal an update the database refused.
_JOURNAL_RETRY = (0.5, 1.0, 2.0, 4.0, 5.0)


class JournalUnavailable(RuntimeError):
    """An update could not be journalled (the database is away). The platform must not be told
    it arrived: polling keeps its offset before it, the webhook answers 5xx, and the update
    comes again. A child in danger has already had the emergency contacts from memory."""


@dataclass
class App:
    settings: Settings
    db: Database
    kb: KnowledgeBase
    engine: DialogEngine
    desk: Desk
    delivery: Delivery = field(default_factory=Delivery)
    _tasks: set[asyncio.Task[list[Outbound]]] = field(default_factory=set)
    _offline: OrderedDict[tuple[str, str], None] = field(default_factory=OrderedDict)
    # Run by `close` after the last update is handled: channels' HTTP sessions, which the
    # replies still being sent need until then.
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def handle(self, inbound: Inbound) -> list[Outbound]:
        """Store, handle and deliver one inbound message (what a channel with no redelivery
        calls: VK's long poll). While the database refuses the journal write the message is
        kept here, in order, and journalled as soon as it can be."""
        attempt = 0
        while True:
            try:
                stored = await self.receive(inbound)
                break
            except JournalUnavailable:
                delay = _JOURNAL_RETRY[min(attempt, len(_JOURNAL_RETRY) - 1)]
                attempt += 1
                await asyncio.sleep(delay)
        if stored is False:
            return []  # a repeat of an update we already have
        return await self.process(inbound, None if stored is True else stored)

    async def accept(self, inbound: Inbound) -> None:
        """Journal an update, then handle it in the background: the platform may be told the
        update arrived as soon as this returns (the journal survives a crash). Raises
        `JournalUnavailable` when the journal write failed: the platform must not be told."""
        stored = await self.receive(inbound)
        if stored is False:
            return
        task = asyncio.create_task(self.process(inbound, None if stored is True else stored))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for every update accepted so far to be handled."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def cancel_pending(self) -> int:
        """Cancel the handling of accepted updates (shutdown past its grace period): their
        journal entries stay open and are handled at the next start. Returns how many."""
        for task in self._tasks:
            task.cancel()
        return len(self._tasks)

    async def receive(self, inbound: Inbound) -> int | bool:
        """Journal an update before the platform is told it arrived. Returns its inbox id, True
        when it has no platform id (nothing to journal), or False for a repeat."""
        if inbound.update_id is None:
            return True
        try:
            async with self.db.session() as s:
                inbox_id = await Repos(s).inbox.add(
                    str(inbound.channel), inbound.update_id, inbound_to_dict(inbound)
                )
        except DATABASE_ERRORS as exc:
            log.warning("could not journal %s update %s (%s): it will come again",
                        inbound.channel, inbound.update_id, type(exc).__name__)
            await self.answer_offline(inbound)
            raise JournalUnavailable(type(exc).__name__) from exc
        return False if inbox_id is None else inbox_id

    async def answer_offline(self, inbound: Inbound) -> None:
        """Send the engine's contacts from memory (when the text reads as danger) once per
        update, straight to the platform (the outbox is in the database that is away). A
        failure here is logged: the update is journalled and handled once the database is back."""
        key = (str(inbound.channel), inbound.update_id or "")
        if key in self._offline:
            return
        replies = [replace(o, critical=True) for o in self.engine.contacts_from_memory(inbound)]
        if not replies:
            return
        self._offline[key] = None
        while len(self._offline) > _OFFLINE_MEMORY:
            self._offline.popitem(last=False)
        await self.delivery.send_now(replies)

    async def recover(self, older_than: float = 30.0) -> int:
        """Handle journalled updates that a crash left unprocessed; returns how many."""
        async with self.db.session() as s:
            rows = list(await Repos(s).inbox.unprocessed(utcnow() - timedelta(seconds=older_than)))
        for row in rows:
            await self.process(inbound_from_dict(dict(row.body)), row.id)
        if rows:
            log.warning("recovered %d unprocessed updates", len(rows))
        return len(rows)

    async def process(self, inbound: Inbound, inbox_id: int | None) -> list[Outbound]:
        """Handle a (journalled) update and deliver everything it produced."""
        channel = str(inbound.channel)
        started = time.perf_counter()
        out = await self.engine.handle(inbound)
        metrics.UPDATES.labels(channel).inc()
        metrics.HANDLING.labels(channel).observe(time.perf_counter() - started)
        if any(o.critical and o.desk_event in _ALERTS for o in out):
            metrics.DANGER.inc()
        # The engine closes the journal entry in its own transaction when it handled the update
        # (its replies then carry outbox ids); a flood reply, a repeat, a turn with no reply or a
        # database outage leaves it to us.
        try:
            if inbox_id is not None and not any("outbox_id" in o.meta for o in out):
                async with self.db.session() as s:
                    await Repos(s).inbox.mark_processed(inbox_id)
            await self.delivery.deliver(out)
        except DATABASE_ERRORS as exc:
            # The database went away after the journal write. What is in the outbox is sent by
            # the worker later, and an open journal entry is handled again by `recover`; what
            # the engine said from memory (the contacts, "write again") is sent now or never.
            log.warning("database away while delivering (%s): sending the replies that are "
                        "not in the outbox directly", type(exc).__name__)
            await self.delivery.send_now([o for o in out if "outbox_id" not in o.meta])
        return out

    async def close(self) -> None:
        await self.drain()
        for closer in reversed(self.closers):
            try:
                await closer()
            except Exception as exc:  # closing one channel must not keep the others open
                log.warning("closing a channel failed (%s)", type(exc).__name__)
        self.closers.clear()
        await self.db.dispose()


def configure_crypto(settings: Settings) -> None:
    """Set up encryption at rest from ENCRYPTION_KEYS / ID_HASH_KEY, or from a local key file
    made on first use (development: `make run` on a fresh machine)."""
    if settings.encryption_keys and settings.id_hash_key:
        keys = settings.encryption_keys.get_secret_value().split(",")
        id_key = settings.id_hash_key.get_secret_value()
    else:
        if settings.encryption_keys or settings.id_hash_key:
            raise crypto.CryptoError("set both ENCRYPTION_KEYS and ID_HASH_KEY, or neither")
        keys, id_key = crypto.local_keys(settings.keys_file)
        log.info(
            "using the local key file %s (set ENCRYPTION_KEYS and ID_HASH_KEY in production)",
            settings.keys_file,
        )
    crypto.configure(crypto.Cipher(keys, id_key))


def build_app(
    settings: Settings, *, db: Database | None = None, kb: KnowledgeBase | None = None
) -> App:
    configure_crypto(settings)
    database = db or Database(settings.database_url)
    knowledge = kb or KnowledgeBase.load()
    policy = DeskPolicy(
        DeskConfig.load(
            hours_file=settings.hours_file,
            capacity=settings.counsellor_capacity,
            reannounce_minutes=settings.reannounce_minutes,
            queue_update_minutes=settings.queue_update_minutes,
            estimate_days=settings.wait_estimate_days,
            staff_locale=settings.default_locale,
            region=settings.helpline_region,
        )
    )
    engine = DialogEngine(
        database,
        kb=knowledge,
        policy=policy,
        config=EngineConfig(
            default_locale=settings.default_locale,
            max_text=settings.max_text_chars,
            max_attachment_bytes=settings.evidence_max_bytes,
            silence_after=timedelta(hours=settings.silence_hours),
            minutes_per_case=settings.minutes_per_case,
            region=settings.helpline_region,
        ),
    )
    return App(
        settings=settings,
        db=database,
        kb=knowledge,
        engine=engine,
        desk=Desk(engine),
        delivery=Delivery(database),
    )
