"""Webhook mode: an aiohttp server that takes Telegram's POSTs, checking the secret token.

Telegram sends the secret given to setWebhook in the `X-Telegram-Bot-Api-Secret-Token` header
(https://core.telegram.org/bots/api#setwebhook); aiogram's `SimpleRequestHandler` compares it in
constant time and answers 401, handling nothing, when it is missing or wrong.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from urllib.parse import urlsplit

from aiogram import Bot, Dispatcher
from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
from aiohttp import web

from bot.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_PATH = "/telegram/webhook"


def webhook_path(url: str) -> str:
    return urlsplit(url).path or DEFAULT_PATH


def webhook_secret(settings: Settings) -> str:
    """The configured secret, or a random one for this process (fine for one worker; several
    workers behind a load balancer must share TELEGRAM_WEBHOOK_SECRET)."""
    if settings.telegram_webhook_secret is not None:
        return settings.telegram_webhook_secret.get_secret_value()
    log.warning("TELEGRAM_WEBHOOK_SECRET is not set: using a random secret for this process")
    return secrets.token_urlsafe(32)


def mount_webhook(application: web.Application, bot: Bot, dispatcher: Dispatcher, *,
                  secret: str, path: str) -> None:
    """Serve Telegram's POSTs at `path` on an existing aiohttp app (the bot's one server, which
    also answers /healthz, /readyz and /metrics)."""
    SimpleRequestHandler(
        dispatcher=dispatcher, bot=bot, secret_token=secret, handle_in_background=False
    ).register(application, path=path)
    setup_application(application, dispatcher, bot=bot)


def webhook_app(bot: Bot, dispatcher: Dispatcher, *, secret: str, path: str) -> web.Application:
    application = web.Application()
    # Not in the background: Telegram gets its 200 only once the update is handled (and recorded
    # by the engine), so a crash mid-handler makes Telegram send the update again; the engine's
    # update-id record ignores the repeat if it had been handled after all.
    SimpleRequestHandler(
        dispatcher=dispatcher, bot=bot, secret_token=secret, handle_in_background=False
    ).register(application, path=path)
    setup_application(application, dispatcher, bot=bot)
    return application


async def run_webhook(bot: Bot, dispatcher: Dispatcher, settings: Settings) -> None:
    """Set the webhook and serve it until cancelled."""
    assert settings.telegram_webhook_url is not None
    secret = webhook_secret(settings)
    path = webhook_path(settings.telegram_webhook_url)
    runner = web.AppRunner(webhook_app(bot, dispatcher, secret=secret, path=path))
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.webhook_host, settings.webhook_port)
        await site.start()
        await bot.set_webhook(
            settings.telegram_webhook_url,
            secret_token=secret,
            allowed_updates=dispatcher.resolve_used_update_types(),
        )
        log.info("Telegram webhook listening on %s:%s%s", settings.webhook_host,
                 settings.webhook_port, path)
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
