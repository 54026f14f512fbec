"""Opening hours of the help line: per weekday, with holidays, in one time zone.

Read from a reviewed data file (`dialogs/data/hours.yaml` by default). Every check converts the
moment to the help line's local wall time with `zoneinfo`, so hours stay right across daylight
saving changes. A day's hours are intervals like "09:00-21:00"; "24:00" ends a day; a night shift
is written as two intervals ("22:00-24:00" one day and "00:00-06:00" the next).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from dialogs.catalogue import Catalogue

DEFAULT_HOURS = Path(__file__).parent / "data" / "hours.yaml"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_INTERVAL = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
# How far ahead the next opening is looked for: long enough for any holiday season.
_HORIZON_DAYS = 60

Interval = tuple[int, int]  # minutes since local midnight: [start, end)


def _interval(text: str, where: str) -> Interval:
    match = _INTERVAL.match(str(text))
    if not match:
        raise ValueError(f"{where}: {text!r} is not an interval like 09:00-21:00")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if h1 > 23 or m1 > 59 or m2 > 59 or end > 24 * 60:
        raise ValueError(f"{where}: {text!r} is not a time of day")
    if end <= start:
        raise ValueError(
            f"{where}: {text!r} ends before it starts; write a night shift as two intervals "
            "(22:00-24:00 and 00:00-06:00 on the next day)"
        )
    return start, end


def _intervals(value: Any, where: str) -> tuple[Interval, ...]:
    if value in (None, "closed", False):
        return ()
    items = [value] if isinstance(value, str) else list(value)
    return tuple(sorted(_interval(item, where) for item in items))


@dataclass(frozen=True)
class OpeningHours:
    """When counsellors are on the desk. `always_open()` is the default for engines and tests
    that do not configure hours."""

    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    weekly: tuple[tuple[Interval, ...], ...] = (((0, 1440),),) * 7
    holidays: dict[date, tuple[Interval, ...]] = field(default_factory=dict)
    # Recurring holidays, the same date every year: (month, day).
    yearly: dict[tuple[int, int], tuple[Interval, ...]] = field(default_factory=dict)
    zone_label: dict[str, str] = field(default_factory=dict)

    @classmethod
    def always_open(cls) -> OpeningHours:
        return cls()

    @property
    def always(self) -> bool:
        return (
            all(day == ((0, 1440),) for day in self.weekly)
            and not self.holidays
            and not self.yearly
        )

    def day_hours(self, day: date) -> tuple[Interval, ...]:
        """The intervals of one local date: a dated holiday, else a yearly one, else the week."""
        if day in self.holidays:
            return self.holidays[day]
        if (day.month, day.day) in self.yearly:
            return self.yearly[(day.month, day.day)]
        return self.weekly[day.weekday()]

    def local(self, moment: datetime) -> datetime:
        if moment.tzinfo is None:
            raise ValueError("opening hours need an aware datetime")
        return moment.astimezone(self.zone)

    def is_open(self, moment: datetime) -> bool:
        here = self.local(moment)
        minute = here.hour * 60 + here.minute
        return any(start <= minute < end for start, end in self.day_hours(here.date()))

    def _at(self, day: date, minute: int) -> datetime:
        """The first real moment the local wall clock shows `minute` (or later) on `day`.

        On a fall-back day a wall time happens twice: the first is meant. On a spring-forward
        day a wall time in the gap never happens: the desk opens when the clock jumps past it.
        """
        if minute >= 1440:
            return self._at(day + timedelta(days=1), 0)
        naive = datetime.combine(day, time(minute // 60, minute % 60))
        moments = sorted(
            {naive.replace(tzinfo=self.zone, fold=fold).astimezone(UTC) for fold in (0, 1)}
        )
        for moment in moments:
            if moment.astimezone(self.zone).replace(tzinfo=None) == naive:
                return moment.astimezone(self.zone)
        moment = moments[0]
        while moment.astimezone(self.zone).replace(tzinfo=None) < naive:
            moment += timedelta(minutes=1)
        return moment.astimezone(self.zone)

    def next_open(self, moment: datetime) -> datetime | None:
        """When the desk opens next (local time), `moment` itself if open; None if never soon."""
        if self.is_open(moment):
            return self.local(moment)
        here = self.local(moment)
        for offset in range(_HORIZON_DAYS + 1):
            day = here.date() + timedelta(days=offset)
            for start, _end in self.day_hours(day):
                candidate = self._at(day, start)
                if candidate > here:
                    return candidate
        return None

    def closes_at(self, moment: datetime) -> datetime | None:
        """When the current opening interval ends (local time); None when closed."""
        here = self.local(moment)
        minute = here.hour * 60 + here.minute
        for start, end in self.day_hours(here.date()):
            if start <= minute < end:
                return self._at(here.date(), end)
        return None

    def describe_next(self, moment: datetime, locale: str, catalogue: Catalogue) -> str:
        """When counsellors are back, in the child's language: "tomorrow at 09:00 (MSK)"."""
        nxt = self.next_open(moment)
        if nxt is None:
            return catalogue.t("hours.back.unknown", locale)
        today = self.local(moment).date()
        clock = f"{nxt:%H:%M}"
        days = (nxt.date() - today).days
        if days == 0:
            when = catalogue.t("hours.back.today", locale, time=clock)
        elif days == 1:
            when = catalogue.t("hours.back.tomorrow", locale, time=clock)
        elif days < 7:
            weekday = catalogue.t(f"hours.day.{DAYS[nxt.weekday()]}", locale)
            when = catalogue.t("hours.back.weekday", locale, day=weekday, time=clock)
        else:
            when = catalogue.t("hours.back.date", locale, date=f"{nxt:%d.%m}", time=clock)
        label = self.zone_label.get(locale) or self.zone_label.get("en") or self.zone.key
        return f"{when} ({label})"


def load_hours(path: Path | None = None) -> OpeningHours:
    """Read opening hours from YAML; a malformed file raises ValueError naming the problem."""
    source = path or DEFAULT_HOURS
    with source.open(encoding="utf-8") as fh:
        raw: dict[str, Any] = yaml.safe_load(fh) or {}
    try:
        zone = ZoneInfo(str(raw.get("timezone", "UTC")))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"{source}: unknown time zone {raw.get('timezone')!r}") from exc
    week = raw.get("weekly") or {}
    unknown = set(week) - set(DAYS)
    if unknown:
        raise ValueError(f"{source}: unknown weekdays {sorted(unknown)}; use {', '.join(DAYS)}")
    weekly = tuple(_intervals(week.get(day), f"{source} weekly.{day}") for day in DAYS)
    holidays: dict[date, tuple[Interval, ...]] = {}
    yearly: dict[tuple[int, int], tuple[Interval, ...]] = {}
    for key, value in (raw.get("holidays") or {}).items():
        where = f"{source} holidays.{key}"
        hours = _intervals(value, where)
        if isinstance(key, date):
            holidays[key] = hours
            continue
        text = str(key)
        try:
            if len(text) == 5 and text[2] == "-":  # MM-DD: every year
                date(2000, int(text[:2]), int(text[3:]))  # 2000 is a leap year: 02-29 is fine
                yearly[(int(text[:2]), int(text[3:]))] = hours
            else:
                holidays[date.fromisoformat(text)] = hours
        except ValueError as exc:
            raise ValueError(f"{where}: use YYYY-MM-DD or MM-DD") from exc
    label = raw.get("zone_label") or {}
    return OpeningHours(
        zone=zone,
        weekly=weekly,
        holidays=holidays,
        yearly=yearly,
        zone_label={str(k): str(v) for k, v in label.items()},
    )


__all__ = ["DEFAULT_HOURS", "OpeningHours", "load_hours"]
