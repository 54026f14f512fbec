"""The report on known data: its figures, and that no count under 5 can be read or worked out."""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from dialogs.reports import Report, build_report, percentile, suppress
from storage.db import Database
from storage.repositories import Repos

MOSCOW = ZoneInfo("Europe/Moscow")
START, END = date(2026, 11, 2), date(2026, 11, 15)  # ISO weeks 45 and 46


def utc(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


async def add_case(
    repos: Repos,
    *,
    created: datetime,
    category: str,
    risk: str,
    channel: str,
    outcome: str | None = None,
    rating: int | None = None,
    wait: int | None = None,
    first_response: int | None = None,
) -> None:
    case = await repos.cases.open(
        user_id=None,  # type: ignore[arg-type]
        channel=channel,
        category=category,
        risk=risk,
        risk_rank=["critical", "high", "medium", "low"].index(risk),
        answers={},
        signals={},
    )
    case.created_at = created
    case.status = "closed" if outcome else "active"
    case.outcome, case.rating = outcome, rating
    case.taken_at = created + timedelta(minutes=wait) if wait is not None else None
    if first_response is not None:
        case.first_response_at = created + timedelta(minutes=first_response)


async def known_cases(db: Database) -> None:
    """16 cases in the period (and two just outside it), with known facts:
    0-6 cyberbullying (medium; telegram x4, vk x3), 7-8 impersonation (low, telegram),
    9-14 grooming (high, vk), 15 self-harm (critical, console, still open).
    0-9 in week 45 (0 at the very first minute), 10-15 in week 46 (15 at the very last).
    Outcomes: 0-9 advice, 10-14 emotional support. Ratings: 0-5 five, 6-7 four.
    Waiting: case i was taken after i+1 minutes. First responses: only 0-3."""
    async with db.session() as s:
        repos = Repos(s)
        for i in range(16):
            if i < 7:
                category, risk, channel = "cyberbullying", "medium", "telegram" if i < 4 else "vk"
            elif i < 9:
                category, risk, channel = "impersonation", "low", "telegram"
            elif i < 15:
                category, risk, channel = "grooming", "high", "vk"
            else:
                category, risk, channel = "self-harm", "critical", "console"
            if i == 0:
                created = utc(11, 1, 21)  # Monday 2 November, 00:00 in Moscow
            elif i == 15:
                created = utc(11, 15, 20, 59)  # Sunday 15 November, 23:59 in Moscow
            elif i < 10:
                created = utc(11, 3, i)
            else:
                created = utc(11, 10, i)
            await add_case(
                repos,
                created=created,
                category=category,
                risk=risk,
                channel=channel,
                outcome=None if i == 15 else "advice-given" if i < 10 else "emotional-support",
                rating=5 if i < 6 else 4 if i < 8 else None,
                wait=i + 1,
                first_response=2 if i < 4 else None,
            )
        for outside in (utc(11, 1, 20, 59), utc(11, 15, 21)):  # 23:59 on 1 Nov, 00:00 on 16 Nov
            await add_case(repos, created=outside, category="scams", risk="low", channel="vk")


async def the_report(db: Database) -> Report:
    await known_cases(db)
    return await build_report(db, START, END, zone=MOSCOW, locale="en")


def test_small_counts_are_hidden_and_cannot_be_worked_out() -> None:
    assert suppress({"a": 7, "b": 2}) == {"a": "x", "b": "<5"}
    assert suppress({"a": 7, "b": 2, "c": 3}) == {"a": "7", "b": "<5", "c": "<5"}
    assert suppress({"a": 0, "b": 9, "c": 5}) == {"a": "0", "b": "9", "c": "5"}
    assert suppress({"a": 9, "b": 6, "c": 4}) == {"a": "9", "b": "x", "c": "<5"}
    assert suppress({"a": 4}) == {"a": "<5"}


def test_percentile_is_nearest_rank() -> None:
    assert percentile([float(n) for n in range(1, 11)], 0.9) == 9.0
    assert percentile([float(n) for n in range(16, 0, -1)], 0.9) == 15.0
    assert percentile([3.0], 0.9) == 3.0


async def test_the_figures_on_known_data(db: Database) -> None:
    report = await the_report(db)
    assert report.total == 16
    category = report.table("category").shown
    assert (category["cyberbullying"], category["grooming"]) == ("7", "6")
    assert (category["impersonation"], category["self-harm"]) == ("<5", "<5")
    assert category["scams"] == "0", "cases outside the local dates are not counted"
    groups = report.table("chi_group").shown
    assert groups == {
        **dict.fromkeys(groups, "0"),
        "bullying": "9",
        "online-sexual-abuse-and-exploitation": "x",  # 6: would reveal mental-health's 1
        "mental-health": "<5",
    }
    assert report.table("platform").shown == {"console": "<5", "telegram": "x", "vk": "9"}
    assert report.table("week").shown == {"2026-W45": "10", "2026-W46": "6"}
    assert report.table("risk").shown == {
        "critical": "<5",
        "high": "6",
        "medium": "7",
        "low": "<5",
    }
    outcome = report.table("outcome").shown
    assert (outcome["advice-given"], outcome["emotional-support"], outcome["open"]) == (
        "10",
        "x",
        "<5",
    )
    assert report.table("rating").shown == {
        "1": "0",
        "2": "0",
        "3": "0",
        "4": "<5",
        "5": "x",
        "none": "8",
    }
    assert report.rating_n == 8 and report.rating_mean == 4.75
    waiting, first = report.times
    assert (waiting.n, waiting.median, waiting.p90) == (16, 8.5, 15.0)
    assert first.n == 4 and first.median is None and not first.published


async def test_print_csv_and_charts_never_show_a_small_count(db: Database, tmp_path: Path) -> None:
    report = await the_report(db)
    text = report.text()
    assert "Contacts (cases opened): 16" in text
    assert "Self-harm" in text and "Online sexual abuse and exploitation" in text
    lines = {line.split()[0]: line.split()[-1] for line in text.splitlines() if line.strip()}
    assert lines["Impersonation"] == "<5" and lines["Cyberbullying"] == "7"
    assert "8.5 / 15.0" in text and "not shown (fewer than 5)" in text and "4.8 (n=8)" in text
    written = report.write_csv(tmp_path) + report.write_charts(tmp_path)
    names = {p.name for p in written}
    assert {"category.csv", "chi_group.csv", "platform.csv", "week.csv", "risk.csv"} <= names
    assert {"outcome.csv", "rating.csv", "times.csv", "category.png", "times.png"} <= names
    with (tmp_path / "category.csv").open(encoding="utf-8") as fh:
        rows = {r["key"]: r["contacts"] for r in csv.DictReader(fh)}
    assert rows["cyberbullying"] == "7" and rows["self-harm"] == "<5" and rows["scams"] == "0"
    for path in written:
        if path.suffix == ".csv" and path.name != "times.csv":
            with path.open(encoding="utf-8") as fh:
                counts = {r["contacts"] for r in csv.DictReader(fh)}
            assert not counts & {"1", "2", "3", "4"}, path.name
    with (tmp_path / "times.csv").open(encoding="utf-8") as fh:
        times = {r["measure"]: r for r in csv.DictReader(fh)}
    waiting = times["waiting"]
    assert (waiting["cases"], waiting["median_minutes"], waiting["p90_minutes"]) == (
        "16",
        "8.5",
        "15.0",
    )
    assert times["first_response"]["cases"] == "<5"
    assert times["first_response"]["median_minutes"] == ""
    for path in written:
        if path.suffix == ".png":
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


async def test_an_empty_period(db: Database) -> None:
    report = await build_report(db, date(2020, 1, 1), date(2020, 1, 7), zone=MOSCOW)
    assert report.total == 0 and report.times[0].n == 0
    assert "Contacts (cases opened): 0" in report.text()
