"""Opening hours: weekday intervals, holidays, time zones and daylight saving, at the edges."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dialogs.catalogue import default_catalogue
from dialogs.hours import OpeningHours, load_hours

Hours = Callable[[str], OpeningHours]

MOSCOW = """
timezone: Europe/Moscow
zone_label: {ru: "по московскому времени", en: "Moscow time"}
weekly:
  mon: ["09:00-21:00"]
  tue: ["09:00-21:00"]
  wed: ["09:00-21:00"]
  thu: ["09:00-21:00"]
  fri: ["09:00-13:00", "14:00-21:00"]
  sat: ["10:00-18:00"]
  sun: closed
holidays:
  "2026-12-31": ["09:00-16:00"]
  "01-01": closed
"""


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, sec: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, sec, tzinfo=UTC)


def test_weekday_edges_in_moscow(hours_yaml: Hours) -> None:
    hours = hours_yaml(MOSCOW)
    # Tuesday 2026-12-01; Moscow is UTC+3 all year.
    assert not hours.is_open(utc(2026, 12, 1, 5, 59, 59))  # 08:59:59
    assert hours.is_open(utc(2026, 12, 1, 6, 0))  # 09:00 opens
    assert hours.is_open(utc(2026, 12, 1, 17, 59, 59))  # 20:59:59
    assert not hours.is_open(utc(2026, 12, 1, 18, 0))  # 21:00 closes
    # A lunch break on Friday, and no desk on Sunday.
    assert not hours.is_open(utc(2026, 12, 4, 10, 30))  # 13:30
    assert hours.is_open(utc(2026, 12, 4, 11, 0))  # 14:00
    assert not hours.is_open(utc(2026, 12, 6, 9, 0))  # Sunday noon


def test_next_opening_over_the_weekend_and_holidays(hours_yaml: Hours) -> None:
    hours = hours_yaml(MOSCOW)
    saturday_evening = utc(2026, 12, 5, 15, 0)  # 18:00 Saturday: just closed
    opens = hours.next_open(saturday_evening)
    assert opens is not None and opens.astimezone(UTC) == utc(2026, 12, 7, 6, 0)  # Mon 09:00
    assert hours.next_open(utc(2026, 12, 1, 7, 0)) == utc(2026, 12, 1, 7, 0)  # open: now
    # New Year's Eve closes early, New Year's Day (every year) is closed.
    assert not hours.is_open(utc(2026, 12, 31, 13, 0))  # 16:00
    assert hours.is_open(utc(2026, 12, 31, 12, 59))
    eve = hours.next_open(utc(2026, 12, 31, 13, 0))
    assert eve is not None and eve.astimezone(UTC) == utc(2027, 1, 2, 7, 0)  # Sat 10:00
    assert hours.closes_at(utc(2026, 12, 31, 10, 0)) == utc(2026, 12, 31, 13, 0)


def test_the_child_hears_when_counsellors_are_back_in_their_language(hours_yaml: Hours) -> None:
    hours, texts = hours_yaml(MOSCOW), default_catalogue()
    late_tuesday = utc(2026, 12, 1, 19, 0)  # 22:00
    assert hours.describe_next(late_tuesday, "ru", texts) == (
        "завтра в 09:00 (по московскому времени)"
    )
    assert hours.describe_next(late_tuesday, "en", texts) == "tomorrow at 09:00 (Moscow time)"
    early = utc(2026, 12, 1, 3, 0)  # 06:00
    assert hours.describe_next(early, "ru", texts).startswith("сегодня в 09:00")
    sunday = utc(2026, 12, 5, 16, 0)  # Saturday 19:00 -> Monday
    assert hours.describe_next(sunday, "ru", texts).startswith("в понедельник в 09:00")
    assert hours.describe_next(sunday, "en", texts).startswith("on Monday at 09:00")


LONDON = """
timezone: Europe/London
zone_label: {en: "UK time"}
weekly: {mon: ["09:00-17:00"], tue: ["09:00-17:00"], wed: ["09:00-17:00"],
         thu: ["09:00-17:00"], fri: ["09:00-17:00"]}
"""


def test_london_across_the_clocks_going_forward(hours_yaml: Hours) -> None:
    """British Summer Time starts on Sunday 2026-03-29: 09:00 is 09:00 UTC on Friday and
    08:00 UTC on Monday."""
    hours = hours_yaml(LONDON)
    assert not hours.is_open(utc(2026, 3, 27, 8, 30))  # Friday 08:30 GMT
    assert hours.is_open(utc(2026, 3, 27, 9, 0))
    assert hours.is_open(utc(2026, 3, 30, 8, 0))  # Monday 09:00 BST
    assert not hours.is_open(utc(2026, 3, 30, 7, 59))
    assert not hours.is_open(utc(2026, 3, 30, 16, 0))  # 17:00 BST: closed
    opens = hours.next_open(utc(2026, 3, 27, 17, 0))  # Friday 17:00 GMT
    assert opens is not None and opens.astimezone(UTC) == utc(2026, 3, 30, 8, 0)
    assert opens.hour == 9 and opens.utcoffset() == timedelta(hours=1)


def test_london_across_the_clocks_going_back(hours_yaml: Hours) -> None:
    """BST ends on Sunday 2026-10-25: Friday 09:00 is 08:00 UTC, Monday 09:00 is 09:00 UTC."""
    hours = hours_yaml(LONDON)
    assert hours.is_open(utc(2026, 10, 23, 8, 0))
    assert not hours.is_open(utc(2026, 10, 26, 8, 30))  # Monday 08:30 GMT
    opens = hours.next_open(utc(2026, 10, 23, 16, 0))  # Friday 17:00 BST
    assert opens is not None and opens.astimezone(UTC) == utc(2026, 10, 26, 9, 0)


NEW_YORK_NIGHTS = """
timezone: America/New_York
weekly:
  sat: ["22:00-24:00"]
  sun: ["00:00-01:00", "02:30-05:00"]
"""


def test_new_york_night_shift_and_a_skipped_hour(hours_yaml: Hours) -> None:
    """On 2026-03-08 at 02:00 EST the clocks jump to 03:00 EDT: a shift "from 02:30" starts
    when the clock jumps, 07:00 UTC; the night shift over midnight is two intervals."""
    hours = hours_yaml(NEW_YORK_NIGHTS)
    assert hours.is_open(utc(2026, 3, 8, 3, 30))  # Saturday 22:30 EST
    assert hours.is_open(utc(2026, 3, 8, 5, 59))  # Sunday 00:59 EST
    assert not hours.is_open(utc(2026, 3, 8, 6, 0))  # 01:00 EST
    assert not hours.is_open(utc(2026, 3, 8, 6, 59))  # 01:59 EST
    assert hours.is_open(utc(2026, 3, 8, 7, 0))  # 03:00 EDT
    opens = hours.next_open(utc(2026, 3, 8, 6, 0))
    assert opens is not None and opens.astimezone(UTC) == utc(2026, 3, 8, 7, 0)
    assert hours.closes_at(utc(2026, 3, 8, 7, 0)) == utc(2026, 3, 8, 9, 0)  # 05:00 EDT


def test_new_york_repeated_hour_in_november(hours_yaml: Hours) -> None:
    """On 2026-11-01 01:00-02:00 happens twice; a shift from 00:00 to 01:00 ends at the
    first 01:00 (05:00 UTC) and is closed in the repeated hour."""
    hours = hours_yaml(NEW_YORK_NIGHTS)
    assert hours.is_open(utc(2026, 11, 1, 4, 59))  # 00:59 EDT
    assert not hours.is_open(utc(2026, 11, 1, 5, 0))  # 01:00 EDT
    assert not hours.is_open(utc(2026, 11, 1, 6, 30))  # 01:30 EST, the second time round
    assert hours.is_open(utc(2026, 11, 1, 7, 30))  # 02:30 EST


def test_a_zone_without_daylight_saving_far_from_moscow(hours_yaml: Hours) -> None:
    hours = hours_yaml('timezone: Asia/Vladivostok\nweekly: {mon: ["09:00-18:00"]}\n')
    # Monday 2026-06-01 09:00 in Vladivostok (UTC+10) is Sunday 23:00 UTC.
    assert hours.is_open(utc(2026, 5, 31, 23, 0))
    assert not hours.is_open(utc(2026, 6, 1, 8, 0))  # 18:00 there
    opens = hours.next_open(utc(2026, 6, 1, 8, 0))
    assert opens is not None and opens.astimezone(UTC) == utc(2026, 6, 7, 23, 0)
    assert hours.describe_next(utc(2026, 6, 1, 8, 0), "en", default_catalogue()).endswith(
        "(Asia/Vladivostok)"
    )


def test_the_shipped_hours_file_loads() -> None:
    hours = load_hours()
    assert hours.zone.key == "Europe/Moscow" and not hours.always
    assert hours.is_open(utc(2026, 12, 2, 9, 0))  # Wednesday 12:00 Moscow
    assert not hours.is_open(utc(2027, 1, 1, 9, 0))  # New Year's Day


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("timezone: Mars/Olympus\n", "unknown time zone"),
        ('timezone: UTC\nweekly: {mon: ["21:00-09:00"]}\n', "two intervals"),
        ('timezone: UTC\nweekly: {mon: ["9-17"]}\n', "not an interval"),
        ('timezone: UTC\nweekly: {monday: ["09:00-17:00"]}\n', "unknown weekdays"),
        ('timezone: UTC\nholidays: {"31.12": closed}\n', "YYYY-MM-DD"),
    ],
)
def test_a_malformed_hours_file_names_the_problem(
    tmp_path: Path, text: str, complaint: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=complaint):
        load_hours(path)


def test_always_open_by_default() -> None:
    hours = OpeningHours.always_open()
    assert hours.always and hours.is_open(utc(2026, 1, 1, 3, 0))
