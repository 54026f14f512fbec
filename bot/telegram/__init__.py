"""The Telegram channel: children and parents in private chats, counsellors in a forum supergroup.

    bot, dispatcher, channels = build_telegram(app)   # wiring only, for tests
    await run_telegram(app, stop)                     # polling, or a webhook if its URL is set

Modules: `inbound` (updates -> Inbound), `sender` (Outbound -> Bot API), `child` (private chats),
`desk` and `staff` (the staff forum), `files` (evidence downloads), `limits` (platform limits),
`setup` (command menus, staff group check), `polling` (long polling that confirms an update only
once it is journalled), `webhook` (aiohttp server).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram import methods as tg_methods
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.session.base import BaseSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.methods.base import Response
from aiohttp import web

from bot.app import App, send_buckets
from bot.evidence import EvidenceStore
from bot.pacing import Pacer, telegram_pacer
from bot.telegram.child import child_router, fallback_router
from bot.telegram.desk import TelegramDesk
from bot.telegram.deskjournal import StaffKeeper
from bot.telegram.files import EvidenceCollector
from bot.telegram.limits import RetryAfterMiddleware
from bot.telegram.polling import GetRawUpdates, Poller
from bot.telegram.sender import TelegramSender
from bot.telegram.setup import check_staff_chats, set_commands, stray_groups
from bot.telegram.staff import StaffHandlers, staff_router
from bot.telegram.webhook import mount_webhook, run_webhook, webhook_path, webhook_secret
from dialogs.catalogue import Catalogue
from dialogs.messages import Channel
from storage.repositories import Repos

log = logging.getLogger(__name__)

DESK_TEXTS = Path(__file__).parent / "desk_texts.yaml"

# aiogram parses every answer as `Response[method.__returning__]`, and pydantic keeps such
# parametrised models only in a weak cache: once the garbage collector freed one, the next call
# built it again (milliseconds of schema building; a tenth of the bot's CPU under load, see
# docs/benchmarks.md). Holding the models of the methods the bot calls keeps them cached.
_USED_METHODS = (
    tg_methods.GetUpdates, tg_methods.GetMe, tg_methods.SendMessage, tg_methods.SendPhoto,
    tg_methods.SendDocument, tg_methods.EditMessageText, tg_methods.EditMessageCaption,
    tg_methods.AnswerCallbackQuery, tg_methods.CreateForumTopic, tg_methods.EditForumTopic,
    tg_methods.CloseForumTopic, tg_methods.PinChatMessage, tg_methods.UnpinChatMessage,
    tg_methods.GetFile, tg_methods.SetMyCommands, tg_methods.DeleteWebhook,
    tg_methods.SetWebhook, tg_methods.GetChat, tg_methods.GetChatMember, GetRawUpdates,
)
_RESPONSE_MODELS: list[object] = []


def _keep_response_models() -> None:
    if not _RESPONSE_MODELS:
        _RESPONSE_MODELS.extend(
            Response[m.__returning__]  # type: ignore[name-defined]
            for m in _USED_METHODS
        )


@dataclass
class TelegramChannels:
    """What `build_telegram` made: the child channel's sender, the evidence collector, and the
    staff desk for every staff group (None without TELEGRAM_STAFF_CHAT_ID)."""

    app: App
    bot: Bot
    sender: TelegramSender
    evidence: EvidenceCollector
    desk: TelegramDesk | None
    staff: StaffHandlers | None
    desk_texts: Catalogue

    async def start_up(self) -> list[str]:
        """Command menus and the check of each staff group; returns the problems found (also
        logged)."""
        settings = self.app.settings
        chats = settings.telegram_staff_chat_ids
        await set_commands(self.bot, self.app.engine.catalogue, self.desk_texts,
                           settings.default_locale, chats)
        if not chats:
            log.warning("TELEGRAM_STAFF_CHAT_ID is not set: no Telegram desk; cases wait for "
                        "another desk (console)")
            return []
        problems = await check_staff_chats(self.bot, chats)
        async with self.app.db.session() as session:
            open_cases = await Repos(session).desk.open_cases_per_group()
        return problems + stray_groups(open_cases, chats)


def build_telegram(
    app: App, *, session: BaseSession | None = None, pacer: Pacer | None = None
) -> tuple[Bot, Dispatcher, TelegramChannels]:
    """Wire the bot, its routers and its senders into `app.delivery`. Call once per app.
    `session` replaces the HTTP session (tests), `pacer` Telegram's published send limits."""
    settings = app.settings
    if settings.telegram_bot_token is None:
        raise ValueError("TELEGRAM_BOT_TOKEN is not set")
    _keep_response_models()
    if session is None:
        session = AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_url))
    session.middleware(RetryAfterMiddleware())
    bot = Bot(settings.telegram_bot_token.get_secret_value(), session=session)

    sender = TelegramSender(bot, app)
    store = EvidenceStore(settings.evidence_dir, settings.evidence_max_bytes)
    evidence = EvidenceCollector(bot, app, store)
    desk_texts = Catalogue(DESK_TEXTS)
    dispatcher = Dispatcher()
    dispatcher.include_router(child_router(app))

    # One pacer for the children's chats and the staff group: one bot, one set of limits.
    pacer = pacer or telegram_pacer(send_buckets(app), paced=settings.send_pacing)
    app.delivery.register(str(Channel.TELEGRAM), sender, pacer=pacer)
    # Registered before the desk: files are stored by the time the card counts them.
    app.delivery.register_desk(evidence)
    desk: TelegramDesk | None = None
    staff: StaffHandlers | None = None
    if settings.telegram_staff_chat_ids:
        desk = TelegramDesk(
            bot, app, settings.telegram_staff_chat_ids, texts=desk_texts,
            locale=settings.default_locale, evidence_max_bytes=settings.evidence_max_bytes,
            pacer=pacer,
        )
        staff = StaffHandlers(app, desk, sender)
        dispatcher.include_router(staff_router(staff, settings.telegram_staff_chat_ids))
        app.delivery.register_desk(desk)
    dispatcher.include_router(fallback_router())
    channels = TelegramChannels(app=app, bot=bot, sender=sender, evidence=evidence, desk=desk,
                                staff=staff, desk_texts=desk_texts)
    return bot, dispatcher, channels


async def serve_telegram(
    app: App, web_app: web.Application, stop: asyncio.Event | None = None
) -> Coroutine[Any, Any, None]:
    """Prepare Telegram inside the bot's one HTTP server: register its sender and desks with
    `app.delivery`, check the staff group, mount the webhook route on `web_app` when
    TELEGRAM_WEBHOOK_URL is set. Returns the coroutine that runs the channel (polling, or setting
    the webhook and waiting) until `stop` is set or it is cancelled."""
    stop = stop or asyncio.Event()
    bot, dispatcher, channels = build_telegram(app)
    # Closed by `app.close()` once the last reply is sent, not when the channel stops taking
    # updates (that would cut off the replies still being sent).
    app.closers.append(bot.session.close)
    settings = app.settings
    # Telegram may be unreachable at start-up, or answer something undecodable: every call to
    # it below is retried inside the channel's own task, so VK and the web console run anyway.
    if settings.telegram_webhook_url:
        secret = webhook_secret(settings)
        path = webhook_path(settings.telegram_webhook_url)
        mount_webhook(web_app, bot, dispatcher, secret=secret, path=path)

        async def _webhook() -> None:
            await _until_done(stop, "the command menus and staff group check", channels.start_up)
            await _until_done(stop, "setting the webhook", lambda: bot.set_webhook(
                settings.telegram_webhook_url or "",
                secret_token=secret,
                allowed_updates=dispatcher.resolve_used_update_types(),
            ))
            await stop.wait()

        return _webhook()

    async def _polling() -> None:
        await _until_done(stop, "the command menus and staff group check", channels.start_up)
        # A webhook left from an earlier run would make getUpdates fail with 409.
        await _until_done(stop, "removing an old webhook",
                          lambda: bot.delete_webhook(drop_pending_updates=False))
        if not stop.is_set():
            await Poller(bot, dispatcher, room=app.mailbox.room,
                         full=lambda: app.mailbox.full, journal=app.batching,
                         staff_journal=StaffKeeper(app.db)).run(stop)

    return _polling()


# Waits between start-up attempts while Telegram cannot be reached (then every minute).
STARTUP_BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)


async def _until_done(
    stop: asyncio.Event, what: str, call: Callable[[], Awaitable[object]]
) -> None:
    """Call Telegram until it answers (or `stop`): a network error, a 5xx or an undecodable
    answer is logged (its type only: the text may quote the answer) and tried again."""
    attempt = 0
    while not stop.is_set():
        try:
            await call()
            if attempt:
                log.warning("Telegram answered %s after %d failed attempts", what, attempt)
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            delay = STARTUP_BACKOFF[min(attempt, len(STARTUP_BACKOFF) - 1)]
            attempt += 1
            log.error("Telegram start-up: %s failed (%s); trying again in %.0f s",
                      what, type(exc).__name__, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)


async def run_telegram(app: App, stop: asyncio.Event | None = None) -> None:
    """Run the Telegram channel until `stop` is set or it is cancelled: long polling by
    default, a webhook server when TELEGRAM_WEBHOOK_URL is set. Problems with the staff group
    are logged, never fatal."""
    bot, dispatcher, channels = build_telegram(app)
    await channels.start_up()
    if app.settings.telegram_webhook_url:
        try:
            await run_webhook(bot, dispatcher, app.settings, stop)
        finally:
            await bot.session.close()
        return
    try:
        # A webhook left from an earlier run would make getUpdates fail with 409.
        await bot.delete_webhook(drop_pending_updates=False)
        # Children's updates are only journalled (App.accept), a run of them in one
        # transaction: an update is confirmed to Telegram (the next getUpdates' offset) only
        # once it is stored.
        await Poller(bot, dispatcher, room=app.mailbox.room, full=lambda: app.mailbox.full,
                     journal=app.batching,
                     staff_journal=StaffKeeper(app.db)).run(stop or asyncio.Event())
    finally:
        await bot.session.close()


__all__ = ["TelegramChannels", "build_telegram", "run_telegram", "serve_telegram"]
