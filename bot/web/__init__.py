"""The counsellors' web console: server-rendered pages (Jinja2), live queue and chat (server-sent
events), sign-in with argon2 passwords and optional TOTP, served by aiohttp.

    web_app = build_console(app)              # the aiohttp application (tests use this)
    mount_web_console(bot_http_app, app)      # `helpline run`: up and down with the bot's server
    runner = await start_console(app)         # serve it at WEB_HOST:WEB_PORT
    await run_console(app)                    # serve it until cancelled (`helpline web`)

The console always has its own listener at WEB_HOST:WEB_PORT (by default 127.0.0.1:8090, for a
TLS proxy in front), never the public one of the Telegram webhook and the health checks.

Modules: `auth` (passwords, sessions, CSRF, middlewares), `views` (pages, actions, streams),
`live` (the queue feed, server-sent events, the alert sound), `inbox` (a counsellor's
conversations with unread counts and previews), `board` (supervisors' figures and the live
wallboard), `pages` (rendering pages and the fragments live updates patch in), `state` (what
handlers reach through the request), `texts.yaml` (Russian and English).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from aiohttp import web

from bot.app import App
from bot.http import APP_KEY, healthz, metrics_view, readyz
from bot.web.auth import console_middlewares
from bot.web.live import DeskNotifier, QueueFeed, alert_wav
from bot.web.state import CONSOLE, STATIC, TEXTS, Console, template_env
from bot.web.views import add_routes
from dialogs.catalogue import Catalogue

log = logging.getLogger(__name__)


def build_console(
    app: App,
    *,
    notify: bool = True,
    poll_seconds: float = 1.0,
    critical_target: timedelta | None = None,
) -> web.Application:
    """The console as an aiohttp application, with /healthz, /readyz and /metrics beside it.

    `notify`: register a desk sender that wakes the live queue when a desk notice is delivered
    in this process (where the channels run). `helpline web` alone passes False: it must not
    take desk notices meant for the desks of the main process.
    `critical_target`: how soon a critical case should be answered, for the wallboard's alarm
    (default: the setting WEB_CRITICAL_RESPONSE_MINUTES)."""
    feed = QueueFeed(app, interval=poll_seconds)
    minutes = app.settings.web_critical_response_minutes
    console = Console(
        app=app,
        texts=Catalogue(TEXTS),
        templates=template_env(),
        feed=feed,
        sound=alert_wav(),
        critical_target=(
            critical_target if critical_target is not None else timedelta(minutes=float(minutes))
        ),
    )
    web_app = web.Application(middlewares=console_middlewares(), client_max_size=1024 * 1024)
    web_app[CONSOLE] = console
    web_app[APP_KEY] = app
    web_app.router.add_get("/healthz", healthz)
    web_app.router.add_get("/readyz", readyz)
    web_app.router.add_get("/metrics", metrics_view)
    add_routes(web_app)
    web_app.router.add_static("/static/", STATIC, show_index=False, follow_symlinks=False)
    if notify:
        app.delivery.register_desk(DeskNotifier(feed))

    async def _stop(_: web.Application) -> None:
        console.stopping.set()  # ends the event streams, so shutdown does not wait on them
        await feed.close()

    web_app.on_shutdown.append(_stop)
    return web_app


async def start_console(app: App, *, notify: bool = True) -> web.AppRunner:
    """Serve the console at WEB_HOST:WEB_PORT; `await runner.cleanup()` to stop."""
    settings = app.settings
    runner = web.AppRunner(build_console(app, notify=notify), access_log=None,
                           shutdown_timeout=5.0)
    await runner.setup()
    site = web.TCPSite(runner, settings.web_host, settings.web_port)
    await site.start()
    log.info("web console on http://%s:%s", settings.web_host, settings.web_port)
    if not settings.web_cookie_secure:
        log.warning("WEB_COOKIE_SECURE is off: use this only on a trusted network or localhost")
    return runner


def mount_web_console(web_app: web.Application, app: App) -> None:
    """Run the console alongside the bot's HTTP server `web_app`: its own listener at
    WEB_HOST:WEB_PORT starts when `web_app` starts and stops when it is cleaned up."""
    settings = app.settings
    if (settings.web_host, settings.web_port) == (settings.webhook_host, settings.webhook_port):
        raise ValueError(
            "WEB_PORT must differ from WEBHOOK_PORT: the web console has its own listener"
        )
    runners: list[web.AppRunner] = []

    async def _start(_: web.Application) -> None:
        runners.append(await start_console(app))

    async def _stop(_: web.Application) -> None:
        while runners:
            await runners.pop().cleanup()

    web_app.on_startup.append(_start)
    web_app.on_cleanup.append(_stop)


async def run_console(app: App, *, notify: bool = True) -> None:
    """Serve the console until cancelled."""
    runner = await start_console(app, notify=notify)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


__all__ = ["build_console", "mount_web_console", "run_console", "start_console"]
