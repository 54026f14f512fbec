"""Joining the queue: an honest wait, an honest after-hours answer, and coming back to it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from dialogs.escalation import Desk
from dialogs.hours import OpeningHours
from dialogs.messages import DeskEvent
from dialogs.operations import AFTER_HOURS, ON_CALL, PAGE
from storage.db import Database
from storage.repositories import Repos
from tests.conftest import Chat, Clock
from tests.desk.conftest import Configure, join_queue

Hours = Callable[[str], OpeningHours]
WORKDAYS = """
timezone: Europe/Moscow
zone_label: {ru: "по московскому времени", en: "Moscow time"}
weekly: {mon: ["09:00-21:00"], tue: ["09:00-21:00"], wed: ["09:00-21:00"],
         thu: ["09:00-21:00"], fri: ["09:00-21:00"]}
"""
TUESDAY_NIGHT = datetime(2026, 12, 1, 19, 30, tzinfo=UTC)  # 22:30 in Moscow
TUESDAY_NOON = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


async def answered_before(db: Database, now: datetime, waits: list[int]) -> None:
    """Closed cases answered `waits` minutes after they opened, during the last days."""
    async with db.session() as s:
        repos = Repos(s)
        for i, minutes in enumerate(waits):
            case = await repos.cases.open(
                user_id=None,  # type: ignore[arg-type]
                channel="console",
                category="cyberbullying",
                risk="medium",
                risk_rank=2,
                answers={},
                signals={},
            )
            case.created_at = now - timedelta(days=1, hours=i)
            case.taken_at = case.created_at + timedelta(minutes=minutes - 1)
            case.first_response_at = case.created_at + timedelta(minutes=minutes)
            case.status, case.outcome = "closed", "advice-given"


async def test_without_history_the_wait_comes_from_the_setting(
    chat_factory: Callable[..., Chat],
) -> None:
    chat = chat_factory()
    await join_queue(chat)
    assert "1-й в очереди, ждать примерно 10 мин" in chat.text


async def test_the_wait_is_estimated_from_recent_first_responses(
    chat_factory: Callable[..., Chat], db: Database, clock: Clock
) -> None:
    await answered_before(db, clock.now, [20, 24, 30])  # median 24 minutes
    first, second = chat_factory(user="a"), chat_factory(user="b")
    await join_queue(first)
    assert "ждать примерно 25 мин" in first.text  # 24, rounded up to 5
    await join_queue(second)
    assert "2-й в очереди, ждать примерно 50 мин" in second.text  # 2 x 24 = 48


async def test_old_or_too_few_responses_do_not_count(
    chat_factory: Callable[..., Chat], db: Database, clock: Clock
) -> None:
    await answered_before(db, clock.now - timedelta(days=30), [60, 60, 60])
    await answered_before(db, clock.now, [60, 60])
    chat = chat_factory()
    await join_queue(chat)
    assert "ждать примерно 10 мин" in chat.text


async def test_after_hours_the_child_hears_when_counsellors_are_back(
    chat_factory: Callable[..., Chat],
    desk: Desk,
    clock: Clock,
    configure: Configure,
    hours_yaml: Hours,
) -> None:
    configure(hours=hours_yaml(WORKDAYS))
    clock.now = TUESDAY_NIGHT
    chat = chat_factory()
    await join_queue(chat)
    text = chat.text
    assert "не на связи" in text and "вернутся завтра в 09:00 (по московскому времени)" in text
    assert "1-й в очереди" in text, "the case still waits in the queue"
    assert "8-800-2000-122" in text and "112" in text, "with the emergency contacts"
    assert "ждать примерно" not in text, "no promise of a wait nobody can keep"
    assert "Завершить разговор" in chat.buttons
    [case] = await desk.queue()
    [notice] = chat.desk
    assert notice.desk_event is DeskEvent.CASE_OPENED and notice.meta.get(AFTER_HOURS) == "1"
    assert PAGE not in notice.meta, "a calm case does not wake anyone"
    assert case.status == "waiting"


async def test_after_hours_in_english_on_a_friday(
    chat_factory: Callable[..., Chat], clock: Clock, configure: Configure, hours_yaml: Hours
) -> None:
    configure(hours=hours_yaml(WORKDAYS))
    clock.now = datetime(2026, 12, 4, 19, 0, tzinfo=UTC)  # Friday 22:00 Moscow
    chat = chat_factory(locale="en")
    await join_queue(chat)
    assert "they'll be back on Monday at 09:00 (Moscow time)" in chat.text
    assert "number 1 in the queue" in chat.text


async def test_after_hours_danger_pages_the_on_call_supervisors(
    chat_factory: Callable[..., Chat],
    desk: Desk,
    clock: Clock,
    configure: Configure,
    hours_yaml: Hours,
) -> None:
    configure(hours=hours_yaml(WORKDAYS))
    clock.now = TUESDAY_NIGHT
    sveta = await desk.add_counsellor("sveta", "console", "sveta", role="supervisor")
    await desk.add_counsellor("anna", "console", "anna")
    chat = chat_factory()
    await chat.start_as_child()
    await chat.say("я больше не хочу жить")
    assert "8-800-2000-122" in chat.text
    [notice] = chat.desk
    assert notice.critical and notice.desk_event is DeskEvent.CASE_OPENED
    assert notice.meta[AFTER_HOURS] == "1" and notice.meta[PAGE] == ON_CALL
    assert [c.name for c in await desk.on_call()] == [sveta.name]
    assert not desk.is_open(clock.now) and desk.is_open(TUESDAY_NOON)


async def test_during_hours_no_marker(
    chat_factory: Callable[..., Chat], clock: Clock, configure: Configure, hours_yaml: Hours
) -> None:
    configure(hours=hours_yaml(WORKDAYS))
    clock.now = TUESDAY_NOON
    chat = chat_factory()
    await join_queue(chat)
    assert "ждать примерно" in chat.text and chat.desk[0].meta.get(AFTER_HOURS) is None


async def test_leaving_while_waiting_and_coming_back_to_the_same_case(
    chat_factory: Callable[..., Chat], desk: Desk
) -> None:
    ahead = chat_factory(user="ahead")
    await join_queue(ahead)
    chat = chat_factory()
    await join_queue(chat)
    [first, case] = await desk.queue()
    assert "2-й в очереди" in chat.text
    await chat.press("Завершить разговор")
    assert "Консультант увидит, что разговор завершён" in chat.text
    await chat.press("Да, завершить")
    assert "обращение сохранено" in chat.text
    assert [c.id for c in await desk.queue()] == [first.id, case.id], "the case keeps waiting"
    await chat.press("Поговорить с человеком")
    assert f"№{case.id} уже в очереди, ты 2-й" in chat.text
    assert len(await desk.queue()) == 2, "no second case"
    await chat.say("я тут")
    assert chat.replies == [] and chat.desk[0].case_id == case.id, "relayed to the same case"


async def test_menu_while_waiting_keeps_the_place(
    chat_factory: Callable[..., Chat], desk: Desk
) -> None:
    chat = chat_factory()
    await join_queue(chat)
    [case] = await desk.queue()
    await chat.say("/menu")
    assert "Завершить разговор" in chat.buttons
    await chat.payload("g|person")
    assert f"№{case.id} уже в очереди, ты 1-й" in chat.text
    assert [c.id for c in await desk.queue()] == [case.id]

