"""Outbound messages to children and parents on Telegram: text in parts of 4096 characters, inline
keyboards, photos and documents by file id. A user who blocked the bot is marked unreachable and
the counsellor holding their case is told."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from aiogram import Bot
from aiogram.exceptions import TelegramForbiddenError
from aiogram.types import InlineKeyboardMarkup, Message

from bot.telegram.limits import MAX_CAPTION, CallbackDataTooLong, keyboard, split_text
from dialogs.messages import DESK, Address, Attachment, Channel, ContentKind, DeskEvent, Outbound
from storage.repositories import Repos

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)


class TelegramSender:
    """The `Sender` of the "telegram" channel."""

    def __init__(self, bot: Bot, app: App) -> None:
        self.bot = bot
        self.app = app

    async def send(self, message: Outbound) -> None:
        await self.deliver(message)

    async def deliver(self, message: Outbound) -> list[Message] | None:
        """Send one outbound message; the messages Telegram created, or None if the user has
        blocked the bot (then they are marked unreachable and the desk is told). Other Bot API
        errors propagate to the caller, which logs them with the case number."""
        try:
            return await self._send(message)
        except TelegramForbiddenError:
            await self.mark_unreachable(message.to.chat_id, message.case_id)
            return None

    async def _send(self, message: Outbound) -> list[Message]:
        chat_id = int(message.to.chat_id)
        text = message.text
        try:
            markup = keyboard(message.buttons)
        except CallbackDataTooLong:
            # An engine payload over 64 bytes would make Telegram refuse the whole message. Send
            # the options as numbered text instead: the engine accepts a typed number or label.
            log.error("button payload over 64 bytes (case %s): options sent as text",
                      message.case_id)
            markup, text = None, message.plain_text
        sent: list[Message] = []
        caption_used = False
        for index, att in enumerate(message.attachments):
            last = index == len(message.attachments) - 1
            caption = None
            if index == 0 and text and len(text) <= MAX_CAPTION:
                caption, caption_used = text, True
            sent.append(await self._send_file(
                chat_id, att, caption, markup if last and caption_used else None))
        if not caption_used and (text or markup is not None):
            parts = split_text(text) if text else ["…"]
            for index, part in enumerate(parts):
                last = index == len(parts) - 1
                sent.append(await self.bot.send_message(
                    chat_id, part, reply_markup=markup if last else None))
        return sent

    async def _send_file(
        self, chat_id: int, att: Attachment, caption: str | None,
        markup: InlineKeyboardMarkup | None,
    ) -> Message:
        # A Telegram file id works in any chat of the same bot: this is the "copy" of a file,
        # without a "forwarded from" header naming the sender.
        if att.kind is ContentKind.PHOTO:
            return await self.bot.send_photo(chat_id, att.file_ref, caption=caption,
                                             reply_markup=markup)
        return await self.bot.send_document(chat_id, att.file_ref, caption=caption,
                                            reply_markup=markup)

    async def mark_unreachable(self, chat_id: str, case_id: int | None) -> None:
        """The user blocked the bot (403): remember it, and tell whoever holds their case."""
        async with self.app.db.session() as session:
            repos = Repos(session)
            # Children write in private chats, where the chat id is the user id.
            user = await repos.users.find(str(Channel.TELEGRAM), chat_id)
            if user is not None:
                user.unreachable = True
                if case_id is None:
                    case = await repos.cases.open_for_user(user.id)
                    case_id = case.id if case is not None else None
        log.warning("a Telegram user has blocked the bot (case %s)", case_id)
        if case_id is None:
            return
        await self.app.delivery.deliver([Outbound(
            to=Address(DESK, str(case_id)), text="", case_id=case_id,
            desk_event=DeskEvent.UNREACHABLE,
        )])


def sent_ids(messages: Sequence[Message]) -> tuple[int, ...]:
    return tuple(m.message_id for m in messages)
