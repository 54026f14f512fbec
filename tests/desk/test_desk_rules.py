"""The rules a help line needs, at the desk (issue 17): who changes a case's risk, capacity never
stopping a critical take, "abusive contact" as a supervisor's real block, desk times labelled in
the line's zone, one command type and one permission table for every front-end."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dialogs.desk import Block, ChangeRisk, Close, Take, desk_time
from dialogs.desk.rules import TABLE, verdict
from dialogs.escalation import Desk, DeskError
from dialogs.hours import load_hours
from dialogs.messages import DESK, DeskEvent
from dialogs.ports import CaseStatus
from storage.db import Database
from storage.models import Counsellor
from storage.repositories import Repos
from tests.conftest import Chat, Clock
from tests.desk.conftest import join_queue


async def shape(db: Database, case_id: int, **fields: Any) -> None:
    """Put a case in the state a row of a test needs (risk, category, status, owner)."""
    async with db.session() as session:
        case = await Repos(session).cases.get(case_id)
        assert case is not None
        for name, value in fields.items():
            setattr(case, name, value)
        if "risk" in fields:
            case.risk_rank = {"critical": 0, "high": 1, "medium": 2, "low": 3}[fields["risk"]]


async def load(db: Database, case_id: int) -> Any:
    async with db.session() as session:
        return await Repos(session).cases.get(case_id)


async def waiting_case(chat_factory: Callable[..., Chat], desk: Desk, user: str) -> int:
    await join_queue(chat_factory(user=user))
    return max(c.id for c in await desk.queue())


async def critical_case(chat_factory: Callable[..., Chat], desk: Desk, user: str) -> int:
    chat = chat_factory(user=user)
    await chat.start_as_child()
    await chat.say("я больше не хочу жить")
    [case] = [c for c in await desk.queue() if c.risk == "critical"][-1:]
    return case.id


# ---------------------------------------------------------------------- risk
async def test_only_the_holder_or_a_supervisor_lowers_a_risk_anyone_raises_a_waiting_one(
    chat_factory: Callable[..., Chat], desk: Desk, db: Database,
    counsellor: Counsellor, boris: Counsellor,
) -> None:
    case_id = await waiting_case(chat_factory, desk, "c1")
    await shape(db, case_id, risk="high")
    lowered = await desk.execute(boris, ChangeRisk(case_id, "low", "кажется, всё хорошо"))
    assert lowered.error is DeskError.NOT_YOURS
    # Safety first: a colleague who sees a waiting case may raise it (it comes forward).
    assert (await desk.execute(boris, ChangeRisk(case_id, "critical", ""))).ok
    assert (await load(db, case_id)).risk == "critical"
    await shape(db, case_id, risk="high")
    assert (await desk.take(counsellor, case_id)).ok
    refused = await desk.execute(boris, ChangeRisk(case_id, "critical", ""))
    assert refused.error is DeskError.NOT_YOURS, "a held case: its holder's (or a supervisor's)"
    assert (await desk.execute(counsellor, ChangeRisk(case_id, "low", ""))).error is (
        DeskError.BAD_RISK
    ), "lowering needs a note"
    assert (await desk.execute(counsellor, ChangeRisk(case_id, "low", "фото удалены"))).ok
    assert (await load(db, case_id)).risk == "low"


async def test_lowering_a_critical_case_needs_a_supervisor_and_a_real_reason_and_is_audited(
    chat_factory: Callable[..., Chat], desk: Desk, db: Database,
    counsellor: Counsellor, boris: Counsellor, supervisor: Counsellor,
) -> None:
    case_id = await critical_case(chat_factory, desk, "c1")
    # The hole of issue 17: a colleague who does not hold it lowers it with one letter.
    assert (await desk.set_risk(boris, case_id, "low", "x")).error is DeskError.SUPERVISOR_ONLY
    assert (await desk.take(counsellor, case_id)).ok
    held = await desk.set_risk(counsellor, case_id, "low", "поговорили, она в безопасности")
    assert held.error is DeskError.SUPERVISOR_ONLY, "the holder neither"
    for weak in ("x", "ok", "ок ок ок", "1234567890"):
        assert (await desk.set_risk(supervisor, case_id, "medium", weak)).error is (
            DeskError.WEAK_REASON
        )
    assert (await load(db, case_id)).risk == "critical"
    reason = "говорили с мамой, девочка дома и в безопасности"
    assert (await desk.set_risk(supervisor, case_id, "medium", reason)).ok
    assert (await load(db, case_id)).risk == "medium"
    [(who, detail)] = [(w, d) for _t, w, a, d in await desk.audit_trail(case_id)
                       if a == "risk_changed"]
    assert who == "sveta" and detail == f"critical -> medium: {reason}"


# ---------------------------------------------------------------------- capacity
async def test_capacity_never_stops_a_critical_take_and_the_supervisors_are_told(
    chat_factory: Callable[..., Chat], desk: Desk, counsellor: Counsellor,
    boris: Counsellor, supervisor: Counsellor,
) -> None:
    for n in range(4):
        await waiting_case(chat_factory, desk, f"calm{n}")
    calm = [c.id for c in await desk.queue()]
    for case_id in calm[:3]:
        assert (await desk.take(counsellor, case_id)).ok
    assert (await desk.take(counsellor, calm[3])).error is DeskError.AT_CAPACITY
    critical = await critical_case(chat_factory, desk, "danger")
    taken = await desk.execute(counsellor, Take(critical))
    assert taken.ok and taken.over_capacity == "4/3"
    [notice] = [m for m in taken.outbound
                if m.to.channel == DESK and m.desk_event is DeskEvent.CASE_UPDATED]
    assert notice.meta["over_capacity"] == "4/3" and notice.critical
    # The take itself is published for every desk (the card, the pinned alert), after it.
    [event] = [m for m in taken.outbound if m.desk_event is DeskEvent.CASE_TAKEN]
    assert event.meta["by"] == "anna" and event.critical and event.case_id == critical
    assert taken.outbound.index(event) > taken.outbound.index(notice)
    assert f"anna {4} обращений при лимите 3" in notice.text.replace("у консультанта ", "")
    assert f"№{critical} взято сверх лимита" in notice.text
    assert len(await desk.held(counsellor)) == 4, "counted"
    assert ("anna", "over_capacity") in [(w, a) for _t, w, a, _d in
                                        await desk.audit_trail(critical)]
    # A supervisor hands a critical case to a full colleague: also counted and told.
    for case_id in (calm[3], await waiting_case(chat_factory, desk, "calm8"),
                    await waiting_case(chat_factory, desk, "calm9")):
        assert (await desk.take(boris, case_id)).ok
    second = await critical_case(chat_factory, desk, "danger2")
    moved = await desk.transfer(supervisor, second, "boris")
    assert moved.ok and moved.over_capacity == "4/3"


# ---------------------------------------------------------------------- blocking
async def test_abusive_contact_is_a_supervisors_block_never_a_close_outcome(
    chat_factory: Callable[..., Chat], desk: Desk, db: Database, clock: Clock,
    counsellor: Counsellor, supervisor: Counsellor,
) -> None:
    case_id = await waiting_case(chat_factory, desk, "c1")
    assert (await desk.take(counsellor, case_id)).ok
    for who in (counsellor, supervisor):
        closed = await desk.execute(who, Close(case_id, "abusive-contact"))
        assert closed.error is DeskError.USE_BLOCK
    assert (await load(db, case_id)).status == CaseStatus.ACTIVE
    week = clock.now + timedelta(days=7)
    refused = await desk.execute(counsellor, Block(case_id, "оскорбления", week))
    assert refused.error is DeskError.SUPERVISOR_ONLY
    assert (await desk.execute(supervisor, Block(case_id, "оскорбления", week))).ok
    case = await load(db, case_id)
    assert case.status == CaseStatus.CLOSED and case.outcome == "abusive-contact"
    async with db.session() as session:
        repos = Repos(session)
        user = await repos.users.get(case.user_id)
        block = await repos.blocks.active_for(user.channel, user.external_id, clock.now)
        assert block is not None and block.until == week


@pytest.mark.parametrize("category", ["sextortion", "grooming", "sexual-abuse", "abuse"])
async def test_blocking_where_the_child_is_the_victim_needs_a_confirmation(
    chat_factory: Callable[..., Chat], desk: Desk, db: Database, clock: Clock,
    supervisor: Counsellor, category: str,
) -> None:
    case_id = await waiting_case(chat_factory, desk, "c1")
    await shape(db, case_id, category=category)
    week = clock.now + timedelta(days=7)
    first = await desk.execute(supervisor, Block(case_id, "угрожает", week))
    assert first.error is DeskError.CONFIRM_BLOCK and first.detail == category
    assert (await load(db, case_id)).status == CaseStatus.WAITING, "nothing changed"
    assert (await desk.execute(supervisor, Block(case_id, "угрожает", week, confirmed=True))).ok
    assert (await load(db, case_id)).outcome == "abusive-contact"


# ---------------------------------------------------------------------- the table and times
def test_every_desk_command_has_rows_in_the_one_table() -> None:
    actions = {rule.action for rule in TABLE}
    assert {"take", "reply", "note", "risk.raise", "risk.lower", "transfer", "release",
            "close", "block", "unblock", "category", "view"} <= actions
    for action in actions:
        last = [rule for rule in TABLE if rule.action == action][-1]
        catch_all = (last.role, last.holder, last.statuses, last.critical)
        assert catch_all == (None, None, None, None), f"{action}: no row for some callers"


def test_the_table_answers_by_role_relation_status_and_risk() -> None:
    class Who:
        def __init__(self, id: int, role: str) -> None:
            self.id, self.role, self.active = id, role, True

    class Case:
        def __init__(self, owner: int | None, status: str, risk: str) -> None:
            self.owner_id, self.status, self.risk = owner, status, risk

    anna, boris, sveta = Who(1, "counsellor"), Who(2, "counsellor"), Who(3, "supervisor")
    held_critical = Case(1, "active", "critical")
    assert verdict("risk.lower", anna, held_critical) is DeskError.SUPERVISOR_ONLY  # type: ignore[arg-type]
    assert verdict("risk.lower", sveta, held_critical) is None  # type: ignore[arg-type]
    assert verdict("risk.raise", boris, Case(None, "waiting", "low")) is None  # type: ignore[arg-type]
    assert verdict("reply", boris, held_critical) is DeskError.NOT_YOURS  # type: ignore[arg-type]
    assert verdict("close", sveta, held_critical) is None  # type: ignore[arg-type]
    assert verdict("take", boris, held_critical) is DeskError.TAKEN  # type: ignore[arg-type]
    assert verdict("block", anna, held_critical) is DeskError.SUPERVISOR_ONLY  # type: ignore[arg-type]


def test_desk_times_are_the_lines_wall_time_labelled() -> None:
    moscow = load_hours()  # the shipped hours file: Europe/Moscow
    moment = datetime(2026, 12, 2, 11, 5, tzinfo=UTC)
    assert desk_time(moment, moscow) == "14:05 MSK"
    assert desk_time(moment, moscow, "%Y-%m-%d %H:%M") == "2026-12-02 14:05 MSK"


@pytest.mark.parametrize("case_id", [0, -1, 10**30])
async def test_a_forged_case_number_is_no_case_never_an_exception(
    desk: Desk, counsellor: Counsellor, case_id: int
) -> None:
    assert (await desk.execute(counsellor, Take(case_id))).error is DeskError.NO_CASE
    assert await desk.view(counsellor, case_id) is DeskError.NO_CASE
