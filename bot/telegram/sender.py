"""Outbound messages to children and parents on Telegram: text in parts of 4096 characters, inline
keyboards, photos and documents by file id.

`bot.delivery.Delivery` writes every message to the durable outbox before it reaches this sender
and retries it when the sender raises `DeliveryError`:

- 403 (the user blocked the bot, or deleted their account): `DeliveryError(permanent=True)`; the
  delivery marks the user unreachable and tells the counsellor holding the case
  (`DeskEvent.UNREACHABLE`, posted in the case's topic).
- 429: waited out and retried by `RetryAfterMiddleware` for every call; a longer ban, network and
  server errors, and other refusals: `DeliveryError` (temporary) for the outbox worker.
- A message in several parts that fails half-way resumes, when retried in this process, after
  the parts already sent (Telegram has no idempotency key to make a repeat harmless).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramRetryAfter,
)
from aiogram.types import InlineKeyboardMarkup, Message

from bot.delivery import DeliveryError
from bot.telegram.limits import MAX_CAPTION, CallbackDataTooLong, keyboard, split_text
from bot.telegram.relaymap import RelayMap, RelayTarget
from dialogs.messages import DESK, Address, Attachment, Channel, ContentKind, DeskEvent, Outbound
from storage.repositories import Repos

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)

CHANNEL = str(Channel.TELEGRAM)
# Set by the staff router on a counsellor's message to a child: the staff-group message it copies.
DESK_MESSAGE = "desk_message"
PROGRESS_SIZE = 10_000
# Refusals that mean the chat is gone for good, like a block.
GONE = ("chat not found", "user not found", "peer_id_invalid")


class TelegramSender:
    """The `Sender` of the "telegram" channel."""

    def __init__(self, bot: Bot, app: App) -> None:
        self.bot = bot
        self.app = app
        self.relayed = RelayMap()
        # Staff-group message id -> whether its copy to the child failed for good.
        self.undelivered: OrderedDict[int, bool] = OrderedDict()
        self._progress: OrderedDict[str, int] = OrderedDict()

    async def send(self, message: Outbound) -> None:
        """Send every part of the message, or raise `DeliveryError`."""
        try:
            sent = await self._send(message)
        except TelegramForbiddenError:
            self._failed(message, permanent=True)
            raise DeliveryError("tg_blocked", permanent=True) from None
        except TelegramRetryAfter as exc:
            self._failed(message, permanent=False)
            raise DeliveryError("tg_429", retry_after=exc.retry_after) from None
        except TelegramBadRequest as exc:
            gone = any(g in exc.message.lower() for g in GONE)
            self._failed(message, permanent=gone)
            if gone:
                raise DeliveryError("tg_chat_not_found", permanent=True) from None
            log.error("Telegram refused a message (case %s): %s", message.case_id, exc.message)
            raise DeliveryError("tg_bad_request") from None
        except TelegramAPIError as exc:  # network, 5xx and the rest: the outbox tries again
            self._failed(message, permanent=False)
            raise DeliveryError(f"tg_{type(exc).__name__}") from None
        desk_message = message.meta.get(DESK_MESSAGE)
        if desk_message and message.case_id is not None and sent:
            self.relayed.remember(int(desk_message), RelayTarget(
                message.case_id, message.to.chat_id, tuple(m.message_id for m in sent),
                media=bool(message.attachments)))

    def _failed(self, message: Outbound, *, permanent: bool) -> None:
        desk_message = message.meta.get(DESK_MESSAGE)
        if desk_message:
            self.undelivered[int(desk_message)] = permanent
            while len(self.undelivered) > PROGRESS_SIZE:
                self.undelivered.popitem(last=False)

    # ------------------------------------------------------------------ sending
    async def _send(self, message: Outbound) -> list[Message]:
        steps = self._steps(message)
        key = message.meta.get("outbox_id")
        done = self._progress.pop(key, 0) if key else 0
        sent: list[Message] = []
        for index, step in enumerate(steps):
            if index < done:
                continue
            try:
                sent.append(await step())
            except TelegramAPIError:
                if key and index:
                    self._progress[key] = index
                    while len(self._progress) > PROGRESS_SIZE:
                        self._progress.popitem(last=False)
                raise
        return sent

    def _steps(self, message: Outbound) -> list[Callable[[], Awaitable[Message]]]:
        """The Bot API calls one outbound message takes, in order."""
        chat_id = int(message.to.chat_id)
        text = message.text
        try:
            markup = keyboard(message.buttons)
        except CallbackDataTooLong:
            # A payload over 64 bytes would make Telegram refuse the whole message. Send the
            # options as numbered text instead: the engine accepts a typed number or label.
            log.error("button payload over 64 bytes (case %s): options sent as text",
                      message.case_id)
            markup, text = None, message.plain_text
        steps: list[Callable[[], Awaitable[Message]]] = []
        files = message.attachments
        caption = text if files and text and len(text) <= MAX_CAPTION else None
        for index, att in enumerate(files):
            last = index == len(files) - 1
            steps.append(self._file_step(
                chat_id, att, caption if index == 0 else None,
                markup if last and caption is not None else None))
        if caption is None and (text or markup is not None):
            parts = split_text(text) if text else ["…"]
            for index, part in enumerate(parts):
                last = index == len(parts) - 1
                steps.append(self._text_step(chat_id, part, markup if last else None))
        return steps

    def _text_step(self, chat_id: int, text: str,
                   markup: InlineKeyboardMarkup | None) -> Callable[[], Awaitable[Message]]:
        async def step() -> Message:
            return await self.bot.send_message(chat_id, text, reply_markup=markup)

        return step

    def _file_step(self, chat_id: int, att: Attachment, caption: str | None,
                   markup: InlineKeyboardMarkup | None) -> Callable[[], Awaitable[Message]]:
        # A Telegram file id works in any chat of the same bot: this is the "copy" of a file,
        # without a "forwarded from" header naming who sent it.
        async def step() -> Message:
            if att.kind is ContentKind.PHOTO:
                return await self.bot.send_photo(chat_id, att.file_ref, caption=caption,
                                                 reply_markup=markup)
            return await self.bot.send_document(chat_id, att.file_ref, caption=caption,
                                                reply_markup=markup)

        return step

    # ------------------------------------------------------------------ blocked users
    async def blocked(self, chat_id: str, case_id: int | None) -> None:
        """A 403 outside the outbox (an edit): mark the user unreachable and tell the desk."""
        async with self.app.db.session() as session:
            await Repos(session).users.mark_unreachable(CHANNEL, chat_id)
        log.warning("a Telegram user has blocked the bot (case %s)", case_id)
        if case_id is not None:
            await self.app.delivery.deliver([Outbound(
                to=Address(DESK, str(case_id)), text="tg_blocked", case_id=case_id,
                desk_event=DeskEvent.UNREACHABLE,
            )])


def sent_ids(messages: Sequence[Message]) -> tuple[int, ...]:
    return tuple(m.message_id for m in messages)
