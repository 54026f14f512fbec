"""A worker that dies after a danger turn committed and before its replies went out: the next
start sends them at once, not when the dead worker's claims run out (`App.take_over`). Only a
process that starts alone takes over: another live one's claims are its own."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from bot.app import App, build_app
from bot.settings import Settings
from dialogs.messages import Address, Channel, DeskEvent, Inbound, Outbound, outbound_to_dict
from knowledge_base import KnowledgeBase
from storage.models import utcnow
from storage.repositories import Repos
from tests.conftest import database_url, fresh_database

DANGER = "я больше не хочу жить, сегодня всё закончу"


class Stuck:
    """A channel edge whose sends never end: the worker dies with them in hand."""

    def __init__(self) -> None:
        self.started = asyncio.Event()

    async def send(self, message: Outbound) -> None:
        self.started.set()
        await asyncio.Event().wait()


class Inbox:
    def __init__(self) -> None:
        self.sent: list[Outbound] = []

    async def send(self, message: Outbound) -> None:
        self.sent.append(message)


def _app(tmp_path: Path, kb: KnowledgeBase, url: str) -> App:
    return build_app(Settings(database_url=url, keys_file=tmp_path / "keys.json"), kb=kb)


async def _die(app: App, *tasks: asyncio.Task[object]) -> None:
    """The process is gone: its sends stop where they are, nothing is given back, and its
    connections (the PostgreSQL presence among them) drop."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    if app._presence is not None:
        await app._presence.close()
    await app.db.dispose()


async def test_a_danger_reply_left_claimed_by_a_dead_worker_goes_out_at_the_next_start(
    tmp_path: Path, kb: KnowledgeBase
) -> None:
    url = database_url(tmp_path)
    await (await fresh_database(url)).dispose()
    first = _app(tmp_path, kb, url)
    assert await first.take_over() == 0  # nothing left behind
    child_edge, desk_edge = Stuck(), Stuck()
    first.delivery.register("telegram", child_edge)
    first.delivery.register_desk(desk_edge)
    turn = asyncio.create_task(first.handle(Inbound(
        Channel.TELEGRAM, "4242", "4242", text=DANGER, update_id="9001")))
    await asyncio.wait_for(child_edge.started.wait(), 10)
    await asyncio.sleep(0.2)  # the counsellors' alert goes beside it
    await _die(first, turn)

    second = _app(tmp_path, kb, url)
    child, desk = Inbox(), Inbox()
    second.delivery.register("telegram", child)
    second.delivery.register_desk(desk)
    # What the dead worker held waits for its claims: a whole lease, without the take-over.
    assert await second.delivery.flush_due() == 0 and child.sent == []
    assert await second.take_over() >= 1
    await second.recover(older_than=0)
    await second.delivery.flush_due()

    # The child sees the emergency numbers; the counsellors get the alert, flagged as danger.
    texts = [m.text for m in child.sent]
    assert any("8-800-2000-122" in t and "112" in t for t in texts), texts
    alerts = [m for m in desk.sent if m.desk_event is DeskEvent.CASE_OPENED]
    assert alerts and alerts[0].critical and alerts[0].meta.get("danger") == "typed", (
        [(m.desk_event, m.critical, m.meta) for m in desk.sent])
    assert "4242" not in str([m.text for m in desk.sent]), "the child's account stays hidden"
    async with second.db.session() as s:
        repos = Repos(s)
        assert await repos.outbox.backlog() == 0, "nothing is left undelivered"
        user, _created = await repos.users.get_or_create("telegram", "4242", "4242", "ru")
        case = await repos.cases.open_for_user(user.id)
        assert case is not None and case.risk in ("high", "critical")
    assert [m.text for m in child.sent].count(texts[0]) == 1, "each reply once"
    await second.close()


async def test_only_a_process_starting_alone_takes_over(tmp_path: Path, kb: KnowledgeBase) -> None:
    """Another live process's claims are its own (a worker on PostgreSQL; on SQLite a terminal
    chat or desk beside `helpline run`): they are left to their leases."""
    url = database_url(tmp_path)
    await (await fresh_database(url)).dispose()
    alive = _app(tmp_path, kb, url)
    assert await alive.take_over() == 0
    async with alive.db.session() as s:
        await _claimed(Repos(s))  # a reply the live process is sending now
    other = _app(tmp_path, kb, url)
    assert await other.take_over() == 0, "a live process's claim is not taken from it"
    await _die(alive)
    await other.close()
    last = _app(tmp_path, kb, url)
    assert await last.take_over() == 1, "both gone: the claim was a dead process's"
    await last.close()


async def _claimed(repos: Repos) -> None:
    """A reply written claimed, as a worker writes one it is about to send."""
    message = Outbound(to=Address("telegram", "77"), text="hi")
    until = utcnow() + timedelta(minutes=10)
    assert await repos.outbox.write("telegram", "77", outbound_to_dict(message),
                                    claimed_until=until) > 0
