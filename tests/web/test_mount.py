"""`helpline run` mounts the console on the bot's HTTP server: it gets its own listener at
WEB_HOST:WEB_PORT, up and down with that server, and never the public webhook listener."""

from __future__ import annotations

import socket
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.http import build_web_app
from bot.web import mount_web_console


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_the_console_runs_beside_the_bots_server(make_app: Any) -> None:
    public, console = _free_port(), _free_port()
    app = make_app(webhook_host="127.0.0.1", webhook_port=public, web_port=console)
    web_app = build_web_app(app)
    mount_web_console(web_app, app)
    runner = web.AppRunner(web_app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", public).start()
    try:
        async with aiohttp.ClientSession() as http:
            assert (await http.get(f"http://127.0.0.1:{public}/healthz")).status == 200
            assert (await http.get(f"http://127.0.0.1:{public}/signin")).status == 404
            signin = await http.get(f"http://127.0.0.1:{console}/signin")
            assert signin.status == 200 and "csrf" in await signin.text()
    finally:
        await runner.cleanup()
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientConnectionError):
            await http.get(f"http://127.0.0.1:{console}/signin")


def test_the_console_refuses_the_webhook_listener(make_app: Any) -> None:
    app = make_app(webhook_host="127.0.0.1", webhook_port=8080, web_host="127.0.0.1",
                   web_port=8080)
    with pytest.raises(ValueError, match="WEB_PORT must differ"):
        mount_web_console(build_web_app(app), app)
