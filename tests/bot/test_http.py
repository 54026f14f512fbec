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
        await app.handle(Inbound(Channel.CONSOLE, "u", "c", text="привет", update_id="1"))
        await app.handle(Inbound(Channel.CONSOLE, "u", "c", text="хочу умереть", update_id="2"))
        body = await (await client.get("/metrics")).text()
        assert 'helpline_updates_total{channel="console"} 2.0' in body
        assert 'helpline_queue_length{risk="critical"} 1.0' in body
        assert "helpline_danger_signals_total 1.0" in body
        assert "хочу" not in body
    await app.close()
