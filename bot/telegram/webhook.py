"""Webhook mode: an aiohttp server that takes Telegram's POSTs, checking the secret token.

Telegram sends the secret given to setWebhook in the `X-Telegram-Bot-Api-Secret-Token` header
(https://core.telegram.org/bots/api#setwebhook); aiogram's `SimpleRequestHandler` compares it in
constant time and answers 401, handling nothing, when it is missing or wrong.

Telegram takes any 2xx as "delivered" and sends again after anything else, so
`JournalledRequestHandler` answers:

- 200 once the update is journalled (its chat's mailbox handles it, in order: `bot.mailbox`);
- 429 when this worker has as much work as it may take (`Busy`, nothing journalled): Telegram
  sends it again later and holds that chat's next updates meanwhile, instead of this process
  queueing work without bound;
- 503 when the journal write failed (the database is away): Telegram sends it again;
- 400 for a body that is not UTF-8 JSON or not a Telegram update (logged by update id at most,
  never with its content, and without a traceback);
- 500 when a handler failed unexpectedly (logged with the update id and the error's type).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from typing import Any
from urllib.parse import urlsplit

from aiogram import Bot, Dispatcher
from aiogram.types import Update
from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
from aiohttp import web
from pydantic import ValidationError

from bot.app import JournalUnavailable
from bot.mailbox import Busy
from bot.settings import Settings
from bot.telegram.polling import from_a_private_chat
from storage.lane import Lane, lane

log = logging.getLogger(__name__)

DEFAULT_PATH = "/telegram/webhook"


class JournalledRequestHandler(SimpleRequestHandler):
    """aiogram's handler for one bot, answering Telegram only once the update is safe."""

    def __init__(self, dispatcher: Dispatcher, bot: Bot, *, secret_token: str | None,
                 **data: Any) -> None:
        super().__init__(dispatcher=dispatcher, bot=bot, handle_in_background=False,
                         secret_token=secret_token, **data)

    async def close(self) -> None:
        """Nothing: aiogram's handler closes the bot's HTTP session when the server stops, which
        would cut off replies still being sent; the session's owner closes it after them."""

    async def handle(self, request: web.Request) -> web.Response:
        bot = await self.resolve_bot(request)
        if not self.verify_secret(request.headers.get("X-Telegram-Bot-Api-Secret-Token", ""), bot):
            return web.Response(body="Unauthorized", status=401)
        raw = await request.read()
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            log.warning("webhook: a body that is not UTF-8 JSON (%d bytes)", len(raw))
            return web.json_response({"ok": False, "description": "not UTF-8 JSON"}, status=400)
        # Logged as an id only: a stranger's body may put anything in it.
        update_id = body.get("update_id") if isinstance(body, dict) else None
        if not isinstance(update_id, int):
            update_id = None
        try:
            update = Update.model_validate(body, context={"bot": bot})
        except ValidationError:
            log.warning("webhook: update %s does not read as a Telegram update", update_id)
            return web.json_response({"ok": False, "description": "not an update"}, status=400)
        # A counsellor's action (the staff group) goes ahead of ordinary turns where they wait
        # (`storage.lane`); a child's update is journalled in the intake lane by `App.accept`.
        staff = lane(Lane.INTAKE) if not from_a_private_chat(body) else contextlib.nullcontext()
        try:
            with staff:
                result = await self.dispatcher.feed_update(bot, update, **self.data)
        except Busy:
            return web.json_response({"ok": False, "description": "busy, try again"},
                                     status=429, headers={"Retry-After": "1"})
        except JournalUnavailable:
            # Not journalled: Telegram must send it again (a child in danger has already been
            # given the contacts from memory).
            return web.json_response({"ok": False, "description": "try again"}, status=503)
        except Exception as exc:
            log.error("webhook: update %s failed (%s)", update_id, type(exc).__name__,
                      exc_info=log.isEnabledFor(logging.DEBUG))
            return web.json_response({"ok": False, "description": "failed"}, status=500)
        return web.Response(body=self._build_response_writer(bot=bot, result=result))

    __call__ = handle


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
    JournalledRequestHandler(dispatcher, bot, secret_token=secret).register(application, path=path)
    setup_application(application, dispatcher, bot=bot)


def webhook_app(bot: Bot, dispatcher: Dispatcher, *, secret: str, path: str) -> web.Application:
    application = web.Application()
    # Not in the background: Telegram gets its 200 only once the update is journalled, so a
    # crash before that makes Telegram send the update again; the journal ignores a repeat.
    JournalledRequestHandler(dispatcher, bot, secret_token=secret).register(application, path=path)
    setup_application(application, dispatcher, bot=bot)
    return application


async def run_webhook(bot: Bot, dispatcher: Dispatcher, settings: Settings,
                      stop: asyncio.Event | None = None) -> None:
    """Set the webhook and serve it until `stop` is set or the task is cancelled."""
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
        await (stop or asyncio.Event()).wait()
    finally:
        await runner.cleanup()
