"""Telegram unreachable at start-up takes nothing down.

`helpline run` (in this process, against the fake Bot API) starts while Telegram fails every
start-up call for a while: the command menus, the staff group check and removing an old
webhook answer 502, and one answer is not JSON at all. Meanwhile the bot's HTTP server answers
/healthz and the web console is up; once Telegram answers again, a child who writes in danger
gets the emergency numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from bot.cli import _run
from storage.db import Database

from .conftest import make_settings
from .fake_api import FakeTelegram
from .test_startup_order import free_port


class Flaky(FakeTelegram):
    """Telegram answering garbage (not JSON) to the first call of a method."""

    def __init__(self) -> None:
        super().__init__()
        self.garbled: set[str] = {"setMyCommands"}

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if method in self.garbled:
            self.garbled.discard(method)
            return web.Response(text="<html>502 Bad Gateway</html>", status=200)
        return await super()._api(request)


async def test_telegram_failing_at_start_up_is_retried_and_nothing_else_stops(
    tmp_path: Path, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    if not db.is_sqlite:
        pytest.skip("the main job here runs on the test's SQLite file")
    caplog.set_level(logging.ERROR, logger="bot.telegram")
    fake = Flaky()
    await fake.start()
    for method in ("setMyCommands", "getChat", "deleteWebhook"):
        fake.fail(method, 502, "Bad Gateway", times=2)
    port, web_port = free_port(), free_port()
    settings = make_settings(fake, tmp_path, webhook_host="127.0.0.1", webhook_port=port,
                             web_enabled=True, web_port=web_port)
    run = asyncio.create_task(_run(settings, argparse.Namespace(user="local")))
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(100):
                try:
                    async with http.get(f"http://127.0.0.1:{port}/healthz") as answer:
                        if answer.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.1)
            else:
                pytest.fail("the bot's HTTP server never came up")
            async with http.get(f"http://127.0.0.1:{web_port}/signin") as page:
                assert page.status == 200, "the web console is up"
        assert not run.done(), "the main job is still running"
        await fake.child_says(9301, "я хочу умереть, больше не могу")
        told = await fake.text_to(9301, "112", wait=40.0)
        assert "8-800-2000-122" in told.text
        said = [r.getMessage() for r in caplog.records]
        failures = [m for m in said if "Telegram start-up" in m]
        assert failures, "each failed start-up call is logged"
        assert all("Bad Gateway" not in m and "<html>" not in m for m in failures), failures
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
        await fake.stop()
