"""The supervisors' figures for today: who holds what, waiting and first-response times, and
the counts behind the charts (drawn as plain SVG by the template: no chart library, no script).

If the reports module of the desk operations (`dialogs.reports`) is present, its figures are
preferred; these are computed from the repositories, read only.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from storage.db import Database
from storage.models import Case
from storage.repositories import Repos

RISKS = ("critical", "high", "medium", "low")


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
    by_risk: list[Bar] = field(default_factory=list)
    by_category: list[Bar] = field(default_factory=list)
    by_hour: list[Bar] = field(default_factory=list)
    by_outcome: list[Bar] = field(default_factory=list)


def start_of_day(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


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
    risks = Counter(c.risk for c in opened)
    hours = Counter(c.created_at.astimezone(UTC).hour for c in opened)
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
        by_risk=[Bar(r, risks.get(r, 0), r) for r in RISKS],
        by_category=[
            Bar(k, v, k) for k, v in Counter(c.category for c in opened).most_common()
        ],
        by_hour=[Bar(f"{h:02d}", hours.get(h, 0)) for h in range(24)],
        by_outcome=[
            Bar(k, v, k) for k, v in Counter(c.outcome or "?" for c in closed).most_common()
        ],
    )


async def today(db: Database, now: datetime) -> DayFigures:
    since = start_of_day(now)
    async with db.session() as s:
        repos = Repos(s)
        cases = await repos.board.touched_since(since)
        stats = await repos.cases.queue_stats()
    return figures(cases, sum(n for n, _ in stats.values()), since)
