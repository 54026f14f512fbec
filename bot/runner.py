"""The main job's background work: the outbox worker, the daily retention purge, the desk's
minute sweep (re-announcing unanswered cases), and the HTTP server for health and metrics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.app import App
from dialogs.retention import purge

log = logging.getLogger(__name__)


async def _every(seconds: float, stop: asyncio.Event, job: Callable[[], Awaitable[object]],
                 name: str) -> None:
    while not stop.is_set():
        try:
            await job()
        except Exception:  # a failing pass is logged and tried again next time
            log.exception("%s failed", name)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=seconds)


async def _purge(app: App) -> None:
    counts = await purge(app.db, days=app.settings.retention_days)
    log.info("retention purge: %s", counts)


async def _sweep(app: App) -> None:
    sweep = getattr(app.desk, "sweep", None)
    if sweep is not None:
        await app.delivery.deliver(await sweep())


def background_tasks(app: App, stop: asyncio.Event) -> list[asyncio.Task[None]]:
    return [
        asyncio.create_task(app.delivery.run_worker(stop), name="outbox"),
        asyncio.create_task(_every(24 * 3600, stop, lambda: _purge(app), "purge"),
                            name="purge"),
        asyncio.create_task(_every(60, stop, lambda: _sweep(app), "sweep"), name="sweep"),
        asyncio.create_task(_every(30, stop, app.recover, "recover"), name="recover"),
    ]


async def start_http(app: App, web_app: web.Application) -> web.AppRunner:
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, app.settings.webhook_host, app.settings.webhook_port)
    await site.start()
    log.info("http server on %s:%s", app.settings.webhook_host, app.settings.webhook_port)
    return runner
