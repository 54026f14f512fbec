"""A worker that dies after a danger turn committed and before its replies went out: the next
start sends them at once, not when the dead worker's claims run out (`App.take_over`). Only a
process that starts alone takes over: another live one's claims are its own."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.app import App, build_app
from bot.settings import Settings
from bot.telegram.desk import CLAIM_STALE
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
        self.got = asyncio.Event()

    async def send(self, message: Outbound) -> None:
        self.sent.append(message)
        self.got.set()


def _app(tmp_path: Path, kb: KnowledgeBase, url: str) -> App:
    return build_app(Settings(database_url=url, keys_file=tmp_path / "keys.json"), kb=kb)


async def _empty(tmp_path: Path) -> str:
    """The test database's URL, its schema made empty."""
    url = database_url(tmp_path)
    await (await fresh_database(url)).dispose()
    return url


async def _empty_postgresql(tmp_path: Path) -> str:
    """`_empty`, for what only PostgreSQL does: SQLite's claims name no worker (a dead
    process's wait for the next start)."""
    if database_url(tmp_path).startswith("sqlite"):
        pytest.skip("SQLite's claims name no worker: a dead process's wait for the next start")
    return await _empty(tmp_path)


async def _stuck_in_a_danger_turn(app: App, child: str, update_id: str) -> asyncio.Task[object]:
    """A child's danger message handled by `app`, whose sends never end: its turn committed,
    the emergency numbers and the counsellors' alert claimed and in hand."""
    child_edge, desk_edge = Stuck(), Stuck()
    app.delivery.register("telegram", child_edge)
    app.delivery.register_desk(desk_edge)
    turn: asyncio.Task[object] = asyncio.create_task(app.handle(Inbound(
        Channel.TELEGRAM, child, child, text=DANGER, update_id=update_id)))
    await asyncio.wait_for(child_edge.started.wait(), 10)
    await asyncio.sleep(0.2)  # the counsellors' alert goes beside it
    return turn


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
    url = await _empty(tmp_path)
    first = _app(tmp_path, kb, url)
    assert await first.take_over() == 0  # nothing left behind
    turn = await _stuck_in_a_danger_turn(first, "4242", "9001")
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
    url = await _empty(tmp_path)
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


async def test_a_live_worker_sends_what_a_worker_that_died_beside_it_held(
    tmp_path: Path, kb: KnowledgeBase
) -> None:
    """PostgreSQL, two workers: one dies after a danger turn committed, its replies claimed and
    unsent. The other, which keeps running (so no start takes over), gives the dead worker's
    claims back at its next outbox pass and sends them: the child's numbers and the
    counsellors' alert within a second, not after the 20 s lease. A live worker's claims are
    not taken."""
    url = await _empty_postgresql(tmp_path)
    survivor = _app(tmp_path, kb, url)
    await survivor.take_over()
    child, desk = Inbox(), Inbox()
    survivor.delivery.register("telegram", child)
    survivor.delivery.register_desk(desk)
    dying = _app(tmp_path, kb, url)
    assert await dying.take_over() == 0, "not alone: nothing to take over"
    assert dying.db.worker is not None and dying.db.worker != survivor.db.worker
    turn = await _stuck_in_a_danger_turn(dying, "4343", "9002")

    # While it lives, its claims are its own: the other worker gives back none, sends none.
    async with survivor.db.session() as s:
        held = await Repos(s).outbox.pending("telegram")
        assert held and {row.claimed_by for row in held} == {dying.db.worker}
    assert await survivor.release_dead() == 0
    assert await survivor.delivery.flush_due() == 0 and child.sent == []

    await _die(dying, turn)
    # The survivor's outbox worker, as it runs (a pass every second).
    stop = asyncio.Event()
    worker = asyncio.create_task(survivor.delivery.run_worker(stop))
    start = asyncio.get_running_loop().time()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(child.got.wait(), desk.got.wait()), 5)
    took = asyncio.get_running_loop().time() - start
    stop.set()
    await worker

    texts = [m.text for m in child.sent]
    assert any("8-800-2000-122" in t and "112" in t for t in texts), texts
    assert took < 2, f"the numbers came {took:.1f} s after the worker died"
    alerts = [m for m in desk.sent if m.desk_event is DeskEvent.CASE_OPENED]
    assert alerts and alerts[0].critical and alerts[0].meta.get("danger") == "typed", (
        [(m.desk_event, m.critical, m.meta) for m in desk.sent])
    assert "4343" not in str([m.text for m in desk.sent]), "the child's account stays hidden"
    assert texts.count(texts[0]) == 1, "each reply once"
    async with survivor.db.session() as s:
        assert await Repos(s).outbox.backlog() == 0, "nothing is left undelivered"
    await survivor.close()


async def test_the_desk_claims_of_a_worker_that_died_are_taken_at_once(
    tmp_path: Path, kb: KnowledgeBase
) -> None:
    """PostgreSQL: a worker died while it made a danger case's topic, and another case's
    critical alert was posted but not yet pinned. The live worker takes both claims over at
    its next pass instead of after `CLAIM_STALE` (60 s); a live worker's claim stays its own."""
    url = await _empty_postgresql(tmp_path)
    survivor = _app(tmp_path, kb, url)
    await survivor.take_over()
    dying = _app(tmp_path, kb, url)
    await dying.take_over()
    now = utcnow()
    stale_before = now - CLAIM_STALE
    async with dying.db.session() as s:
        repos = Repos(s)
        topic, alert, live = [
            (await repos.cases.open(user_id=None, channel="telegram", category="suicide",
                                    risk="critical", risk_rank=0, answers={}, signals={})).id
            for _ in range(3)]
        assert await repos.desk.claim_topic(topic, None, now, stale_before)
        assert await repos.desk.claim_critical_announcement(alert, now, stale_before)
        assert await repos.desk.save_announcement(alert, now, 777)  # posted, not yet pinned
    async with survivor.db.session() as s:
        assert await Repos(s).desk.claim_topic(live, None, now, stale_before)
    await _die(dying)

    assert await survivor.release_dead() == 2
    later = utcnow()
    async with survivor.db.session() as s:
        desk = Repos(s).desk
        assert await desk.claim_topic(topic, None, later, later - CLAIM_STALE)
        assert await desk.claim_pin(alert, 777, later, later - CLAIM_STALE)
        assert not await desk.claim_topic(live, None, later, later - CLAIM_STALE)
        assert not await desk.claim_critical_announcement(alert, later, later - CLAIM_STALE), (
            "posted once: not announced again")
    await survivor.close()


async def test_a_worker_cut_off_from_the_database_joins_again(
    tmp_path: Path, kb: KnowledgeBase
) -> None:
    """PostgreSQL: a worker whose presence connection the server dropped is seen as gone by
    the others; its next outbox pass joins again under a new id, which its claims carry from
    then on (else a live worker's new claims would be given back as a dead one's)."""
    url = await _empty_postgresql(tmp_path)
    app = _app(tmp_path, kb, url)
    await app.take_over()
    old = app.db.worker
    async with app.db.session() as s:
        await s.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": old})
    await asyncio.sleep(0.2)
    assert await app.release_dead() == 0
    assert app.db.worker is not None and app.db.worker != old
    async with app.db.session() as s:
        await _claimed(Repos(s))
        holders = (await s.execute(text(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2"
            " AND classid = 19778 AND objid = 4294967295 AND granted"))).scalars().all()
    assert app.db.worker in holders, "present again"
    assert await app.release_dead() == 0, "its own new claim is not given back"
    async with app.db.session() as s:
        [row] = await Repos(s).outbox.pending("telegram")
        assert row.claimed_by == app.db.worker and row.claimed_until is not None
    await app.close()


async def _claimed(repos: Repos) -> None:
    """A reply written claimed, as a worker writes one it is about to send."""
    message = Outbound(to=Address("telegram", "77"), text="hi")
    until = utcnow() + timedelta(minutes=10)
    assert await repos.outbox.write("telegram", "77", outbound_to_dict(message),
                                    claimed_until=until) > 0
