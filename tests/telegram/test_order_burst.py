"""Per-chat order under a burst: each child's replies arrive in the order of their messages.

Children write faster than the bot answers, as Telegram's webhook lets them: a chat's next update
is POSTed as soon as the previous one is acknowledged. Many children at once, through the real
webhook handler, the real App, journal, outbox and delivery, into a fake Bot API whose network
adds a little jitter to every send. The engine's flow is replaced by an echo (same journal,
dedupe and outbox contract as the real engine) so that each reply names the message it answers.

With one worker on SQLite, and with three workers (three App objects, each with its own database
engine, Bot session and webhook server, like three processes) behind a random "load balancer" on
one PostgreSQL database (skipped when none is reachable). What the children see is counted:
reordered, duplicated and missing replies must all be 0.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import aiohttp
import pytest
from aiogram.client.telegram import TelegramAPIServer
from aiohttp import web

from bot.app import App, build_app
from bot.mailbox import MailboxLimits
from bot.pacing import Pacer
from bot.telegram import build_telegram
from bot.telegram.webhook import run_webhook
from dialogs.engine import DialogEngine
from dialogs.messages import Address, Inbound, Outbound, outbound_to_dict
from knowledge_base import KnowledgeBase
from storage.db import Database
from tests.conftest import fresh_database
from tests.production.conftest import own_pg_database

from .conftest import PlainHttpSession, make_settings
from .fake_api import FakeTelegram

SECRET = "order-secret_token"
HOOK = "https://bot.example.org/telegram/hook"
CHILDREN = list(range(8001, 8009))
MESSAGES = 10


class JitteryTelegram(FakeTelegram):
    """The fake Bot API behind a network that delays each send by up to 250 ms: a message sent
    later can arrive first, as on the real internet."""

    async def _api(self, request: web.Request) -> web.Response:
        if request.match_info["method"] == "sendMessage":
            await asyncio.sleep(random.uniform(0, 0.25))
        return await super()._api(request)


class EchoEngine(DialogEngine):
    """The real engine's contract (dedupe by update id, the journal entry closed and the reply
    put in the outbox in one transaction), with an echo instead of the flows."""

    async def handle(self, inbound: Inbound) -> list[Outbound]:
        await asyncio.sleep(random.uniform(0, 0.05))
        reply = Outbound(to=Address(str(inbound.channel), inbound.chat_id),
                         text=f"эхо {inbound.text}")
        async with self.db.unit() as repos:
            if inbound.update_id is not None:
                if not await repos.updates.claim(str(inbound.channel), inbound.update_id):
                    return []
                await repos.inbox.mark_handled(str(inbound.channel), inbound.update_id)
            row = await repos.outbox.add(reply.to.channel, reply.to.chat_id,
                                         outbound_to_dict(reply), None)
        return [replace(reply, meta={"outbox_id": str(row.id)})]


@dataclass
class Worker:
    app: App
    port: int
    task: asyncio.Task[None]
    stop: asyncio.Event


@dataclass
class Figures:
    reordered: int = 0
    duplicated: int = 0
    missing: int = 0
    children_affected: int = 0

    def __str__(self) -> str:
        return (f"reordered {self.reordered}, duplicated {self.duplicated}, missing "
                f"{self.missing} ({self.children_affected} of {len(CHILDREN)} children)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def start_worker(fake: FakeTelegram, tmp_path: Path, url: str, kb: KnowledgeBase,
                       limits: MailboxLimits | None = None) -> Worker:
    port = free_port()
    settings = make_settings(fake, tmp_path, database_url=url, telegram_webhook_url=HOOK,
                             telegram_webhook_secret=SECRET, webhook_host="127.0.0.1",
                             webhook_port=port, telegram_staff_chat_id=None)
    app = build_app(settings, db=Database(url), kb=kb, limits=limits)
    app.engine = EchoEngine(app.db, kb=kb)
    bot, dp, _ = build_telegram(
        app, session=PlainHttpSession(api=TelegramAPIServer.from_base(fake.url)),
        pacer=Pacer(global_rate=10_000, chat_rate=10_000))
    stop = asyncio.Event()
    task = asyncio.create_task(run_webhook(bot, dp, settings, stop))
    app.closers.append(bot.session.close)
    return Worker(app, port, task, stop)


async def stop_worker(worker: Worker) -> None:
    worker.stop.set()
    await asyncio.wait_for(worker.task, 10)
    await worker.app.close()


async def burst(fake: FakeTelegram, ports: list[int]) -> dict[int, int]:
    """Every child writes MESSAGES messages, each POSTed (to a random worker) as soon as the
    previous one was answered 200; anything else is sent again, as Telegram does. Returns the
    answers that were not 200, by status."""
    ids = itertools.count(50_000)
    refused: dict[int, int] = {}
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}

    async def child(http: aiohttp.ClientSession, user: int) -> None:
        for k in range(MESSAGES):
            update = fake.private_message(user, text=f"{user}:{k}")
            update["update_id"] = next(ids)
            while True:
                url = f"http://127.0.0.1:{random.choice(ports)}/telegram/hook"
                async with http.post(url, json=update, headers=headers) as resp:
                    if resp.status == 200:
                        break
                    refused[resp.status] = refused.get(resp.status, 0) + 1
                await asyncio.sleep(0.05)

    async with aiohttp.ClientSession() as http:
        await asyncio.gather(*(child(http, user) for user in CHILDREN))
    return refused


async def what_children_saw(fake: FakeTelegram, wait: float = 60.0) -> dict[int, list[int]]:
    """Each child's replies, as the numbers of the messages they answer, in arrival order."""
    deadline = time.monotonic() + wait
    expected = len(CHILDREN) * MESSAGES
    while time.monotonic() < deadline:
        if sum(len(fake.sent_to(c)) for c in CHILDREN) >= expected:
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)  # a duplicate would come now
    seen: dict[int, list[int]] = {}
    for user in CHILDREN:
        seen[user] = [int(c.text.rsplit(":", 1)[1]) for c in fake.sent_to(user)
                      if c.text.startswith(f"эхо {user}:")]
    return seen


def count(seen: dict[int, list[int]]) -> Figures:
    figures = Figures()
    for replies in seen.values():
        late = sum(1 for i, k in enumerate(replies) if k < max(replies[:i], default=-1))
        duplicated = len(replies) - len(set(replies))
        missing = MESSAGES - len(set(replies))
        figures.reordered += late
        figures.duplicated += duplicated
        figures.missing += missing
        figures.children_affected += bool(late or duplicated or missing)
    return figures


async def run_burst(fake: FakeTelegram, tmp_path: Path, url: str, kb: KnowledgeBase,
                    workers: int, limits: MailboxLimits | None = None,
                    ) -> tuple[Figures, dict[int, int]]:
    started = [await start_worker(fake, tmp_path, url, kb, limits) for _ in range(workers)]
    try:
        for _ in range(100):
            if len(fake.calls_of("setWebhook")) >= workers:
                break
            await asyncio.sleep(0.05)
        refused = await burst(fake, [w.port for w in started])
        figures = count(await what_children_saw(fake))
    finally:
        for worker in started:
            await stop_worker(worker)
    return figures, refused


@pytest.fixture
async def jittery() -> AsyncIterator[JitteryTelegram]:
    api = JitteryTelegram()
    await api.start()
    yield api
    await api.stop()


async def test_burst_through_one_webhook_worker_keeps_each_childs_order(
    jittery: JitteryTelegram, tmp_path: Path, kb: KnowledgeBase
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'order.db'}"
    schema = await fresh_database(url)
    await schema.dispose()
    figures, refused = await run_burst(jittery, tmp_path, url, kb, workers=1)
    print(f"1 worker (SQLite): {figures}; refused {refused}")
    assert (figures.reordered, figures.duplicated, figures.missing) == (0, 0, 0), str(figures)


async def test_a_full_worker_answers_429_and_telegrams_resends_keep_the_order(
    jittery: JitteryTelegram, tmp_path: Path, kb: KnowledgeBase
) -> None:
    """Backpressure: a worker that may hold only 3 waiting updates refuses the rest with 429
    (nothing journalled, no task queued); Telegram sends them again, and nothing is lost or
    out of order."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'order.db'}"
    schema = await fresh_database(url)
    await schema.dispose()
    figures, refused = await run_burst(jittery, tmp_path, url, kb, workers=1,
                                       limits=MailboxLimits(chats=4, backlog=3))
    print(f"1 full worker (SQLite): {figures}; refused {refused}")
    assert refused.get(429, 0) > 0 and set(refused) == {429}, refused
    assert (figures.reordered, figures.duplicated, figures.missing) == (0, 0, 0), str(figures)


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    """A PostgreSQL database of this test's own, with the schema (skipped when no server is
    reachable)."""
    async with own_pg_database("order", schema=True) as url:
        yield url


@pytest.mark.parametrize("workers", [1, 3])
async def test_burst_through_webhook_workers_on_postgresql_keeps_each_childs_order(
    jittery: JitteryTelegram, tmp_path: Path, pg_url: str, kb: KnowledgeBase, workers: int
) -> None:
    figures, refused = await run_burst(jittery, tmp_path, pg_url, kb, workers=workers)
    print(f"{workers} worker(s) (PostgreSQL): {figures}; refused {refused}")
    assert (figures.reordered, figures.duplicated, figures.missing) == (0, 0, 0), str(figures)
