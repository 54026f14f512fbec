"""The durable outbox: nothing a counsellor writes is dropped, retries keep order per chat, a
blocked bot is reported, and sends are paced to the platform's limits."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

from bot.delivery import Delivery, DeliveryError
from bot.pacing import Pacer
from dialogs.escalation import Desk
from dialogs.messages import DESK, Address, DeskEvent, Outbound
from storage.db import Database
from storage.models import Counsellor, utcnow
from storage.repositories import Repos
from tests.conftest import Chat


class FlakyChannel:
    """A channel edge that fails as told: a list of errors to raise before succeeding."""

    def __init__(self, errors: list[DeliveryError] | None = None) -> None:
        self.errors = list(errors or [])
        self.sent: list[str] = []

    async def send(self, message: Outbound) -> None:
        if self.errors:
            raise self.errors.pop(0)
        self.sent.append(message.text)


class DeskInbox:
    def __init__(self) -> None:
        self.notices: list[Outbound] = []

    async def send(self, message: Outbound) -> None:
        self.notices.append(message)


async def _due_now(db: Database) -> None:
    """Pretend the backoff has passed."""
    async with db.session() as s:
        repos = Repos(s)
        for row in await repos.outbox.pending("telegram"):
            row.next_attempt_at = utcnow() - timedelta(seconds=1)


async def test_failed_send_is_retried_in_order_until_delivered(db: Database) -> None:
    channel = FlakyChannel([DeliveryError("network"), DeliveryError("5xx")])
    delivery = Delivery(db)
    delivery.register("telegram", channel)
    to = Address("telegram", "777")
    await delivery.deliver([Outbound(to=to, text="first"), Outbound(to=to, text="second")])
    assert channel.sent == [], "the first failed; the second must not overtake it"
    await _due_now(db)
    await delivery.flush_due()
    await _due_now(db)
    await delivery.flush_due()
    assert channel.sent == ["first", "second"]
    async with db.session() as s:
        assert await Repos(s).outbox.backlog() == 0
    await delivery.flush_due()
    assert channel.sent == ["first", "second"], "nothing is sent twice"


async def test_retry_after_is_respected(db: Database) -> None:
    channel = FlakyChannel([DeliveryError("429", retry_after=30)])
    delivery = Delivery(db)
    delivery.register("telegram", channel)
    await delivery.deliver([Outbound(to=Address("telegram", "1"), text="hello")])
    assert await delivery.flush_due() == 0, "not before retry_after"
    async with db.session() as s:
        [row] = await Repos(s).outbox.pending("telegram")
        assert row.next_attempt_at is not None
        assert row.next_attempt_at - utcnow() > timedelta(seconds=25)


async def test_counsellor_reply_to_a_child_who_blocked_the_bot_is_reported(
    db: Database, chat_factory: Callable[..., Chat], desk: Desk, counsellor: Counsellor
) -> None:
    chat = chat_factory()
    await chat.start_as_child()
    await chat.press("человеком")
    [case] = await desk.queue()
    await desk.take(counsellor, case.id)
    async with db.session() as s:  # what the child was told before went out at the time
        for channel in ("console", "desk"):
            for row in await Repos(s).outbox.pending(channel):
                await Repos(s).outbox.mark_delivered(row.id)
    reply = await desk.reply(counsellor, case.id, "Ты здесь?")
    channel = FlakyChannel([DeliveryError("forbidden", permanent=True)])
    inbox = DeskInbox()
    delivery = Delivery(db)
    delivery.register("console", channel)
    delivery.register_desk(inbox)
    await delivery.deliver(reply.outbound)
    assert [n.desk_event for n in inbox.notices] == [DeskEvent.UNREACHABLE]
    assert inbox.notices[0].case_id == case.id
    async with db.session() as s:
        user = await Repos(s).users.find("console", "child-1")
        assert user is not None and user.unreachable
        pending = [r.body["text"] for r in await Repos(s).outbox.pending("console")]
        assert "Ты здесь?" not in pending, "a permanent failure is not retried"



async def test_a_worker_in_another_process_sends_what_was_left(db: Database) -> None:
    producer = Delivery(db)  # no live channel: like the console desk process
    await producer.deliver([Outbound(to=Address("telegram", "5"), text="from the desk")])
    channel = FlakyChannel()
    worker = Delivery(db)
    worker.register("telegram", channel)
    assert await worker.flush_due() == 1
    assert channel.sent == ["from the desk"]


async def test_pacer_smooths_a_burst_to_one_message_a_second_per_chat() -> None:
    now = [0.0]
    pacer = Pacer(global_rate=30, chat_rate=1, group_per_minute=20, clock=lambda: now[0])
    waits = [await _no_sleep(pacer, "42") for _ in range(6)]
    assert waits[:3] == [0, 0, 0], "a short burst goes at once"
    assert waits[3:] == [1.0, 2.0, 3.0], "then one a second"
    group = [await _no_sleep(pacer, "-100") for _ in range(22)]
    assert group[:20] == [0] * 20 and group[20] > 0, "20 a minute in a group"


async def _no_sleep(pacer: Pacer, chat: str) -> float:
    import asyncio
    from unittest import mock

    with mock.patch.object(asyncio, "sleep", new=_instant):
        return round(await pacer.wait(chat), 3)


async def _instant(delay: float) -> None:
    return None


async def test_a_send_waiting_longer_than_its_lease_is_not_taken_over(db: Database) -> None:
    """The staff group's turn can take minutes: while a desk post waits for it, its claim is
    renewed, so another worker's pass never sends the same notice a second time."""
    import asyncio

    class SlowDesk:
        def __init__(self) -> None:
            self.sent: list[str] = []

        async def send(self, message: Outbound) -> None:
            await asyncio.sleep(1.5)  # waiting for the group's next free post
            self.sent.append(message.text)

    lease = timedelta(seconds=0.45)
    first, second = SlowDesk(), SlowDesk()
    worker_a, worker_b = Delivery(db), Delivery(db)
    for worker, desk in ((worker_a, first), (worker_b, second)):
        worker.lease = lease  # type: ignore[misc]
        worker.register_desk(desk)
    notice = Outbound(to=Address("desk", "42"), text="the child wrote", case_id=42,
                      desk_event=DeskEvent.CHILD_MESSAGE)
    sending = asyncio.create_task(worker_a.deliver([notice]))
    for _ in range(8):  # the other worker looks every 0.2 s, past the lease several times
        await asyncio.sleep(0.2)
        await worker_b.flush_due()
    await sending
    assert first.sent == ["the child wrote"] and second.sent == []
    async with db.session() as s:
        assert list(await Repos(s).outbox.pending("desk", "42")) == []
    await worker_a.release()
    await worker_b.release()


class GatedChannel:
    """A channel edge whose sends wait until the test opens the gate."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.sent: list[str] = []

    async def send(self, message: Outbound) -> None:
        await self.gate.wait()
        self.sent.append(message.text)


async def test_a_desk_notice_taken_over_by_the_chats_last_sender_is_still_sent(
    db: Database,
) -> None:
    """Two turns deliver to one case's desk at once. The first is sending its notice when
    the second writes its own (after a reply to the child). The first sender lets go of the
    desk chat before the second gets to it and gives back the second's claim: the second must
    still send its notice at once, from the outbox, not leave it to the outbox worker."""
    delivery = Delivery(db)
    child, desk = GatedChannel(), GatedChannel()
    delivery.register("telegram", child)
    delivery.register_desk(desk)
    to_desk = Address(DESK, "5")
    raised = Outbound(to=to_desk, text="🆘 case raised", case_id=5,
                      desk_event=DeskEvent.CASE_RAISED)
    first = asyncio.create_task(delivery.deliver([raised]))
    await asyncio.sleep(0.05)  # the first notice is being sent
    second = asyncio.create_task(delivery.deliver([
        Outbound(to=Address("telegram", "42"), text="the numbers to call", case_id=5),
        Outbound(to=to_desk, text="🧒 please answer", case_id=5,
                 desk_event=DeskEvent.CHILD_MESSAGE),
    ]))
    await asyncio.sleep(0.05)  # the second is sending to the child, its notice written
    desk.gate.set()  # the first notice goes; its sender lets go of the desk chat
    await first
    child.gate.set()
    await second
    assert child.sent == ["the numbers to call"]
    assert desk.sent == ["🆘 case raised", "🧒 please answer"], "sent at once, in order"
    async with db.session() as s:
        assert await Repos(s).outbox.backlog() == 0


async def test_a_danger_alert_goes_to_the_desk_while_the_childs_contacts_are_being_sent(
    db: Database,
) -> None:
    """A danger turn's replies: the emergency contacts to the child and the alert to the
    counsellors. The alert does not wait for the child's send (a slow or throttled chat) and
    its delivered mark; both arrive, and both are marked delivered."""
    delivery = Delivery(db)
    child, desk = GatedChannel(), DeskInbox()
    delivery.register("telegram", child)
    delivery.register_desk(desk)
    contacts = Outbound(to=Address("telegram", "42"), text="Позвони 8-800-2000-122",
                        case_id=7, critical=True)
    alert = Outbound(to=Address(DESK, "7"), text="🆘 не хочу жить", case_id=7,
                     desk_event=DeskEvent.CASE_OPENED, critical=True)
    turn = asyncio.create_task(delivery.deliver([contacts, alert], wait=True))
    for _ in range(100):
        if desk.notices:
            break
        await asyncio.sleep(0.01)
    assert [n.text for n in desk.notices] == ["🆘 не хочу жить"], "the alert is out"
    assert child.sent == [] and not turn.done(), "while the child's send is still under way"
    child.gate.set()
    await asyncio.wait_for(turn, 5)
    assert child.sent == ["Позвони 8-800-2000-122"]
    async with db.session() as s:
        assert await Repos(s).outbox.backlog() == 0


async def test_a_desk_notice_sent_from_its_outbox_row_keeps_its_danger_flag(db: Database) -> None:
    """A notice that goes out from its outbox row (after a restart, or when its case had an
    older notice undelivered) keeps the flags the safety policy gave it: the counsellor sees
    the child's line marked as danger however it is sent."""
    from dialogs.engine import write_outbox

    line = "я больше не хочу жить"
    notice = Outbound(to=Address(DESK, "7"), text=line, case_id=7,
                      desk_event=DeskEvent.CASE_RAISED, critical=True,
                      meta={"danger": "typed", "about": "other"})
    async with db.session() as s:  # written in a turn, not sent: as a crash leaves it
        await write_outbox(Repos(s).outbox, [notice], None)
    inbox = DeskInbox()
    delivery = Delivery(db)
    delivery.register_desk(inbox)
    assert await delivery.flush_due() == 1
    [sent] = inbox.notices
    assert sent.text == line and sent.desk_event is DeskEvent.CASE_RAISED and sent.critical
    assert sent.meta["danger"] == "typed" and sent.meta["about"] == "other"
    assert sent.meta["outbox_id"]
