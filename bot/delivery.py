"""Delivery of outbound messages through a durable outbox.

Every message is in the outbox table before anyone tries to send it (the engine writes its
replies there in the same transaction as the conversation's new state). A message is sent at once
when its channel is live in this process; one that fails with a temporary error (network, 5xx,
429) is retried with backoff by the outbox worker, in order per chat, until it is delivered or is
permanently impossible (the user blocked the bot), which the counsellor is told. Routing is by
`Outbound.to.channel`: a VK child's case can be handled from the Telegram staff group, and desk
notices ("desk") go to every registered desk.

Order per chat, whoever sends: `deliver` sends a chat's undelivered rows oldest first, its new
messages among them, and stops at the first it cannot send now. An older row claimed by another
sender (alive, or dead with its lease running) is waited for, up to the lease (`CLAIM`), so no
reply overtakes it; an older row waiting for its retry leaves the newer ones to the worker, which
sends them in order (`flush_due` checks `earlier_pending`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Protocol

from bot import metrics
from bot.pacing import Pacer
from dialogs.engine import CLAIMED, write_outbox
from dialogs.messages import (
    DESK,
    Address,
    DeskEvent,
    Outbound,
    outbound_from_dict,
)
from storage.db import Database
from storage.lane import in_danger_lane
from storage.models import OutboxMessage, utcnow
from storage.repositories import Repos, mark_delivered_many

log = logging.getLogger(__name__)

# A sender that dies holding a claim delays that message by at most this long.
CLAIM = timedelta(seconds=20)
MAX_BACKOFF = 300.0
# How often `deliver` looks again at an older message another process holds.
HOLD_POLL = (0.02, 0.05, 0.1, 0.2, 0.5)
# At shutdown, how long sends already under way may take to finish (and be marked) before
# their claims are given back: a request the platform has taken is acted on even when we hang
# up, so giving its claim back at once would send it twice.
IN_FLIGHT_GRACE = 1.5


class DeliveryError(Exception):
    """A send that failed. `permanent` when it can never succeed (403: the user blocked us)."""

    def __init__(
        self, kind: str, *, permanent: bool = False, retry_after: float | None = None
    ) -> None:
        super().__init__(kind)
        self.kind = kind
        self.permanent = permanent
        self.retry_after = retry_after


class Sender(Protocol):
    """A channel that can deliver an outbound message to a user (or, for desks, to staff)."""

    async def send(self, message: Outbound) -> None: ...


# How many of a case's waiting desk lines go out together, at most.
DESK_BATCH = 20


def mergeable(message: Outbound) -> bool:
    """A desk notice that is only a line the child wrote: while the case's topic is busy, a run
    of these is handed to the desks together (`send_batch`), which post it as one message."""
    return (message.to.channel == DESK and message.desk_event is DeskEvent.CHILD_MESSAGE
            and bool(message.text) and not message.attachments and not message.buttons)


class Delivery:
    # `dialogs.ports.SendsOnCommit`: how long a reply written claimed for us stays ours.
    lease = CLAIM

    def __init__(self, db: Database | None = None) -> None:
        self.db = db
        self._senders: dict[str, Sender] = {}
        self._pacers: dict[str, Pacer] = {}
        self._desks: list[Sender] = []
        # Outbox rows this process has claimed and not yet settled: released on shutdown so
        # another worker (or the next start) need not wait out the claim.
        self._claimed: set[int] = set()
        # Chats a task of this process is sending to now (one at a time per chat), the chats
        # more was written for meanwhile, and the messages in hand for each (with their meta).
        self._sending: set[tuple[str, str]] = set()
        self._wanted: set[tuple[str, str]] = set()
        self._known: dict[tuple[str, str], dict[int, Outbound]] = {}
        self._stopping = False
        # Sent messages waiting to be marked delivered, all in one statement (a group commit:
        # every sender waits for the batch its message is in), and the batch's outcome.
        self._to_mark: list[int] = []
        self._marked: asyncio.Future[None] | None = None
        self._marker: asyncio.Task[None] | None = None
        # Renews the leases of the claims in hand while their sends wait (for a send token:
        # the staff group's turn can take minutes), so no other worker takes them over.
        self._keeper: asyncio.Task[None] | None = None
        # Sends under way with their delivered marks: shutdown lets them end (`release`).
        self._in_flight: set[asyncio.Task[Exception | None]] = set()
        # Gives back the claims of workers that died (`bot.app.App.release_dead`), run at
        # each pass of `run_worker`; None until the app joins the workers.
        self.release_dead: Callable[[], Awaitable[int]] | None = None

    def register(self, channel: str, sender: Sender, pacer: Pacer | None = None) -> None:
        self._senders[channel] = sender
        if pacer is not None:
            self._pacers[channel] = pacer

    def register_desk(self, desk: Sender) -> None:
        """Add a desk (or a desk listener). Those that keep files come first, in the order
        they registered: a desk that shows a file finds it kept."""
        if getattr(desk, "keeps_files", False):
            at = sum(1 for d in self._desks if getattr(d, "keeps_files", False))
            self._desks.insert(at, desk)
        else:
            self._desks.append(desk)

    def live(self, channel: str) -> bool:
        """Is `channel` sent from this process (`dialogs.ports.SendsOnCommit`)?"""
        return bool(self._desks) if channel == DESK else channel in self._senders

    @property
    def channels(self) -> list[str]:
        return [*self._senders, *([DESK] if self._desks else [])]

    async def deliver(self, messages: Iterable[Outbound], *, wait: bool = False) -> None:
        """Make the messages durable (if they are not yet) and send what can be sent now: per
        chat, everything undelivered up to and including these, oldest first. A chat another
        task of this process is sending to is left to it (it sends these too, in order). With
        `wait`, an older message another process holds is waited for (up to its lease);
        without, what it holds up is left to the outbox worker, which keeps the order.
        When one of them is critical (danger), the chats are sent to side by side: the
        counsellors' alert does not wait for the child's contacts to be sent and marked."""
        batch = list(messages)
        if self.db is None:  # no outbox (tests, tools): straight to the channels live here
            for message in batch:
                await self._send_one(message)
            return
        batch = await self._persist(batch)
        for m in batch:
            if self._targets(m):
                # The messages in hand keep their `meta` (desk flags), which the row has not.
                key = (m.to.channel, m.to.chat_id)
                self._known.setdefault(key, {})[int(m.meta["outbox_id"])] = m
        keys = list(dict.fromkeys((m.to.channel, m.to.chat_id)
                                  for m in batch if self._targets(m)))
        if len(keys) > 1 and any(m.critical for m in batch):
            results = await asyncio.gather(*(self._sender_of(key, wait=wait) for key in keys),
                                           return_exceptions=True)
            for result in results:
                if isinstance(result, BaseException):
                    raise result
            return
        for key in keys:
            await self._sender_of(key, wait=wait)

    async def _sender_of(self, key: tuple[str, str], *, wait: bool) -> None:
        """Be the chat's one sender in this process, or leave the work to the one there is."""
        if key in self._sending:
            self._wanted.add(key)  # it looks again before it lets go
            return
        self._sending.add(key)
        try:
            while True:
                self._wanted.discard(key)
                await self._deliver_chat(*key, wait=wait)
                if key not in self._wanted:
                    break
        finally:
            self._sending.discard(key)
            # What is left goes from the outbox as written; claims taken at write are given
            # back, so that it need not wait out the lease.
            left = self._known.pop(key, {})
            mine = [i for i, m in left.items() if m.meta.get(CLAIMED)]
            if mine:
                await self._release(mine)

    async def _deliver_chat(self, channel: str, chat_id: str, *, wait: bool) -> None:
        """Send the chat's undelivered messages in order until one cannot go now."""
        assert self.db is not None
        known = self._known.get((channel, chat_id), {})
        if await self._in_turn(known):
            return
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.lease.total_seconds() + 1.0
        waits = 0
        while True:
            async with self.db.session() as s:
                rows = list(await Repos(s).outbox.pending(channel, chat_id, limit=20))
            step = await self._send_rows(rows, known)
            if step == "done" and len(rows) == 20:
                continue  # a long backlog: the next twenty
            if step != "held" or not wait or loop.time() > give_up:
                return  # sent all; or the rest waits for its turn (the worker sends it)
            await asyncio.sleep(HOLD_POLL[min(waits, len(HOLD_POLL) - 1)])
            waits += 1

    async def _in_turn(self, known: dict[int, Outbound]) -> bool:
        """The common case: nothing older waits, so the messages in hand go one by one, each
        claimed only if its turn has come. True when the chat is done (all sent, or one failed
        and the worker retries it in order); False when the outbox must be read."""
        assert self.db is not None
        if not known:
            # Nothing in hand: the messages this call was made for were taken by the chat's
            # previous sender as it let go (and their claims given back): they are in the
            # outbox, which must be read, or they would wait for the outbox worker.
            return False
        if sum(mergeable(m) for m in known.values()) > 1:
            return False  # a busy topic: its lines go together from the outbox
        for outbox_id in sorted(known):
            message = known[outbox_id]
            targets = self._targets(message)
            if not message.meta.get(CLAIMED):  # else written claimed for us: its turn is now
                async with self.db.session() as s:
                    now = utcnow()
                    if not await Repos(s).outbox.claim_in_turn(outbox_id, now, now + self.lease):
                        return False  # an older one waits (or someone has this one): read
            del known[outbox_id]
            sent = await self._send_holding(message, targets, outbox_id)
            if not sent and not await self._given_up(outbox_id):
                return True  # a temporary failure: the worker sends it, then the rest
        return True

    async def _send_rows(self, rows: Sequence[OutboxMessage], known: dict[int, Outbound]) -> str:
        """Send rows of one chat in order: "done", "held" (the next one is another sender's
        now) or "later" (the next one waits for its retry, or failed just now)."""
        now = utcnow()
        index = 0
        while index < len(rows):
            row = rows[index]
            waits = self._waits(row, known, now)
            if waits is not None:
                return waits
            mine = self._mine(row, known)
            run = self._mergeable_run(rows[index:], known, now)
            if len(run) > 1:
                step = await self._send_run(run, known)
                if step != "done":
                    return step
                index += len(run)
                continue
            index += 1
            message = known.pop(row.id, None) or self._from_row(row)
            if mine:
                sent: bool | None = await self._send_holding(
                    message, self._targets(message), row.id
                )
            else:
                sent = await self._send_one(message)
            if sent is None:
                return "held"  # claimed by someone else since we read it
            if not sent and not await self._given_up(row.id):
                return "later"  # a temporary failure: the worker retries it, then the rest
        return "done"

    @staticmethod
    def _mine(row: OutboxMessage, known: dict[int, Outbound]) -> bool:
        """Was the row written claimed for this sender (its message in hand says so)?"""
        in_hand = known.get(row.id)
        return in_hand is not None and bool(in_hand.meta.get(CLAIMED))

    def _waits(self, row: OutboxMessage, known: dict[int, Outbound], now: datetime) -> str | None:
        """Why a row cannot go now: "held" (another sender's claim; not one written claimed
        for us), "later" (waiting for its retry), or None (it can)."""
        held = row.claimed_until is not None and row.claimed_until > now
        if held and not self._mine(row, known):
            return "held"
        if row.next_attempt_at is not None and row.next_attempt_at > now:
            return "later"
        return None

    @staticmethod
    def _from_row(row: OutboxMessage) -> Outbound:
        """The message a row holds, with its flags for the desk (danger, check-in, paging:
        the counsellor must see them however the notice is sent) and the row's id."""
        message = outbound_from_dict(dict(row.body))
        return replace(message, meta={**message.meta, "outbox_id": str(row.id)})

    def _mergeable_run(
        self, rows: Sequence[OutboxMessage], known: dict[int, Outbound], now: datetime
    ) -> list[tuple[OutboxMessage, Outbound]]:
        """The desk lines at the head of `rows` that can go out together: sendable now, each
        a line the child wrote."""
        run: list[tuple[OutboxMessage, Outbound]] = []
        for row in rows[:DESK_BATCH]:
            if self._waits(row, known, now) is not None:
                break
            message = known.get(row.id) or self._from_row(row)
            if not mergeable(message):
                break
            run.append((row, message))
        return run

    async def _send_run(
        self, run: list[tuple[OutboxMessage, Outbound]], known: dict[int, Outbound]
    ) -> str:
        """Send a run of a case's desk lines as one batch: each claimed in order (the run ends
        at the first another sender holds), then handed to every desk together. "done", or
        "held" / "later" as `_send_rows` says."""
        assert self.db is not None
        claimed: list[tuple[int, Outbound]] = []
        async with self.db.session() as s:  # the claims, in one transaction
            now = utcnow()
            for row, message in run:
                if not message.meta.get(CLAIMED) and not await Repos(s).outbox.claim(
                    row.id, now, now + self.lease
                ):
                    break  # someone else has it now: the rest waits its turn
                known.pop(row.id, None)
                claimed.append((row.id, message))
        if not claimed:
            return "held"
        ids = [outbox_id for outbox_id, _ in claimed]
        messages = [message for _, message in claimed]
        self._claimed.update(ids)
        self._keep_leases()

        async def send() -> None:
            for target in self._targets(messages[0]):
                batch = getattr(target, "send_batch", None)
                if batch is not None:
                    await batch(messages)
                else:
                    for message in messages:
                        await target.send(message)

        failure = await self._send_then_mark(send, ids)
        if failure is not None:
            self._claimed.difference_update(ids)
            # Every line of the batch is tried again, in order, by the outbox worker.
            await self._release(ids[1:])
            await self._send_failed(messages[0], ids[0], failure)
            return "later"
        return "done" if len(claimed) == len(run) else "held"

    async def _send_then_mark(
        self, send: Callable[[], Awaitable[None]], ids: list[int]
    ) -> Exception | None:
        """`send`, then the outbox rows `ids` marked delivered and their claims settled: the
        send's failure, or None (a failed mark raises). Cancelling the caller (shutdown) does
        not cut it short, as the request may already be with the platform: `release` gives it
        a moment to end before it gives the claims still listed back."""
        task = asyncio.ensure_future(self._sent_and_marked(send, ids))
        self._in_flight.add(task)
        task.add_done_callback(self._settled)
        return await asyncio.shield(task)

    async def _sent_and_marked(
        self, send: Callable[[], Awaitable[None]], ids: list[int]
    ) -> Exception | None:
        try:
            await send()
        except Exception as exc:  # a refusal, or a transport bug: neither loses the message
            return exc
        await asyncio.gather(*(self._mark_delivered(i) for i in ids))
        self._claimed.difference_update(ids)
        return None

    def _settled(self, task: asyncio.Task[Exception | None]) -> None:
        """A send in flight ended: unlisted, and its exception taken (its caller may be gone,
        cancelled by shutdown) so that none goes unretrieved."""
        self._in_flight.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.debug("a send ended with %s after its caller left",
                      type(task.exception()).__name__)

    def _keep_leases(self) -> None:
        if self._keeper is None or self._keeper.done():
            self._keeper = asyncio.create_task(self._renew_leases(), name="outbox-leases")

    async def _renew_leases(self) -> None:
        """While claims are in hand: every third of the lease, extend those still held. Ends
        when none are left (the next claim starts it again)."""
        assert self.db is not None
        every = self.lease.total_seconds() / 3
        while True:
            await asyncio.sleep(every)
            held = sorted(self._claimed)
            if not held:
                return
            try:
                async with self.db.session() as s:
                    await Repos(s).outbox.extend_claims(held, utcnow() + self.lease)
            except Exception as exc:  # the database is away: the leases run out on their own
                log.warning("could not renew %d outbox claims (%s)", len(held),
                            type(exc).__name__)

    async def _release(self, outbox_ids: list[int]) -> None:
        """Give back claims taken at write that this sender will not use now."""
        assert self.db is not None
        try:
            async with self.db.session() as s:
                await Repos(s).outbox.release(outbox_ids)
        except Exception as exc:  # the lease runs out on its own
            log.warning("could not give back %d outbox claims (%s)", len(outbox_ids),
                        type(exc).__name__)

    async def _given_up(self, outbox_id: int) -> bool:
        """Did the message fail for good (it no longer holds its chat's later messages)?"""
        assert self.db is not None
        async with self.db.session() as s:
            row = await Repos(s).outbox.get(outbox_id)
        return row is None or row.failed_at is not None

    async def send_now(self, messages: Iterable[Outbound]) -> int:
        """Send messages straight to their channels, without the outbox: for what is said from
        memory while the database is away (the emergency contacts). Best effort: a failure is
        logged, never raised. Returns how many were delivered."""
        delivered = 0
        for message in messages:
            targets = self._targets(message)
            if not targets:
                log.warning("no channel live here for a message sent from memory (case %s)",
                            message.case_id)
                continue
            # No outbox id: a failure is counted and logged, nothing is written anywhere.
            delivered += await self._send_claimed(message, targets, None)
        return delivered

    async def _persist(self, messages: Sequence[Outbound]) -> list[Outbound]:
        assert self.db is not None
        fresh = [m for m in messages if "outbox_id" not in m.meta]
        if not fresh:
            return list(messages)
        async with self.db.session() as s:
            written = await write_outbox(Repos(s).outbox, fresh, self)
        by_id = {id(m): w for m, w in zip(fresh, written, strict=True)}
        return [by_id.get(id(m), m) for m in messages]

    def _targets(self, message: Outbound) -> list[Sender]:
        if message.to.channel == DESK:
            return list(self._desks)
        sender = self._senders.get(message.to.channel)
        return [sender] if sender is not None else []

    async def _send_one(self, message: Outbound) -> bool | None:
        """Send one message if its channel is live here: True when delivered, False when it
        failed (or has no channel here), None when someone else holds or sent it."""
        targets = self._targets(message)
        if not targets:
            return False  # another process (the console chat, another worker) will send it
        outbox_id = int(message.meta["outbox_id"]) if "outbox_id" in message.meta else None
        if outbox_id is not None and self.db is not None:
            async with self.db.session() as s:
                now = utcnow()
                if not await Repos(s).outbox.claim(outbox_id, now, now + self.lease):
                    return None  # someone else is sending it, or it was sent
        return await self._send_holding(message, targets, outbox_id)

    async def _send_holding(
        self, message: Outbound, targets: list[Sender], outbox_id: int | None
    ) -> bool:
        """Send a message whose outbox claim is ours, listing the claim meanwhile so that a
        shutdown can release it (a send cut short by shutdown keeps it listed)."""
        held = outbox_id is not None and self.db is not None
        if held:
            self._claimed.add(outbox_id or 0)
            self._keep_leases()
        try:
            sent = await self._send_claimed(message, targets, outbox_id)
        except asyncio.CancelledError:
            raise  # cut short by shutdown: the claim stays listed for `release`
        except BaseException:
            self._claimed.discard(outbox_id or 0)
            raise
        self._claimed.discard(outbox_id or 0)
        return sent

    async def _send_claimed(
        self, message: Outbound, targets: list[Sender], outbox_id: int | None
    ) -> bool:
        pacer = self._pacers.get(message.to.channel)

        async def send() -> None:
            for target in targets:
                await target.send(message)

        marked = [outbox_id] if outbox_id is not None and self.db is not None else []
        failure: Exception | None = None
        try:
            if pacer is not None:
                # Danger replies and critical alerts go ahead of everything.
                await pacer.wait(message.to.chat_id, urgent=message.critical)
        except Exception as exc:
            failure = exc
        else:
            failure = await self._send_then_mark(send, marked)
        if failure is not None:
            await self._send_failed(message, outbox_id, failure)
            return False
        return True

    async def _mark_delivered(self, outbox_id: int) -> None:
        """Mark a sent message delivered, in one statement with every other sender's marks
        of the moment (a group commit): returns once the batch it joined is written, so the
        chat's next message is never written while this one still looks undelivered.
        In the danger lane it is marked on its own, in that lane: the batch's writer may be
        an ordinary sender's task, queued for the database behind every ordinary turn."""
        if in_danger_lane():
            assert self.db is not None
            async with self.db.lone() as on:
                await mark_delivered_many(on, [outbox_id])
            return
        self._to_mark.append(outbox_id)
        if self._marked is None:
            self._marked = asyncio.get_running_loop().create_future()
        batch = self._marked
        if self._marker is None or self._marker.done():
            self._marker = asyncio.create_task(self._write_marks(), name="outbox-marks")
        await asyncio.shield(batch)

    async def _write_marks(self) -> None:
        assert self.db is not None
        while self._to_mark:
            ids, batch = self._to_mark, self._marked
            self._to_mark, self._marked = [], None
            assert batch is not None
            try:
                async with self.db.lone() as on:
                    await mark_delivered_many(on, ids)
            except BaseException as exc:
                # Unmarked rows are sent again once their claim runs out (as after a crash
                # between a send and its mark); every waiter of the batch hears of it.
                if not batch.done():
                    batch.set_exception(exc if isinstance(exc, Exception) else
                                        RuntimeError("marking delivered was cancelled"))
                    batch.exception()  # retrieved here too: a waiter may be gone
                if not isinstance(exc, Exception):
                    raise
            else:
                if not batch.done():
                    batch.set_result(None)

    async def _send_failed(
        self, message: Outbound, outbox_id: int | None, exc: Exception
    ) -> None:
        """A send raised (call from its `except`): counted, and tried again later or given up
        (`_failed`). Anything but a `DeliveryError` is a transport bug: logged, and retried."""
        if isinstance(exc, DeliveryError):
            metrics.SEND_ERRORS.labels(message.to.channel, exc.kind).inc()
            await self._failed(message, outbox_id, exc)
            return
        metrics.SEND_ERRORS.labels(message.to.channel, "unexpected").inc()
        log.error("send failed (case %s, outbox %s)", message.case_id, outbox_id, exc_info=exc)
        await self._failed(message, outbox_id, DeliveryError(type(exc).__name__))

    async def _failed(self, message: Outbound, outbox_id: int | None, exc: DeliveryError) -> None:
        if outbox_id is None or self.db is None:
            log.error(
                "send failed with no outbox to retry from (case %s): %s", message.case_id, exc.kind
            )
            return
        notice: Outbound | None = None
        async with self.db.session() as s:
            repos = Repos(s)
            row = await repos.outbox.get(outbox_id)
            attempts = row.attempts if row else 1
            if exc.permanent:
                await repos.outbox.mark_failed(outbox_id, exc.kind)
                log.warning("undeliverable (case %s): %s", message.case_id, exc.kind)
                if message.to.channel != DESK:
                    await repos.users.mark_unreachable(message.to.channel, message.to.chat_id)
                    if message.case_id is not None:
                        notice = Outbound(
                            to=Address(DESK, str(message.case_id)),
                            text=exc.kind,
                            case_id=message.case_id,
                            desk_event=DeskEvent.UNREACHABLE,
                        )
            else:
                delay = exc.retry_after or min(MAX_BACKOFF, 2.0 ** min(attempts, 9))
                await repos.outbox.reschedule(
                    outbox_id, utcnow() + timedelta(seconds=delay), exc.kind
                )
                log.info("send to retry in %.0fs (case %s): %s", delay, message.case_id, exc.kind)
        if notice is not None:
            await self.deliver([notice])

    async def flush_due(self) -> int:
        """Send every due message of the channels live here, oldest first, in order per chat.
        Returns how many were delivered."""
        if self.db is None or not self.channels:
            return 0
        async with self.db.session() as s:
            rows = list(await Repos(s).outbox.due(self.channels, utcnow()))
        blocked: set[tuple[str, str]] = set()
        delivered = 0
        for row in rows:
            if self._stopping:
                break  # shutting down: what is left is due for the next pass (or worker)
            key = (row.channel, row.chat_id)
            if key in blocked:
                continue
            async with self.db.session() as s:
                if await Repos(s).outbox.earlier_pending(row):
                    blocked.add(key)
                    continue
            message = self._from_row(row)
            chat = (message.to.channel, message.to.chat_id)
            if chat in self._sending:
                blocked.add(key)  # its sender in this process has it in hand
                continue
            self._sending.add(chat)
            try:
                sent = await self._send_one(message)
            finally:
                self._sending.discard(chat)
            if sent:
                delivered += 1
            else:
                blocked.add(key)
        return delivered

    def stop(self) -> None:
        """Shutting down: the worker's pass ends after the message in hand."""
        self._stopping = True

    async def release(self, in_flight: float = IN_FLIGHT_GRACE) -> int:
        """Give back the claims of sends that were cut short (shutdown after the grace period):
        the rows are due again at once for another worker or the next start. Returns how many.
        Sends already under way get up to `in_flight` seconds to end first (and are marked)."""
        if self._in_flight:
            _, late = await asyncio.wait(set(self._in_flight), timeout=in_flight)
            for task in late:
                task.cancel()  # their claims are given back: a platform may see them twice
        if self._marker is not None and not self._marker.done():
            with contextlib.suppress(Exception):
                await asyncio.shield(self._marker)  # sends already made are marked first
        if self._keeper is not None:
            self._keeper.cancel()
        claimed, self._claimed = sorted(self._claimed), set()
        if not claimed or self.db is None:
            return 0
        async with self.db.session() as s:
            repos = Repos(s)
            for outbox_id in claimed:
                await repos.outbox.reschedule(outbox_id, utcnow(), "released at shutdown")
        log.warning("released %d outbox claims at shutdown", len(claimed))
        return len(claimed)

    async def run_worker(self, stop: asyncio.Event, interval: float = 1.0) -> None:
        """Retry what failed and send what other processes left, until `stop` is set. Each
        pass first gives back the claims of workers that died (`release_dead`, set by the app
        once it joined the workers), so their unsent replies are due at once."""
        while not stop.is_set():
            try:
                if self.release_dead is not None:
                    await self.release_dead()
                await self.flush_due()
            except Exception:  # the worker must outlive a database hiccup
                log.exception("outbox worker pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)

