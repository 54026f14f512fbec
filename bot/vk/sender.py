"""Outbound messages to children and parents on VK, through a durable outbox.

Every outbound message is first written to the outbox, then sent; it is marked delivered only
when VK has accepted every part. Each `messages.send` carries a `random_id` derived from the
outbox row (its id and creation time), the peer and the part's index: VK does not deliver a
second message with a `random_id` it has seen (https://dev.vk.com/ru/method/messages.send), so a
send retried after a lost answer is not shown twice.

- Errors 6 (too many requests per second), 9 (flood control), 10 (internal error), HTTP errors
  and network failures: wait and retry; after the last retry the message stays queued and the
  sweep (or the child's next message) sends it later, in order.
- Errors 901/902 (the user does not allow messages from the community): the user is marked
  unreachable and the desk is told (`DeskEvent.UNREACHABLE`); the messages stay queued and go out
  once the child writes again, which allows the community to answer.
- Any other refusal: a message with a keyboard is sent again with its options as text; a message
  VK still refuses is counted as a failed attempt and the next one goes on.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import requests
from vk_api.exceptions import ApiError, ApiHttpError, VkApiError

from bot.vk.inbound import ClientRegistry
from bot.vk.render import Part, render
from dialogs.messages import (
    DESK,
    Address,
    Channel,
    DeskEvent,
    Outbound,
    outbound_from_dict,
    outbound_to_dict,
)
from storage.models import utcnow
from storage.repositories import Repos

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)

CHANNEL = str(Channel.VK)
RETRY_CODES = {6, 9, 10}
UNREACHABLE_CODES = {901, 902}


class Outcome(StrEnum):
    SENT = "sent"
    RETRY = "retry"
    UNREACHABLE = "unreachable"
    REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard a message is pushed. `delays`: waits before each in-line retry of one call.
    `max_attempts`: failed rounds after which a queued message is left for the operator.
    `stale_after`: a bot message (no case) not sent by then is dropped rather than sent late.
    `interval`: how often the outbox is swept."""

    delays: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0)
    max_attempts: int = 8
    stale_after: timedelta = timedelta(minutes=10)
    interval: float = 30.0


@dataclass(frozen=True, slots=True)
class Queued:
    """An outbox row, read out of its session."""

    id: int
    peer: str
    body: dict[str, Any]
    case_id: int | None
    attempts: int
    created_at: datetime


def random_id(row_id: int, created_at: datetime, peer: str, part: int, variant: int = 0) -> int:
    """A stable, positive int32 for one part of one outbox row. The creation time keeps ids
    apart if row ids ever start again (a new or restored database)."""
    stamp = created_at.astimezone(UTC).strftime("%Y%m%d%H%M%S%f")
    key = f"{row_id}|{stamp}|{peer}|{variant}|{part}".encode()
    digest = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big")
    return digest % (2**31 - 1) + 1


async def enqueue(app: App, message: Outbound) -> None:
    """Write one outbound message to the outbox, to be sent by the VK channel."""
    async with app.db.session() as session:
        await Repos(session).outbox.add(
            CHANNEL, message.to.chat_id, outbound_to_dict(message), message.case_id
        )


class VkOutboxSender:
    """The "vk" sender of a process that does not run the VK channel (`helpline desk` in a
    terminal, say): it only queues. The process running the channel sends what is queued
    within one sweep interval."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def send(self, message: Outbound) -> None:
        await enqueue(self.app, message)


class _PeerLocks:
    """One lock per peer, so a peer's messages go out one at a time and in order."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._users[key] = self._users.get(key, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._users[key] -= 1
            if not self._users[key]:
                del self._users[key]
                del self._locks[key]


class VkSender:
    """The `Sender` of the "vk" channel."""

    def __init__(
        self,
        app: App,
        vk: Any,
        clients: ClientRegistry,
        policy: RetryPolicy | None = None,
    ) -> None:
        self.app = app
        self.vk = vk
        self.clients = clients
        self.policy = policy or RetryPolicy()
        self._locks = _PeerLocks()
        self._backlog: set[str] = set()

    # ------------------------------------------------------------------ the Sender protocol
    async def send(self, message: Outbound) -> None:
        """Queue the message durably, then send what is queued for its peer, in order."""
        if message.attachments:
            # Files from the desk would need an upload to VK first (photos/docs upload servers).
            log.error(
                "%d file(s) to a VK user not sent: not supported (case %s)",
                len(message.attachments),
                message.case_id,
            )
            if not message.text and not message.buttons:
                return
        await enqueue(self.app, message)
        await self.flush(message.to.chat_id)

    # ------------------------------------------------------------------ the outbox
    def has_backlog(self, peer: str) -> bool:
        return peer in self._backlog

    async def flush(self, peer: str) -> None:
        """Send every queued message of `peer` in order; stop at one that must wait."""
        async with self._locks.hold(peer):
            for row in await self._queued(peer):
                if row.attempts >= self.policy.max_attempts:
                    continue  # given up; the row keeps its last error for the operator
                if row.case_id is None and utcnow() - row.created_at > self.policy.stale_after:
                    await self._failed(row, "stale: not sent late")
                    continue
                outcome, reason = await self._deliver(row)
                if outcome is Outcome.SENT:
                    async with self.app.db.session() as session:
                        await Repos(session).outbox.mark_delivered(row.id)
                    continue
                await self._failed(row, reason)
                if outcome is Outcome.UNREACHABLE:
                    self._backlog.add(peer)
                    await self._unreachable(row)
                    return
                if outcome is Outcome.RETRY:
                    log.warning(
                        "VK message queued for a later retry: %s (case %s)", reason, row.case_id
                    )
                    self._backlog.add(peer)
                    return
                log.error("VK refused a message: %s (case %s)", reason, row.case_id)
            self._backlog.discard(peer)

    async def sweep(self) -> int:
        """Retry queued messages of users who can be reached; returns how many peers."""
        async with self.app.db.session() as session:
            repos = Repos(session)
            rows = await repos.outbox.retryable(
                CHANNEL, max_attempts=self.policy.max_attempts, limit=500
            )
            peers = []
            for peer in dict.fromkeys(r.chat_id for r in rows):
                self._backlog.add(peer)
                user = await repos.users.find(CHANNEL, peer)
                if user is None or not user.unreachable:
                    peers.append(peer)
        for peer in peers:
            await self.flush(peer)
        return len(peers)

    async def _queued(self, peer: str) -> list[Queued]:
        async with self.app.db.session() as session:
            return [
                Queued(r.id, r.chat_id, dict(r.body), r.case_id, r.attempts, r.created_at)
                for r in await Repos(session).outbox.pending(CHANNEL, peer, limit=500)
            ]

    async def _failed(self, row: Queued, reason: str) -> None:
        async with self.app.db.session() as session:
            await Repos(session).outbox.record_failure(row.id, reason)

    # ------------------------------------------------------------------ VK calls
    async def _deliver(self, row: Queued) -> tuple[Outcome, str]:
        message = outbound_from_dict(row.body)
        client = self.clients.get(row.peer)
        parts = render(
            message, keyboard_ok=client.keyboard, inline=client.inline, callback=client.callback
        )
        variant = index = 0
        while index < len(parts):
            rid = random_id(row.id, row.created_at, row.peer, index, variant)
            outcome, reason = await self._call_send(row.peer, parts[index], rid)
            if outcome is Outcome.REFUSED and parts[index].keyboard is not None and not variant:
                log.warning(
                    "VK refused a keyboard (%s): options sent as text (case %s)",
                    reason,
                    row.case_id,
                )
                parts = render(message, keyboard_ok=False, inline=False, callback=False)
                variant = 1
                continue
            if outcome is not Outcome.SENT:
                return outcome, reason
            index += 1
        return Outcome.SENT, ""

    async def _call_send(self, peer: str, part: Part, rid: int) -> tuple[Outcome, str]:
        values: dict[str, Any] = {"peer_id": int(peer), "random_id": rid, "message": part.text}
        if part.keyboard is not None:
            values["keyboard"] = part.keyboard
        reason = ""
        for wait in (0.0, *self.policy.delays):
            if wait:
                await asyncio.sleep(wait)
            try:
                await asyncio.to_thread(self.vk.method, "messages.send", values)
                return Outcome.SENT, ""
            except ApiError as exc:
                reason = f"VK error {exc.code}"
                if exc.code in UNREACHABLE_CODES:
                    return Outcome.UNREACHABLE, reason
                if exc.code not in RETRY_CODES:
                    return Outcome.REFUSED, reason
            except ApiHttpError as exc:
                reason = f"HTTP {exc.response.status_code}"
            except requests.RequestException as exc:
                reason = type(exc).__name__
            except VkApiError as exc:  # a captcha request and the like: not for a community
                return Outcome.REFUSED, type(exc).__name__
            log.info("messages.send failed (%s); retrying", reason)
        return Outcome.RETRY, reason

    async def _unreachable(self, row: Queued) -> None:
        """The user does not allow messages from the community: remember it, tell the desk."""
        case_id = row.case_id
        async with self.app.db.session() as session:
            repos = Repos(session)
            user = await repos.users.find(CHANNEL, row.peer)
            if user is not None:
                user.unreachable = True
                if case_id is None:
                    case = await repos.cases.open_for_user(user.id)
                    case_id = case.id if case is not None else None
        log.warning("a VK user does not allow messages from the community (case %s)", case_id)
        if case_id is None:
            return
        await self.app.delivery.deliver(
            [
                Outbound(
                    to=Address(DESK, str(case_id)),
                    text="",
                    case_id=case_id,
                    desk_event=DeskEvent.UNREACHABLE,
                )
            ]
        )
