"""Wiring: one `build_app(settings)` builds the database, knowledge base, engine, desk and
delivery; channels attach themselves to it. No globals are read inside handlers."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from bot import metrics
from bot.delivery import Delivery
from bot.locks import AdvisoryClaims, ChatClaims, ChatKey, LocalClaims
from bot.mailbox import Handled, Mailbox, MailboxLimits
from bot.pacing import Buckets
from bot.settings import Settings
from dialogs import stages
from dialogs.engine import DialogEngine, EngineConfig
from dialogs.escalation import Desk
from dialogs.messages import (
    DESK,
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
from storage.advisory import FilePresence, Presence
from storage.db import Database
from storage.driver import Lone
from storage.lane import Lane, lane
from storage.models import utcnow
from storage.repos.journal import chat_key
from storage.repositories import Repos, add_first

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
# An update whose handling raised this many times is closed unhandled (it would hold its chat).
_POISON = 3


def chat_of(inbound: Inbound) -> ChatKey:
    """The key of an update's chat mailbox: its channel and a keyed hash of the chat id."""
    channel = str(inbound.channel)
    return channel, chat_key(channel, inbound.chat_id)


def inbox_body(body: Any) -> Inbound:
    """A journal row's body (decrypted JSON) as the update it stored."""
    return inbound_from_dict(dict(body))


def _split_desk(out: list[Outbound]) -> tuple[list[Outbound], list[Outbound]]:
    """What goes out before the chat's next turn (the replies, and the desk notices of a
    critical case, which skip the staff group's queue), and the ordinary desk notices."""
    later = [o for o in out if o.to.channel == DESK and not o.critical]
    return [o for o in out if o.to.channel != DESK or o.critical], later


def _retry(out: list[Outbound]) -> bool:
    """The engine's mark on the replies of an update it could not handle (database away)."""
    return any(o.meta.get("retry") for o in out)


class JournalBatch:
    """Updates taken in by `accept` inside `App.batching()`, journalled together by `commit`."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.entries: list[tuple[Inbound, bool]] = []  # (update, reads as danger)

    async def commit(self) -> None:
        """Journal the entries in one transaction and kick their chats. Raises
        `JournalUnavailable` (nothing journalled, the entries kept for another try)."""
        if not self.entries:
            return
        stored = await self.app._journal_many(self.entries)
        kicks = [(inbound, urgent, inbox_id, first)
                 for (inbound, urgent), (inbox_id, first) in zip(self.entries, stored, strict=True)
                 if inbox_id is not None]
        for inbound, urgent, inbox_id, first in sorted(kicks, key=lambda k: not k[1]):
            self.app.mailbox.kick(chat_of(inbound), inbox_id, urgent=urgent, first=first)
        self.close()

    def close(self) -> None:
        """Give back the backlog places of entries not (or no longer) waiting for a commit."""
        if self.entries:
            self.app.mailbox.unreserve(len(self.entries))
            self.entries = []


_BATCH: ContextVar[JournalBatch | None] = ContextVar("journal_batch", default=None)


class StepFailed(RuntimeError):
    """Handling a journal entry raised (logged); its chat's pass stops, and it is tried again
    by the next kick or recovery."""


class JournalUnavailable(RuntimeError):
    """An update could not be journalled (the database is away). The platform must not be told
    it arrived: polling keeps its offset before it, the webhook answers 5xx, and the update
    comes again. A child in danger has already had the emergency contacts from memory."""


@dataclass
class App:
    """The process's one application object. Updates go through per-chat mailboxes
    (`bot.mailbox`): handled, and their replies sent, in order per chat."""

    settings: Settings
    db: Database
    kb: KnowledgeBase
    engine: DialogEngine
    desk: Desk
    delivery: Delivery = field(default_factory=Delivery)
    limits: MailboxLimits = field(default_factory=MailboxLimits)
    mailbox: Mailbox = field(init=False)
    # Updates with no platform id (nothing to journal, so no mailbox): handled as they come.
    _loose: set[asyncio.Task[list[Outbound]]] = field(default_factory=set)
    # Small side tasks that must not hold up intake (answering a button press), awaited by
    # `drain`.
    _chores: set[asyncio.Task[Any]] = field(default_factory=set)
    _offline: OrderedDict[tuple[str, str], None] = field(default_factory=OrderedDict)
    # Journal entries whose handling raised, and how often (see `_failed_step`).
    _failures: dict[int, int] = field(default_factory=dict)
    # Run by `close` after the last update is handled: channels' HTTP sessions, which the
    # replies still being sent need until then.
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # This process's presence among those that send (`take_over`): an advisory lock on
    # PostgreSQL, a lock on a file beside the database on SQLite; held until `close`.
    _presence: Presence | FilePresence | None = None

    def __post_init__(self) -> None:
        claims: ChatClaims = (
            LocalClaims() if self.db.is_sqlite else AdvisoryClaims(self.db.engine)
        )
        self.mailbox = Mailbox(self.db, claims, self._step, self.limits)
        # Replies go out the moment their turn commits, from here: written claimed for us.
        self.engine.sends_on_commit = self.delivery
        # A flooder's texts waiting to be read go at once when nobody else's work waits.
        self.engine.idle = lambda inbound: self.mailbox.only(chat_of(inbound))

    async def handle(self, inbound: Inbound) -> list[Outbound]:
        """Store, handle and deliver one inbound message, and return its replies (what a
        channel with no redelivery calls: VK's long poll). Waits while this process is full.
        While the database refuses the journal write the message is kept here, in order, and
        journalled as soon as it can be."""
        if inbound.update_id is None:
            return await self.process(inbound, None)
        admitted = self._admit(inbound)
        if admitted is None:
            return []
        inbound = admitted
        urgent = self._urgent(inbound)
        if not urgent:  # danger never waits for room
            await self.mailbox.room()
        attempt = 0
        while True:
            try:
                stored, first = await self._journal(inbound, urgent=urgent)
                break
            except JournalUnavailable:
                delay = _JOURNAL_RETRY[min(attempt, len(_JOURNAL_RETRY) - 1)]
                attempt += 1
                await asyncio.sleep(delay)
        if stored is None:
            return []  # a repeat of an update we already have
        if inbound.flood == stages.READ:
            # A flooder's long text to be read later, paced: the channel does not wait for it
            # (VK takes a chat's updates one after another: its next message, danger among
            # them, would wait behind every read). What a read finds goes out from the outbox.
            self.mailbox.kick(chat_of(inbound), stored, first=first)
            return []
        return await self.mailbox.result(chat_of(inbound), stored, urgent=urgent, first=first)

    async def accept(self, inbound: Inbound) -> None:
        """Journal an update and kick its chat's mailbox: the platform may be told the update
        arrived as soon as this returns (the journal survives a crash). Raises `Busy` (nothing
        journalled) when this process has as much work as it may take, unless the update reads
        as danger, and `JournalUnavailable` when the journal write failed: in both cases the
        platform must not be told."""
        if inbound.update_id is None:
            task = asyncio.create_task(self.process(inbound, None))
            self._loose.add(task)
            task.add_done_callback(self._loose.discard)
            return
        admitted = self._admit(inbound)
        if admitted is None:
            return
        inbound = admitted
        urgent = self._urgent(inbound)
        batch = _BATCH.get()
        if batch is not None and batch.app is self:
            self.mailbox.reserve(urgent)  # Busy before anything is taken
            batch.entries.append((inbound, urgent))
            return
        with self.mailbox.admitted(lambda: urgent):
            stored, first = await self._journal(inbound, urgent=urgent)
            if stored is not None:
                self.mailbox.kick(chat_of(inbound), stored, urgent=urgent, first=first)

    def _urgent(self, inbound: Inbound) -> bool:
        """Does an admitted update go in the danger lane? A flooder's long text refused with
        no danger at a glance (`stages.READ`) is not read whole here: its chat's mailbox reads
        it, paced, behind the other children's work."""
        return inbound.flood != stages.READ and self.engine.urgent(inbound)

    def _admit(self, inbound: Inbound) -> Inbound | None:
        """The flood limit, before the journal (`DialogEngine.admit`): None for an update
        refused beyond the flood's one "slow down", which is neither journalled nor handled,
        so one child's flood costs the others no database work."""
        admitted = self.engine.admit(inbound)
        if admitted is None:
            metrics.FLOOD_REFUSED.labels(str(inbound.channel)).inc()
        return admitted

    @contextmanager
    def batching(self) -> Iterator[JournalBatch]:
        """Inside, `accept` only takes an update into the batch yielded (counted towards the
        backlog, nothing written): `await batch.commit()` journals them all in one transaction
        and kicks their chats; the platform may be told they arrived only after that. Leaving
        gives back what was not committed. For a poller's `getUpdates` answer."""
        batch = JournalBatch(self)
        token = _BATCH.set(batch)
        try:
            yield batch
        finally:
            _BATCH.reset(token)
            batch.close()

    def chore(self, work: Awaitable[Any]) -> None:
        """Run `work` beside intake (it handles its own errors; `drain` waits for it)."""
        task = asyncio.ensure_future(work)
        self._chores.add(task)
        task.add_done_callback(self._chores.discard)

    async def drain(self) -> None:
        """Wait for every update accepted so far to be handled (or left for later)."""
        while self._loose or self._chores or self.mailbox.working:
            await asyncio.gather(*list(self._loose), *list(self._chores),
                                 return_exceptions=True)
            await self.mailbox.settle()

    def cancel_pending(self) -> int:
        """Cancel the handling of accepted updates (shutdown past its grace period): their
        journal entries stay open and are handled at the next start. Returns how many chats
        or loose updates were cut short."""
        for task in (*self._loose, *self._chores):
            task.cancel()
        return len(self._loose) + self.mailbox.cancel()

    async def receive(self, inbound: Inbound, *, urgent: bool = False) -> int | bool:
        """Journal an update before the platform is told it arrived. Returns its inbox id, True
        when it has no platform id (nothing to journal), or False for a repeat. The write goes
        ahead of ordinary turns (`storage.lane`), and of everything when `urgent`."""
        if inbound.update_id is None:
            return True
        inbox_id, _first = await self._journal(inbound, urgent=urgent)
        return False if inbox_id is None else inbox_id

    async def _journal(self, inbound: Inbound, *, urgent: bool = False
                       ) -> tuple[int | None, dict[str, Any] | None]:
        """`receive`, for an update with a platform id: its inbox id (None for a repeat),
        and its body when nothing older is open in its chat (the mailbox then handles it
        from memory instead of reading it back)."""
        [entry] = await self._journal_many([(inbound, urgent)])
        return entry

    async def _journal_many(self, entries: list[tuple[Inbound, bool]]
                            ) -> list[tuple[int | None, dict[str, Any] | None]]:
        """Journal updates (each with whether it reads as danger) in one transaction, which
        goes ahead of ordinary turns (`storage.lane`), and of everything when one is danger.
        For each: its inbox id (None for a repeat), and its body when nothing older is open in
        its chat (only a chat's first entry here can be: the rest are read back from the
        journal). Raises `JournalUnavailable` (nothing journalled) when the database refused,
        after the contacts from memory for any that reads as danger."""
        stored: list[tuple[int | None, dict[str, Any] | None]] = []
        try:
            with lane(Lane.DANGER if any(u for _, u in entries) else Lane.INTAKE):
                # One entry is one statement: no transaction around it (`Database.lone`).
                opened = self.db.lone() if len(entries) == 1 else self.db.session()
                async with opened as s:
                    on = s if isinstance(s, Lone) else Repos(s).inbox
                    journalled: set[ChatKey] = set()
                    for inbound, _urgent in entries:
                        assert inbound.update_id is not None
                        channel, chat = chat_of(inbound)
                        body = inbound_to_dict(inbound)
                        inbox_id, first = await add_first(
                            on, channel, inbound.update_id, body, chat)
                        first = first and (channel, chat) not in journalled
                        if inbox_id is not None:
                            journalled.add((channel, chat))
                        stored.append((inbox_id, body if first else None))
        except DATABASE_ERRORS as exc:
            log.warning("could not journal %d updates (%s): they will come again",
                        len(entries), type(exc).__name__)
            for inbound, _urgent in entries:
                await self.answer_offline(inbound)
            raise JournalUnavailable(type(exc).__name__) from exc
        return stored

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

    async def take_over(self) -> int:
        """At start, before `recover`: when no other process that sends is alive (another
        worker; on SQLite a terminal chat or desk too), every claim on an undelivered reply
        is a dead process's. They are given back, so what it had not sent (a danger reply and
        the counsellors' alert among them) goes out now, not when its lease runs out
        (`Delivery.lease`); so are the desk's claims on cases (a topic being made, an alert
        being posted: `bot.telegram.desk.CLAIM_STALE`, 60 s). This process joins the live ones
        until `close`. Returns how many claims were given back."""
        released = 0

        async def release() -> None:
            nonlocal released
            async with self.db.session() as s:
                repos = Repos(s)
                released = await repos.outbox.release_all()
                # The desk's claims on cases (a topic being made, a danger alert being posted).
                released += await repos.desk.release_all_claims()

        self._presence = (FilePresence(self.db.presence_file) if self.db.is_sqlite
                          else Presence(self.db.engine))
        await self._presence.join(release)
        self.db.worker = self._presence.worker  # written on each claim this process takes
        # While it runs, the outbox worker gives back a dead worker's claims at each pass.
        self.delivery.release_dead = self.release_dead
        if released:
            log.warning("took over %d replies and case claims a stopped process held", released)
        return released

    async def release_dead(self) -> int:
        """Give back the outbox claims of other workers that died while this one runs
        (PostgreSQL; `storage.advisory.Presence.release_dead`): a dead worker's unsent danger
        reply goes out at this worker's next outbox pass (a second), not after its lease
        (20 s). Returns how many."""
        presence = self._presence
        if presence is None:
            return 0
        released = await presence.release_dead()
        self.db.worker = presence.worker  # a new id if it had to join again
        if released:
            log.warning("gave back %d replies a stopped worker held", released)
        return released

    async def recover(self, older_than: float = 30.0) -> int:
        """Handle journalled updates that a crash (or an outage) left unprocessed, through
        their chats' mailboxes, so they keep their place before newer ones; returns how many
        were waiting."""
        before = utcnow() - timedelta(seconds=older_than)
        async with self.db.session() as s:
            repos = Repos(s)
            for row in await repos.inbox.without_chat():
                await repos.inbox.set_chat(row.id, chat_of(inbox_body(row.body))[1])
            waiting = len(await repos.inbox.unprocessed(before))
            chats = await repos.inbox.waiting_chats(before)
        for key in chats:
            self.mailbox.kick(key)
        await self.mailbox.settle(chats)
        if waiting:
            log.warning("recovered %d unprocessed updates in %d chats", waiting, len(chats))
        return waiting

    async def _step(self, inbox_id: int, body: dict[str, Any]) -> Handled:
        """One journal entry, from its chat's mailbox: handled and its replies delivered.
        Replies flagged `retry` (the engine could not handle it) leave the entry open."""
        try:
            out = await self.process(inbox_body(body), inbox_id)
        except DATABASE_ERRORS:
            raise  # the database is away: the entry stays open, the chat waits
        except Exception:
            return await self._failed_step(inbox_id)
        self._failures.pop(inbox_id, None)
        return Handled(out, closed=not _retry(out))

    async def _failed_step(self, inbox_id: int) -> Handled:
        """An entry whose handling raised (a bug): tried again later, but after `_POISON`
        failures it is closed unhandled, so that it does not hold its chat up for good."""
        failures = self._failures[inbox_id] = self._failures.get(inbox_id, 0) + 1
        log.exception("handling journal entry %s failed (%d)", inbox_id, failures)
        if failures < _POISON:
            raise StepFailed(inbox_id)
        self._failures.pop(inbox_id, None)
        async with self.db.session() as s:
            await Repos(s).inbox.mark_processed(inbox_id)
        log.error("journal entry %s closed unhandled after %d failures", inbox_id, failures)
        return Handled([], closed=True)

    async def process(self, inbound: Inbound, inbox_id: int | None) -> list[Outbound]:
        """Handle a (journalled) update and deliver everything it produced."""
        channel = str(inbound.channel)
        started = time.perf_counter()
        out = await self.engine.handle(inbound)
        if inbound.flood == stages.READ and not out:
            metrics.FLOOD_REFUSED.labels(channel).inc()  # read whole: no danger, let go
        metrics.UPDATES.labels(channel).inc()
        metrics.HANDLING.labels(channel).observe(time.perf_counter() - started)
        if any(o.critical and o.desk_event in _ALERTS for o in out):
            metrics.DANGER.inc()
        if _retry(out):
            # Not handled (the database is away): the entry stays open for the next attempt,
            # and what the engine said from memory goes straight out (no outbox to write to).
            await self.delivery.send_now(out)
            return out
        # The engine closes the journal entry in its own transaction when it handled the update
        # (its replies then carry outbox ids); a flood reply, a repeat or a turn with no reply
        # leaves it to us.
        try:
            if inbox_id is not None and not any("outbox_id" in o.meta for o in out):
                async with self.db.session() as s:
                    await Repos(s).inbox.mark_processed(inbox_id)
            # Waits (up to a lease) for an older reply another process holds: the chat's
            # next update is not handled before this one's replies are out. Ordinary desk
            # notices go beside it: the staff group's 20 posts a minute must not hold up the
            # child's next turn (a busy topic gets its lines together, `Delivery`).
            now, later = _split_desk(out)
            await self.delivery.deliver(now, wait=True)
            if later:
                self.chore(self._deliver_later(later))
            if out:
                metrics.REPLY_LATENCY.labels(channel).observe(time.perf_counter() - started)
        except DATABASE_ERRORS as exc:
            # The database went away after the journal write. What is in the outbox is sent by
            # the worker later, and an open journal entry is handled again by `recover`; what
            # the engine said from memory (the contacts, "write again") is sent now or never.
            log.warning("database away while delivering (%s): sending the replies that are "
                        "not in the outbox directly", type(exc).__name__)
            await self.delivery.send_now([o for o in out if "outbox_id" not in o.meta])
        return out

    async def _deliver_later(self, notices: list[Outbound]) -> None:
        try:
            await self.delivery.deliver(notices, wait=True)
        except DATABASE_ERRORS as exc:  # durable in the outbox: its worker sends them
            log.warning("desk notices left to the outbox worker (%s)", type(exc).__name__)
        except Exception:
            log.exception("desk notices left to the outbox worker")

    async def close(self) -> None:
        await self.drain()
        await self.mailbox.claims.close()
        if self._presence is not None:
            await self._presence.close()
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
    settings: Settings,
    *,
    db: Database | None = None,
    kb: KnowledgeBase | None = None,
    limits: MailboxLimits | None = None,
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
    metrics.RETRIES.sources.append(lambda: engine.retries)
    return App(
        settings=settings,
        db=database,
        kb=knowledge,
        engine=engine,
        desk=Desk(engine),
        delivery=Delivery(database),
        limits=limits or MailboxLimits(chats=settings.mailbox_chats,
                                       backlog=settings.mailbox_backlog),
    )


def send_buckets(app: App) -> Buckets | None:
    """The platforms' send limits: shared by every worker on PostgreSQL, this process's own
    on SQLite (one worker)."""
    if app.db.is_sqlite:
        return None
    from storage.ratebuckets import SharedBuckets

    return SharedBuckets(app.db)
