"""The supervisors' figures for today (from local midnight in the help line's time zone): how
many cases opened, wait, were taken and closed, and the exact waiting and first-response times,
read from the repositories. The charts beside them are the report's (`dialogs.reports`), with
its small-count suppression, drawn as plain SVG by the template: no chart library, no script.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo

from dialogs.taxonomy import Risk
from storage.db import Database
from storage.models import Case
from storage.repos.reads import ReadRepo
from storage.repositories import Repos


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value: int
    key: str = ""


@dataclass
class DayFigures:
    since: datetime
    opened: int = 0
    waiting_now: int = 0
    taken: int = 0
    closed: int = 0
    wait_median: float | None = None  # minutes
    wait_max: float | None = None
    first_median: float | None = None
    first_max: float | None = None
    by_hour: list[Bar] = field(default_factory=list)


def start_of_day(now: datetime, zone: tzinfo = UTC) -> datetime:
    """Local midnight of `now`'s day in `zone`, as an aware moment."""
    return now.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)


def _minutes(delta: timedelta) -> float:
    return max(0.0, delta.total_seconds() / 60)


def figures(cases: Sequence[Case], waiting_now: int, since: datetime) -> DayFigures:
    """Today's figures from the cases opened, taken or closed since `since`."""
    opened = [c for c in cases if c.created_at >= since]
    taken = [c for c in cases if c.taken_at is not None and c.taken_at >= since]
    closed = [c for c in cases if c.closed_at is not None and c.closed_at >= since]
    waits = [_minutes(c.taken_at - c.created_at) for c in taken if c.taken_at is not None]
    firsts = [
        _minutes(c.first_response_at - c.created_at)
        for c in cases
        if c.first_response_at is not None and c.first_response_at >= since
    ]
    hours = Counter(c.created_at.astimezone(since.tzinfo).hour for c in opened)
    return DayFigures(
        since=since,
        opened=len(opened),
        waiting_now=waiting_now,
        taken=len(taken),
        closed=len(closed),
        wait_median=statistics.median(waits) if waits else None,
        wait_max=max(waits) if waits else None,
        first_median=statistics.median(firsts) if firsts else None,
        first_max=max(firsts) if firsts else None,
        by_hour=[Bar(f"{h:02d}", hours.get(h, 0)) for h in range(24)],
    )


async def today(db: Database, now: datetime, zone: tzinfo = UTC) -> DayFigures:
    since = start_of_day(now, zone)
    async with db.session() as s:
        repos = Repos(s)
        cases = await repos.board.touched_since(since)
        stats = await repos.cases.queue_stats()
    return figures(cases, sum(n for n, _ in stats.values()), since)


# ---------------------------------------------------------------------- the live wallboard
@dataclass(frozen=True, slots=True)
class HeldLine:
    id: int
    risk: str
    category: str
    status: str


@dataclass(frozen=True, slots=True)
class Holder:
    """A counsellor on the wallboard: signed in to the console, holding cases, or both."""

    name: str
    supervisor: bool
    signed_in: bool
    cases: tuple[HeldLine, ...]
    held: int  # the cases that count against the limit (the child has not left)
    capacity: int

    @property
    def over(self) -> bool:
        return self.held > self.capacity


@dataclass(frozen=True, slots=True)
class RiskLine:
    risk: str
    waiting: int
    oldest_minutes: int | None


@dataclass(frozen=True, slots=True)
class Clock:
    """A critical case nobody has answered yet, against the first-response target."""

    id: int
    status: str
    owner: str | None
    minutes: int
    over: bool


@dataclass(frozen=True, slots=True)
class Wall:
    holders: tuple[Holder, ...]
    queue: tuple[RiskLine, ...]
    waiting: int
    oldest_minutes: int | None
    clocks: tuple[Clock, ...]
    target_minutes: int
    answered_today: int  # critical cases first answered today
    within_target_today: int
    slowest_today: float | None
    figures: DayFigures

    @property
    def alarms(self) -> int:
        return sum(1 for c in self.clocks if c.over)


def _whole_minutes(delta: timedelta) -> int:
    return max(0, int(delta.total_seconds() // 60))


async def wallboard(
    db: Database, now: datetime, *, zone: tzinfo, target: timedelta, capacity: int
) -> Wall:
    """The help line right now, for supervisors: who is on, the queue by risk, the clocks of
    unanswered critical cases against `target`, and today's figures."""
    since = start_of_day(now, zone)
    async with db.session() as s:
        repos, reads = Repos(s), ReadRepo(s)
        staff = {c.id: c for c in await repos.counsellors.all()}
        online = {p.counsellor_id for p in await reads.signed_in(now)}
        unclosed = await reads.unclosed()
        touched = await repos.board.touched_since(since)
    figures_now = figures(touched, sum(1 for c in unclosed if c.status == "waiting"), since)
    holders: list[Holder] = []
    for cid, person in staff.items():
        mine = [c for c in unclosed if c.owner_id == cid and c.status != "waiting"]
        if cid not in online and not mine:
            continue
        holders.append(
            Holder(
                name=person.name,
                supervisor=person.role == "supervisor",
                signed_in=cid in online,
                cases=tuple(HeldLine(c.id, c.risk, c.category, c.status)
                            for c in mine),
                held=sum(1 for c in mine if c.status == "active"),
                capacity=capacity,
            )
        )
    holders.sort(key=lambda h: (not h.over, -h.held, h.name))
    waiting = [c for c in unclosed if c.status == "waiting"]
    queue = []
    for risk in Risk:
        these = [c for c in waiting if c.risk == risk.value]
        oldest = min((c.created_at for c in these), default=None)
        queue.append(RiskLine(risk.value, len(these),
                              _whole_minutes(now - oldest) if oldest else None))
    oldest_all = min((c.created_at for c in waiting), default=None)
    clocks = tuple(
        Clock(
            id=c.id,
            status=c.status,
            owner=staff[c.owner_id].name if c.owner_id in staff else None,
            minutes=_whole_minutes(now - c.created_at),
            over=now - c.created_at > target,
        )
        for c in unclosed
        if c.risk == Risk.CRITICAL.value and c.first_response_at is None
    )
    answered = [
        c.first_response_at - c.created_at
        for c in touched
        if c.risk == Risk.CRITICAL.value
        and c.first_response_at is not None
        and c.first_response_at >= since
    ]
    return Wall(
        holders=tuple(holders),
        queue=tuple(queue),
        waiting=len(waiting),
        oldest_minutes=_whole_minutes(now - oldest_all) if oldest_all else None,
        clocks=clocks,
        target_minutes=max(1, round(target.total_seconds() / 60)),
        answered_today=len(answered),
        within_target_today=sum(1 for d in answered if d <= target),
        slowest_today=max((_minutes(d) for d in answered), default=None),
        figures=figures_now,
    )
