"""Each stage of the turn pipeline, tried alone with small fakes of the stores it uses, and the
conversation machine's moves between flows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from dialogs import stages
from dialogs.catalogue import default_catalogue
from dialogs.conversation import Conversation
from dialogs.flows.base import TurnContext
from dialogs.hours import OpeningHours
from dialogs.messages import Address, Attachment, Channel, ContentKind, Inbound
from dialogs.safety import Danger, SafetyPolicy, Source
from dialogs.taxonomy import Risk
from dialogs.turn import Turn

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def clock() -> datetime:
    return NOW


def always_open() -> OpeningHours:
    return OpeningHours.always_open()


@dataclass
class Verdict:
    danger: bool = False
    check_in: bool = False
    category: str = "other"
    risk: Risk = Risk.LOW
    signals: tuple[str, ...] = ()
    about: str = "self"


@dataclass
class Messages:
    added: list[str] = field(default_factory=list)

    async def recent_child_texts(self, *args: Any, **kwargs: Any) -> list[str]:
        return ["earlier text"]

    async def add(self, user_id: int, sender: str, text: str, **kwargs: Any) -> Any:
        self.added.append(text)
        return SimpleNamespace(id=len(self.added))


class Cases:
    async def open_for_user(self, user_id: int) -> None:
        return None


@dataclass
class Blocks:
    blocked: bool = False

    async def active_for(self, *args: Any) -> object | None:
        return object() if self.blocked else None


async def _flush() -> None:
    return None


def make_turn(*, flow: str = "start", state: str = "menu", blocked: bool = False,
              updated_at: datetime | None = None) -> Turn:
    repos: Any = SimpleNamespace(messages=Messages(), cases=Cases(), blocks=Blocks(blocked),
                                 flush=_flush)
    user: Any = SimpleNamespace(id=7, channel="console", external_id="x", notice_shown=True)
    conv: Any = SimpleNamespace(flow=flow, state=state, updated_at=updated_at, case_id=None,
                                resume_flow=None, resume_state=None)
    ctx = TurnContext(address=Address("console", "c"), locale="ru", role="child",
                      data={"role": "child"}, catalogue=default_catalogue(),
                      services=SimpleNamespace(), user_id=7)  # type: ignore[arg-type]
    return Turn(repos=repos, user=user, conv=conv, ctx=ctx)


def text(message: str, **kwargs: Any) -> Inbound:
    return Inbound(Channel.CONSOLE, "u", "c", text=message, **kwargs)


# ------------------------------------------------------------------------------- triage
async def test_triage_reads_the_whole_text_and_stores_what_fits() -> None:
    seen: list[tuple[str, list[str]]] = []

    def triage(message: str, locale: str, recent: Any = None) -> Verdict:
        seen.append((message, list(recent or [])))
        return Verdict(danger="покончить" in message)

    long = "про школу и уроки. " * 250 + "я хочу покончить с собой"
    assert len(long) > 4000
    turn = make_turn()
    assert await stages.Triaged(triage, 4000, clock)(turn, text(long)) is False
    assert seen == [(long, ["earlier text"])], "the whole text, with the recent ones"
    assert turn.assessment is not None and turn.assessment.danger
    assert turn.repos.messages.added == [long[:4000]]  # type: ignore[attr-defined]
    assert "4000" in turn.ctx.out[0].text, "the child is told what was cut"


# ------------------------------------------------------------------------------- danger
@pytest.mark.parametrize(
    ("inbound", "blocked", "source"),
    [
        (text("x"), False, Source.TYPED),
        (text("x", edited=True), False, Source.EDITED),
        (text("x", attachments=(Attachment(ContentKind.PHOTO, "f"),)), False, Source.CAPTION),
        (text("x"), True, Source.BLOCKED),
    ],
)
async def test_danger_goes_to_the_policy_with_how_it_came(
    inbound: Inbound, blocked: bool, source: Source
) -> None:
    reported: list[Danger] = []

    async def report(turn: Turn, danger: Danger) -> None:
        reported.append(danger)

    turn = make_turn(blocked=blocked)
    turn.text = "он угрожает"
    turn.assessment = Verdict(danger=True, category="threats", risk=Risk.CRITICAL,
                              signals=("threat",))
    assert await stages.DangerFound(report, clock)(turn, inbound) is True
    assert [(d.source, d.category, d.risk, d.signals, d.text) for d in reported] == [
        (source, "threats", Risk.CRITICAL, ("threat",), "он угрожает")
    ]


async def test_no_danger_passes_the_turn_on() -> None:
    async def report(turn: Turn, danger: Danger) -> None:
        raise AssertionError("not danger")

    turn = make_turn()
    turn.assessment = Verdict()
    assert await stages.DangerFound(report, clock)(turn, text("привет")) is False


# ------------------------------------------------------------------------------- check-in
async def test_check_in_asks_directly_once_per_half_hour() -> None:
    async def flag(turn: Turn) -> bool:
        raise AssertionError("not in a chat")

    stage = stages.CheckIn(SafetyPolicy(region="ru", hours=always_open), flag, clock)
    turn = make_turn()
    turn.assessment = Verdict(check_in=True, category="suicide")
    assert await stage(turn, text("устал от всего")) is True
    asked = turn.ctx.out[-1]
    assert "в безопасности" in asked.text
    assert [b.payload for row in asked.buttons for b in row] == [
        "g|checkin=safe", "g|checkin=unsafe", "g|checkin=person"
    ]
    turn.ctx.out.clear()
    assert await stage(turn, text("устал от всего")) is False, "not again within 30 minutes"
    assert turn.ctx.out == []


async def test_in_a_live_chat_the_counsellor_is_flagged_instead() -> None:
    flagged: list[Turn] = []

    async def flag(turn: Turn) -> bool:
        flagged.append(turn)
        return True

    turn = make_turn(flow="counselling", state="connected")
    turn.assessment = Verdict(check_in=True)
    stage = stages.CheckIn(SafetyPolicy(region="ru", hours=always_open), flag, clock)
    assert await stage(turn, text("..."))
    assert flagged == [turn] and turn.ctx.out == [], "the bot does not cut in"


# ------------------------------------------------------------------------------- silence
async def test_a_long_silence_in_a_form_asks_continue_or_restart() -> None:
    stage = stages.Silence(timedelta(hours=6), clock)
    away = make_turn(flow="child_report", state="what", updated_at=NOW - timedelta(hours=7))
    assert await stage(away, text("привет")) is True
    assert away.ctx.data["silence_pending"] is True
    assert len(away.ctx.out[-1].buttons) == 2
    menu = make_turn(flow="start", state="menu", updated_at=NOW - timedelta(days=3))
    assert await stage(menu, text("привет")) is False, "the menu is never interrupted"


# ------------------------------------------------------------------------------- moves
def _conv(flow: str, state: str) -> Any:
    return SimpleNamespace(flow=flow, state=state, case_id=None, resume_flow=None,
                           resume_state=None)


def test_hand_over_queues_or_connects_and_keeps_the_answers() -> None:
    moves = Conversation()
    conv, data = _conv("child_report", "where"), {"what": "threats", "role": "child"}
    moves.move(conv, data, "hand_over", case=SimpleNamespace(id=5, status="waiting"))
    assert (conv.flow, conv.state, conv.case_id) == ("counselling", "waiting", 5)
    assert data["what"] == "threats", "the answers go with the child to the counsellor"
    other = _conv("start", "menu")
    moves.move(other, {}, "hand_over", case=SimpleNamespace(id=6, status="active"))
    assert (other.flow, other.state, other.case_id) == ("counselling", "connected", 6)


def test_entering_another_flow_keeps_only_what_belongs_to_the_conversation() -> None:
    conv = _conv("child_report", "where")
    data = {"what": "threats", "role": "child", "check_in_at": "t", "triage_acted_on": 3}
    Conversation().enter(conv, data, "safety_question")
    assert conv.flow == "safety_question" and conv.state == "ask"
    assert data == {"role": "child", "check_in_at": "t", "triage_acted_on": 3}


def test_blocked_leaves_the_chat_for_the_menu_and_undeclared_moves_are_refused() -> None:
    moves = Conversation()
    conv = _conv("counselling", "connected")
    conv.case_id, conv.resume_flow = 9, "child_report"
    moves.move(conv, {}, "blocked")
    assert (conv.flow, conv.state, conv.case_id, conv.resume_flow) == (
        "start", "menu", None, None
    )
    with pytest.raises(Exception, match="blocked"):
        moves.move(conv, {}, "blocked")  # not declared from the menu


# ---------------------------------------------------------------- before the turn
def _text(text: str, update_id: str | None = None) -> Inbound:
    return Inbound(channel=Channel.CONSOLE, user_id="u1", chat_id="c1", text=text,
                   locale_hint="ru", update_id=update_id)


def test_flood_says_slow_down_once_per_flood_and_lets_danger_through() -> None:
    from dialogs.ratelimit import RateLimiter

    now = [0.0]
    limiter = RateLimiter(burst=4, per_second=0.1, clock=lambda: now[0])

    def urgent(inbound: Inbound) -> bool:
        return "жить" in (inbound.text or "")

    flood = stages.Flood(limiter, urgent, default_catalogue(), "ru")
    assert [flood(_text(w)) for w in ("раз", "два", "ещё", "и ещё")] == [None] * 4  # the burst
    warned = flood(_text("три"))
    assert warned is not None and len(warned) == 1
    assert warned[0].text == default_catalogue().t("flood.wait", "ru")
    assert warned[0].to == Address("console", "c1")
    assert flood(_text("четыре")) == []  # quiet after the one word
    now[0] += 10.0  # one token frees mid-flood: used, and no second "slow down"
    assert flood(_text("пять")) is None
    assert flood(_text("шесть")) == []
    # Danger is never held back, however hard the child is flooding.
    assert flood(_text("я не хочу жить")) is None


def test_danger_that_comes_first_when_the_burst_is_spent_leaves_the_slow_down_to_the_flood(
) -> None:
    """The danger lane handles a flooder's danger message before their older messages, so it
    can be the first refused by the bucket. It gets through, and the flood that follows still
    hears "slow down" once (`make bench ARGS="--flood"` saw the flooder never told)."""
    from dialogs.ratelimit import RateLimiter

    now = [0.0]
    limiter = RateLimiter(burst=2, per_second=0.1, clock=lambda: now[0])

    def urgent(inbound: Inbound) -> bool:
        return "жить" in (inbound.text or "")

    flood = stages.Flood(limiter, urgent, default_catalogue(), "ru")
    assert [flood(_text(w)) for w in ("раз", "два")] == [None, None]  # the burst
    assert flood(_text("я не хочу жить")) is None  # danger, handled first: through
    warned = flood(_text("три"))
    assert warned is not None and [o.text for o in warned] == [
        default_catalogue().t("flood.wait", "ru")]
    assert flood(_text("четыре")) == []
    assert flood(_text("мне больше не хочется жить")) is None  # danger mid-flood: through
    assert flood(_text("пять")) == []  # and no second "slow down" after it


def test_the_flood_limit_taken_at_intake_is_kept_when_handled_and_not_spent_on_retries(
) -> None:
    """`admit` (intake, before the journal) refuses what is beyond the flood's one word,
    stamps the rest with their verdict, and the handling keeps that verdict instead of counting
    the update a second time. The platform offering an update again (the journal write
    failed) gets it the verdict it had: retries do not use up a child's tokens."""
    from dialogs.ratelimit import RateLimiter

    limiter = RateLimiter(burst=2, per_second=0.0, clock=lambda: 0.0)
    flood = stages.Flood(limiter, lambda i: "жить" in (i.text or ""), default_catalogue(), "ru")
    first = flood.admit(_text("раз", "1"))
    assert first is not None and first.flood == "ok"
    for _ in range(5):  # offered again and again: the same verdict, no token spent
        again = flood.admit(_text("раз", "1"))
        assert again is not None and again.flood == "ok"
    second = flood.admit(_text("два", "2"))
    assert second is not None and second.flood == "ok", "the burst's second token was kept"
    warned = flood.admit(_text("три", "3"))
    assert warned is not None and warned.flood == "warn"
    assert flood.admit(_text("четыре", "4")) is None, "refused: not journalled"
    assert flood.admit(_text("четыре", "4")) is None, "and again when offered again"
    danger = flood.admit(_text("я не хочу жить", "5"))
    assert danger is not None and danger.flood == "ok", "danger always gets through"
    # Handled later: the stamped verdict stands (the bucket is empty, yet "ok" goes on).
    assert flood(first) is None and flood(second) is None
    said = flood(warned)
    assert said is not None and [o.text for o in said] == [
        default_catalogue().t("flood.wait", "ru")]
    assert flood(danger) is None


async def test_repeat_uses_up_an_update_taken_before_and_passes_a_new_one() -> None:
    taken: set[tuple[str, str]] = set()

    class Inbox:
        async def take(self, channel: str, update_id: str) -> bool:
            if (channel, update_id) in taken:
                return False
            taken.add((channel, update_id))
            return True

    repeat = stages.Repeat()
    inbox: Any = Inbox()
    assert await repeat(inbox, _text("привет", "41")) is False  # new: the turn goes on
    assert await repeat(inbox, _text("привет", "41")) is True  # sent again: used up
    assert await repeat(inbox, _text("привет", "42")) is False
    assert await repeat(inbox, _text("без номера")) is False  # the console has no ids
    assert taken == {("console", "41"), ("console", "42")}


def test_a_refused_long_text_is_glanced_at_and_stamped_to_be_read_whole_later() -> None:
    """Intake reads only the beginning of a flooder's long text (`glance`): danger seen there
    gets through at once; a refused text with none seen is stamped `READ` (journalled, read
    whole later) instead of being dropped, and that later read lets it through only for
    danger. The first refused of the flood is read whole at once, so its one "slow down" is
    not spent on a message that needs a person; and one user's texts waiting to be read are
    bounded (beyond, each is read whole at intake)."""
    from dialogs.ratelimit import RateLimiter

    limiter = RateLimiter(burst=1, per_second=0.0, clock=lambda: 0.0)
    read_whole: list[str] = []

    def urgent(inbound: Inbound) -> bool:
        read_whole.append(inbound.text or "")
        return "жить" in (inbound.text or "")

    def glance(inbound: Inbound) -> bool | None:
        text = inbound.text or ""
        if "жить" in text[:20]:
            return True
        return None if len(text) > 20 else "жить" in text

    flood = stages.Flood(limiter, urgent, default_catalogue(), "ru", glance=glance)
    flood.UNREAD_MAX = 2
    story = "мы гуляли в парке " * 5
    first = flood.admit(_text(story + "раз", "1"))
    assert first is not None and first.flood == "ok" and read_whole == []
    # The first refused: read whole now. Danger in its tail: let through, and the word kept.
    danger_tail = flood.admit(_text(story + "я не хочу жить", "2"))
    assert danger_tail is not None and danger_tail.flood == "ok"
    warned = flood.admit(_text(story + "два", "3"))
    assert warned is not None and warned.flood == "warn", "the flood still hears it once"
    read_whole.clear()
    later = [flood.admit(_text(story + end, str(n)))
             for n, end in ((4, "три"), (5, "мне не хочется жить"))]
    assert [i.flood if i else None for i in later] == [stages.READ, stages.READ]
    assert read_whole == [], "intake did not read them whole"
    assert flood.admit(_text(story + "три", "4")) == later[0], "offered again: the same"
    # Beyond the bound: read whole at intake, dropped unless danger.
    assert flood.admit(_text(story + "четыре", "6")) is None
    beyond = flood.admit(_text(story + "жить не хочу", "7"))
    assert beyond is not None and beyond.flood == "ok"
    # Danger at the beginning of a long text: through at a glance, never counted.
    head = flood.admit(_text("не хочу жить " + story, "8"))
    assert head is not None and head.flood == "ok"
    # The later read: quiet unless danger, and the bound frees as they are read.
    assert later[0] is not None and later[1] is not None
    assert flood(later[0]) == [] and flood(later[1]) is None
    flood.read(later[0])
    again = flood.admit(_text(story + "пять", "9"))
    assert again is not None and again.flood == stages.READ
    # With no journal (the console: no update id) nothing waits: read whole at once.
    flood.read(again)
    read_whole.clear()
    assert flood(_text(story + "шесть")) == [] and len(read_whole) == 1
    assert flood(_text(story + "не хочу жить")) is None
