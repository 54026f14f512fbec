"""PostgreSQL refusing connections for 10 seconds loses no child's message.

The real Telegram channel (polling the fake Bot API) reaches PostgreSQL through a small TCP proxy
in this test; for 10 seconds the proxy drops every connection and refuses new ones. Children keep
writing throughout. Afterwards every update is journalled and handled, and a child
who wrote danger words during the outage had the emergency contacts at once.
Skipped unless HELPLINE_TEST_DATABASE_URL is a PostgreSQL URL (`make test-pg`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from bot.app import build_app
from bot.telegram import run_telegram
from dialogs.ratelimit import RateLimiter
from knowledge_base import KnowledgeBase
from storage.db import Database
from storage.models import InboxUpdate, ProcessedUpdate, utcnow
from storage.repositories import Repos
from tests.production.conftest import create_database, drop_database, pg_base_url
from tests.telegram.conftest import make_settings
from tests.telegram.fake_api import FakeTelegram

CHILDREN = list(range(7101, 7111))
OUTAGE = 10.0
CONTACTS = "Спасибо, что рассказываешь"


class Proxy:
    """TCP to PostgreSQL, with an off switch that drops every link and refuses new ones."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.refusing = False
        self._links: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.refuse()
        if self._server is not None:
            self._server.close()

    def refuse(self) -> None:
        self.refusing = True
        for writer in list(self._links):
            writer.transport.abort()
        self._links.clear()

    def accept(self) -> None:
        self.refusing = False

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refusing:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._links.update({writer, up_writer})

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._links.difference_update({writer, up_writer})


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    url = await create_database(pg_base_url(), "outage")
    yield url
    await drop_database(url)


async def test_ten_seconds_without_the_database_lose_no_message(
    pg_url: str, tmp_path: Path, kb: KnowledgeBase
) -> None:
    real = Database(pg_url)
    await real.create_all()
    parsed = make_url(pg_url)
    proxy = Proxy(parsed.host or "127.0.0.1", parsed.port or 5432)
    await proxy.start()
    through = parsed.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    fake = FakeTelegram()
    await fake.start()
    app = build_app(make_settings(fake, tmp_path, database_url=through), kb=kb)
    app.engine.limiter = RateLimiter(burst=10_000, per_second=10_000)
    task = asyncio.create_task(run_telegram(app))
    sent = 0
    try:
        await fake.next_call("deleteWebhook")

        async def write(round_: int) -> None:
            nonlocal sent
            for child in CHILDREN:
                await fake.child_says(child, f"привет {round_}")
                sent += 1

        await write(0)
        await asyncio.sleep(0.5)
        proxy.refuse()
        down_at = time.monotonic()
        danger_child = CHILDREN[0]
        await fake.child_says(danger_child, "я хочу умереть")
        sent += 1
        told = await fake.text_to(danger_child, CONTACTS, wait=OUTAGE - 1)
        contacts_after = told.at - down_at
        for round_ in range(1, 4):
            await write(round_)
            await asyncio.sleep(2.0)
        await asyncio.sleep(max(0.0, OUTAGE - (time.monotonic() - down_at)))
        proxy.accept()
        # Everything sent is journalled once the database is back, and handled (a handled
        # entry is deleted and its update's id recorded).
        deadline = time.monotonic() + 60
        while True:
            async with real.session() as session:
                stored = (await session.execute(
                    select(func.count()).select_from(InboxUpdate))).scalar_one()
                stored += (await session.execute(
                    select(func.count()).select_from(ProcessedUpdate))).scalar_one()
            if stored >= sent or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        await app.drain()
        await app.recover(older_than=0)  # what the outage cut off mid-handling (the 30 s loop)
        async with real.session() as session:
            left = await Repos(session).inbox.unprocessed(utcnow())
        assert stored == sent, f"{sent - stored} of {sent} messages lost"
        assert list(left) == []
        assert contacts_after < 5.0
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await app.db.dispose()
        await real.dispose()
        await proxy.stop()
        await fake.stop()

