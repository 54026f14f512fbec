"""Outbound messages to children and parents on VK.

`bot.delivery.Delivery` writes every message to the durable outbox before it reaches this sender
(`Outbound.meta["outbox_id"]`) and retries it when the sender raises `DeliveryError`. Each
`messages.send` carries a `random_id` derived from that identity (the outbox row id, the chat,
the text) and the part's index: VK does not deliver a second message with a `random_id` it has
already seen (https://dev.vk.com/ru/method/messages.send), so a send retried after a lost answer,
or a long message retried after its first part went out, is not shown twice.

- Errors 6 (too many requests per second), 9 (flood control), 10 (internal error), HTTP errors and
  network failures: wait a little and call again; if it still fails, `DeliveryError` (temporary)
  hands the message back to the outbox worker.
- Errors 901/902 (the user does not allow messages from the community, or their privacy settings
  forbid it): `DeliveryError(permanent=True)`; the delivery marks the user unreachable and tells
  the counsellor holding the case (`DeskEvent.UNREACHABLE`).
- A refused keyboard: the message is sent again with its options as numbered text.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from dataclasses import dataclass
from typing import Any

import requests
from vk_api.exceptions import ApiError, ApiHttpError, VkApiError

from bot.delivery import DeliveryError
from bot.vk.inbound import ClientRegistry
from bot.vk.render import Part, render
from dialogs.messages import Channel, Outbound

log = logging.getLogger(__name__)

CHANNEL = str(Channel.VK)
RETRY_CODES = {6, 9, 10}
UNREACHABLE_CODES = {901, 902}


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Waits (seconds) before each in-line retry of one `messages.send`; after the last one the
    message goes back to the outbox worker, which retries it with a longer backoff."""

    delays: tuple[float, ...] = (0.5, 1.0, 2.0)


def random_id(identity: str, part: int, variant: int = 0) -> int:
    """A stable positive int32 for one part of one message."""
    key = f"{identity}|{variant}|{part}".encode()
    digest = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big")
    return digest % (2**31 - 1) + 1


def identity(message: Outbound) -> str:
    """What makes a message itself: its outbox row, chat and text. The text keeps ids apart if
    row ids ever start again (a new or restored database). A message that never went through the
    outbox gets a one-off identity: only the retries of this one send share it."""
    sequence = message.meta.get("outbox_id") or f"once-{uuid.uuid4().hex}"
    text = hashlib.blake2b(message.text.encode(), digest_size=8).hexdigest()
    return f"{sequence}|{message.to.chat_id}|{text}"


class _Refused(Exception):
    """VK refused one call for good (not a retryable error)."""

    def __init__(self, code: int | None, kind: str) -> None:
        super().__init__(kind)
        self.code = code
        self.kind = kind


class VkSender:
    """The `Sender` of the "vk" channel."""

    def __init__(
        self, vk: Any, clients: ClientRegistry, policy: RetryPolicy | None = None
    ) -> None:
        self.vk = vk
        self.clients = clients
        self.policy = policy or RetryPolicy()

    async def send(self, message: Outbound) -> None:
        """Send every part of the message, or raise `DeliveryError`."""
        if message.attachments:
            # Files from the desk would need an upload to VK first (its upload servers).
            log.error(
                "%d file(s) to a VK user not sent: not supported (case %s)",
                len(message.attachments),
                message.case_id,
            )
            if not message.text and not message.buttons:
                return
        client = self.clients.get(message.to.chat_id)
        parts = render(
            message, keyboard_ok=client.keyboard, inline=client.inline, callback=client.callback
        )
        ident = identity(message)
        variant = index = 0
        while index < len(parts):
            rid = random_id(ident, index, variant)
            try:
                await self._call_send(message.to.chat_id, parts[index], rid)
            except _Refused as refused:
                if refused.code in UNREACHABLE_CODES:
                    raise DeliveryError(refused.kind, permanent=True) from None
                if parts[index].keyboard is not None and not variant:
                    log.warning(
                        "VK refused a keyboard (%s): options sent as text (case %s)",
                        refused.kind,
                        message.case_id,
                    )
                    parts = render(message, keyboard_ok=False, inline=False, callback=False)
                    variant = 1
                    continue
                # Not the user's doing, and no retry here will change it: the outbox worker
                # tries again later, and the error is in the log and the outbox row meanwhile.
                log.error("VK refused a message: %s (case %s)", refused.kind, message.case_id)
                raise DeliveryError(refused.kind) from None
            index += 1

    async def _call_send(self, peer: str, part: Part, rid: int) -> None:
        values: dict[str, Any] = {"peer_id": int(peer), "random_id": rid, "message": part.text}
        if part.keyboard is not None:
            values["keyboard"] = part.keyboard
        kind = ""
        for wait in (0.0, *self.policy.delays):
            if wait:
                await asyncio.sleep(wait)
            try:
                await asyncio.to_thread(self.vk.method, "messages.send", values)
                return
            except ApiError as exc:
                kind = f"vk_{exc.code}"
                if exc.code not in RETRY_CODES:
                    raise _Refused(exc.code, kind) from None
            except ApiHttpError as exc:
                kind = f"http_{exc.response.status_code}"
            except requests.RequestException as exc:
                kind = type(exc).__name__
            except VkApiError as exc:  # a captcha request and the like: not for a community
                raise _Refused(None, type(exc).__name__) from None
            log.info("messages.send failed (%s); retrying", kind)
        raise DeliveryError(kind)
