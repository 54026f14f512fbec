"""The children's and parents' side: private chats with the bot.

Every update becomes one `Inbound` (its update id lets the engine ignore a repeat). `App.accept`
journals it before returning, so Telegram is told it arrived only once it is stored (polling
acknowledges with the next getUpdates, the webhook with its answer); the engine then answers in
the background and the outbox delivers: to this chat, and desk notices to the staff.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from aiogram import Router
from aiogram.enums import ChatType
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import CallbackQuery, Message, Update

from bot.mailbox import taking_danger_only
from bot.telegram.inbound import callback_to_inbound, message_to_inbound

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)


async def _in_private_chat(message: Message) -> bool:
    return message.chat.type == ChatType.PRIVATE


async def _pressed_in_private_chat(query: CallbackQuery) -> bool:
    return query.message is not None and query.message.chat.type == ChatType.PRIVATE


def child_router(app: App) -> Router:
    router = Router(name="telegram-child")
    # Coroutine filters: aiogram runs a plain callable (a magic filter `F...` too) in a thread
    # (`asyncio.to_thread`); on a busy loop each hop cost an update's intake about 6 ms, and a
    # danger message behind fifty others in a getUpdates answer waited for all of them.
    router.message.filter(_in_private_chat)
    router.edited_message.filter(_in_private_chat)
    router.callback_query.filter(_pressed_in_private_chat)

    @router.message()
    async def on_message(message: Message, event_update: Update) -> None:
        inbound = message_to_inbound(message, event_update.update_id)
        if inbound is not None:
            await app.accept(inbound)

    @router.edited_message()
    async def on_edit(message: Message, event_update: Update) -> None:
        # A child who edits a message to add what happened is heard: the new text goes
        # through triage (and the transcript) like a new message.
        inbound = message_to_inbound(message, event_update.update_id, edited=True)
        if inbound is not None:
            await app.accept(inbound)

    @router.callback_query()
    async def on_button(query: CallbackQuery, event_update: Update) -> None:
        inbound = callback_to_inbound(query, event_update.update_id)
        if taking_danger_only() and inbound is not None:
            # Fed ahead of its turn (bot.telegram.polling): a press that is not danger is
            # refused here (Busy) and answered when its turn comes, not twice.
            await app.accept(inbound)
            app.chore(_answer(query))
            return
        # Answer always (it stops the button's spinner; a forged or stale payload still gets
        # the engine's "this button is no longer active"), beside intake: the round trip to
        # Telegram must not hold up the updates behind this one.
        app.chore(_answer(query))
        if inbound is not None:
            await app.accept(inbound)

    return router


async def _answer(query: CallbackQuery) -> None:
    try:
        await query.answer()
    except TelegramBadRequest as exc:  # too old to answer; the press still counts
        log.info("callback query not answered: %s", exc.message)
    except Exception as exc:  # network: the spinner stops by itself; the press still counts
        log.warning("callback query not answered (%s)", type(exc).__name__)


def fallback_router() -> Router:
    """Included last: a button press no other router took (an inline message, a chat the bot
    does not serve) is still answered, so no client is left with a spinning button."""
    router = Router(name="telegram-fallback")

    @router.callback_query()
    async def on_other_button(query: CallbackQuery) -> None:
        try:
            await query.answer()
        except TelegramBadRequest as exc:
            log.info("callback query not answered: %s", exc.message)

    return router
