"""/healthz, /readyz and /metrics as a load balancer and Prometheus see them."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from bot.app import build_app
from bot.http import build_web_app
from bot.settings import Settings
from dialogs.messages import Channel, Inbound
from knowledge_base import KnowledgeBase
from storage.migrate import upgrade


async def test_health_ready_and_metrics(tmp_path: Path, kb: KnowledgeBase) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'h.db'}"
    app = build_app(Settings(database_url=url), kb=kb)
    async with TestClient(TestServer(build_web_app(app))) as client:
        assert (await client.get("/healthz")).status == 200
        not_ready = await client.get("/readyz")
        assert not_ready.status == 503, "no migrations yet"
        await asyncio.to_thread(upgrade, url)
        ready = await client.get("/readyz")
        assert ready.status == 200 and (await ready.json())["revision"] is not None
        before = await (await client.get("/metrics")).text()
        await app.handle(Inbound(Channel.CONSOLE, "u", "c", text="привет", update_id="1"))
        await app.handle(Inbound(Channel.CONSOLE, "u", "c", text="хочу умереть", update_id="2"))
        body = await (await client.get("/metrics")).text()
        # Counters live for the process (other tests count too): compare before and after.
        updates = 'helpline_updates_total{channel="console"}'
        assert _value(body, updates) - _value(before, updates) == 2
        danger = "helpline_danger_signals_total"
        assert _value(body, danger) - _value(before, danger) == 1
        assert _value(body, 'helpline_queue_length{risk="critical"}') == 1
        assert "хочу" not in body
    await app.close()


def _value(body: str, name: str) -> float:
    for line in body.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0
