"""The one safety policy: every way danger becomes known ends here, and only here is decided
what happens next.

Sources (:class:`Source`): triage of a typed message, an edited message or a photo's caption;
a flow answer the flow declares as danger; "not safe" in a flow; a check-in answered "not
safe" or "talk to a person"; a blocked user writing danger words. Whoever writes (child or
parent, about themselves or someone else), whatever the state (menu, a flow, waiting for a
counsellor, in a live chat), at any hour, the policy decides:

- the emergency contacts of the help line's region, shown at once, always;
- the case: opened, or raised to the danger's risk, with the signals recorded;
- who is alerted: the desk, critical and flagged (paged to on-call after hours);
- honest words: who will answer and when. Nobody on shift: when counsellors are back and
  what to do now, never "calling a counsellor now". In a live chat the counsellor is already
  there: the bot does not cut in, it shows the contacts and flags the line to the counsellor.

The policy decides; the engine carries out the few primitive moves it names (the
:class:`SafetyActions` port), so nothing else decides what happens on danger.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from dialogs.contacts import render as render_contacts
from dialogs.flows.base import TurnContext
from dialogs.hours import OpeningHours
from dialogs.taxonomy import Risk

CHECK_IN_EVERY = timedelta(minutes=30)


class Source(StrEnum):
    """How danger became known."""

    TYPED = "typed"
    EDITED = "edited"
    CAPTION = "caption"
    FLOW_ANSWER = "flow-answer"
    NOT_SAFE = "not-safe"
    CHECK_IN = "check-in"
    BLOCKED = "blocked"


class Where(StrEnum):
    """Where the conversation was when danger became known."""

    MENU = "menu"
    FLOW = "flow"
    WAITING = "waiting"
    LIVE = "live"


@dataclass(frozen=True, slots=True)
class Danger:
    """One piece of news that a child may be in danger."""

    source: Source
    category: str
    risk: Risk = Risk.CRITICAL
    signals: tuple[str, ...] = ()
    about: str = "self"  # "self" or "other" (a friend, a sibling, a parent's child)
    text: str = ""  # what the child wrote, for the counsellor ("" for a button)


@dataclass(frozen=True, slots=True)
class Decision:
    """What the policy decided for one danger (also what tests assert on)."""

    words: tuple[str, ...]  # what the child (or parent) reads, in order
    risk: Risk
    enter_chat: bool  # move the conversation to the counsellor queue / chat
    flags: dict[str, str] = field(default_factory=dict)  # how the desk alert is marked


class SafetyActions(Protocol):
    """The primitive moves the engine makes for the policy, within the turn's transaction."""

    async def open_or_raise(self, danger: Danger, decision: Decision) -> tuple[int, int]:
        """Open a case (or raise the open one) and alert the desk; return (case id, place)."""
        ...

    def where(self) -> Where: ...

    def say(self, text: str) -> None: ...

    def enter_chat(self) -> None: ...


class SafetyPolicy:
    """Decides, for every danger, the contacts, the case, the alert and the words."""

    def __init__(self, *, region: str, hours: Callable[[], OpeningHours]) -> None:
        render_contacts(region, "ru")  # an unknown region fails at start-up, not on danger
        self.region = region
        self._hours = hours

    @property
    def hours(self) -> OpeningHours:
        """The desk's opening hours as configured now."""
        return self._hours()

    def contacts(self, locale: str) -> str:
        return render_contacts(self.region, locale)

    def decide(self, ctx: TurnContext, danger: Danger, where: Where) -> Decision:
        """The pure decision: no storage, so every combination is cheap to test. (After
        hours, the desk notice's own markers page whoever is on call.)"""
        flags = {"danger": danger.source.value}
        if danger.about == "other":
            flags["about"] = "other"
        return Decision(
            words=(self._opening(ctx, danger), self.contacts(ctx.locale)),
            risk=danger.risk,
            enter_chat=where is not Where.LIVE,
            flags=flags,
        )

    def _opening(self, ctx: TurnContext, danger: Danger) -> str:
        if ctx.is_parent:
            return ctx.t("safety.open.parent")
        if danger.about == "other":
            return ctx.t("safety.open.other")
        return ctx.t("safety.open.self")

    def person_words(
        self, ctx: TurnContext, where: Where, case_id: int, position: int, now: datetime
    ) -> str:
        """Who answers and when, honestly."""
        if where is Where.LIVE:
            return ctx.t("safety.person.live")
        if not self.hours.is_open(now):
            back = self.hours.describe_next(now, ctx.locale, ctx.catalogue)
            return ctx.t("safety.person.closed", case=case_id, back=back)
        if position <= 1:
            return ctx.t("safety.person.first", case=case_id)
        return ctx.t("safety.person.queue", case=case_id, position=position)

    async def act(
        self, ctx: TurnContext, actions: SafetyActions, danger: Danger, now: datetime
    ) -> Decision:
        """The one entry point: decide, then have the engine carry it out."""
        where = actions.where()
        decision = self.decide(ctx, danger, where)
        case_id, position = await actions.open_or_raise(danger, decision)
        # One message: the numbers first, then who answers and when (a chat gets one message
        # a second, so three would keep the last words waiting).
        person = self.person_words(ctx, where, case_id, position, now)
        actions.say("\n".join(decision.words) + "\n\n" + person)
        if decision.enter_chat:
            actions.enter_chat()
        return decision

    # ------------------------------------------------------------------ check-in
    def may_check_in(self, data: dict[str, Any], now: datetime) -> bool:
        """At most one check-in per conversation per half hour (in a chat with a counsellor
        the engine flags the line instead of asking)."""
        last = data.get("check_in_at")
        if last is None:
            return True
        try:
            return now - datetime.fromisoformat(str(last)) >= CHECK_IN_EVERY
        except ValueError:
            return True
