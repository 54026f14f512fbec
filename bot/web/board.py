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

from storage.db import Database
from storage.models import Case
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
