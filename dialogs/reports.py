"""The help line's report ("risk map"): contacts by category (and CHI group), platform and week,
the risk mix, waiting and first-response times, outcomes and ratings, safe to publish.

Counts under 5 are shown as "<5" so that no child can be singled out. When a table has exactly
one such count, the next smallest count is hidden too ("x"): otherwise the small one could be
worked out from the total. Times are given only over at least 5 cases. Charts draw only the
counts that are shown as numbers and name the rest in a footnote. The charts' headings, labels
and notes are in the report's locale (the catalogue's `stats.*` texts).
"""

from __future__ import annotations

import csv
import math
import statistics
import textwrap
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from dialogs.catalogue import default_catalogue
from dialogs.ports import ReportRow, UnitOfWork
from dialogs.taxonomy import (
    Risk,
    categories,
    category_chi_group,
    category_label,
    chi_group_label,
    chi_groups,
    outcome_label,
    outcomes,
    risks,
)

MIN_COUNT = 5
SMALL = "<5"
HIDDEN = "x"
OPEN = "open"
NO_RATING = "none"
# A chart's footnote is wrapped at this many characters, so that it fits under the chart.
NOTE_WIDTH = 100

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def tr(key: str, locale: str, **values: object) -> str:
    """A report text in the report's locale."""
    return default_catalogue().t(f"stats.{key}", locale, parent=False, **values)


def suppress(counts: Mapping[str, int]) -> dict[str, str]:
    """Counts as they may be published: 1..4 become "<5"; if that leaves exactly one small
    count in the table, the next smallest count is hidden as well (secondary suppression)."""
    shown = {key: SMALL if 0 < n < MIN_COUNT else str(n) for key, n in counts.items()}
    small = [key for key, n in counts.items() if 0 < n < MIN_COUNT]
    if len(small) == 1:
        others = sorted(
            (n, key) for key, n in counts.items() if n >= MIN_COUNT and key not in small
        )
        if others:
            shown[others[0][1]] = HIDDEN
    return shown


def shown_total(total: int) -> str:
    return SMALL if 0 < total < MIN_COUNT else str(total)


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile: the smallest value with at least `share` of values at or
    below it (p90 of 10 values is the 9th smallest)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True, slots=True)
class Table:
    """One breakdown of the contacts: (key, label, exact count) rows, in display order."""

    name: str
    title: str
    rows: tuple[tuple[str, str, int], ...]

    @property
    def shown(self) -> dict[str, str]:
        return suppress({key: n for key, _label, n in self.rows})


@dataclass(frozen=True, slots=True)
class TimeStat:
    """Minutes from a case's opening to an event, over the cases that reached it."""

    name: str
    title: str
    n: int
    median: float | None
    p90: float | None

    @property
    def published(self) -> bool:
        return self.n >= MIN_COUNT

    def cells(self) -> tuple[str, str, str]:
        if not self.published or self.median is None or self.p90 is None:
            return shown_total(self.n), "", ""
        return str(self.n), f"{self.median:.1f}", f"{self.p90:.1f}"


def _minutes(start: datetime, end: datetime | None) -> float | None:
    if end is None:
        return None
    return max(0.0, (end - start).total_seconds() / 60)


def _times(name: str, title: str, values: Iterable[float | None]) -> TimeStat:
    data = [v for v in values if v is not None]
    if len(data) < MIN_COUNT:
        return TimeStat(name, title, len(data), None, None)
    return TimeStat(name, title, len(data), statistics.median(data), percentile(data, 0.9))


def _week(moment: datetime, zone: ZoneInfo) -> str:
    year, week, _ = moment.astimezone(zone).isocalendar()
    return f"{year}-W{week:02d}"


def _weeks(start: date, end: date) -> list[str]:
    labels: list[str] = []
    day = start
    while day <= end:
        year, week, _ = day.isocalendar()
        label = f"{year}-W{week:02d}"
        if label not in labels:
            labels.append(label)
        day += timedelta(days=1)
    return labels


@dataclass(frozen=True, slots=True)
class Report:
    start: date
    end: date
    zone: str
    locale: str
    total: int
    tables: tuple[Table, ...]
    times: tuple[TimeStat, ...]
    rating_n: int
    rating_mean: float | None

    def table(self, name: str) -> Table:
        return next(t for t in self.tables if t.name == name)

    # ------------------------------------------------------------------ plain text
    def text(self) -> str:
        """The printed summary, for whoever runs `helpline report`: its headings stay in English
        (scripts read it), its row labels follow the locale like the CSV and the charts."""
        loc = "en"
        lines = [
            tr("text.title", loc, start=f"{self.start:%Y-%m-%d}", end=f"{self.end:%Y-%m-%d}",
               zone=self.zone),
            tr("text.total", loc, n=shown_total(self.total)),
            tr("text.small", loc, min=MIN_COUNT, small=SMALL, hidden=HIDDEN),
        ]
        for table in self.tables:
            lines += ["", tr(f"table.{table.name}", loc)]
            shown = table.shown
            width = max((len(label) for _k, label, _n in table.rows), default=10)
            for key, label, _n in table.rows:
                lines.append(f"  {label:<{width}}  {shown[key]:>5}")
        lines += ["", tr("text.times", loc)]
        for stat in self.times:
            n, median, p90 = stat.cells()
            value = f"{median} / {p90}" if median else tr("text.not_shown", loc, min=MIN_COUNT)
            lines.append(f"  {tr(f'time.{stat.name}', loc):<28} n={n:>4}  {value}")
        mean = (
            f"{self.rating_mean:.1f} (n={self.rating_n})"
            if self.rating_mean is not None
            else tr("text.not_shown", loc, min=MIN_COUNT)
        )
        lines.append(f"  {tr('text.rating', loc):<28} {mean}")
        return "\n".join(lines)

    # ------------------------------------------------------------------ CSV
    def write_csv(self, out: Path) -> list[Path]:
        """One CSV per table (key, label, count as published), and one for the times."""
        out.mkdir(parents=True, exist_ok=True)
        written: list[Path] = []
        for table in self.tables:
            path = out / f"{table.name}.csv"
            shown = table.shown
            with path.open("w", newline="", encoding="utf-8") as fh:
                writer = csv.writer(fh)
                writer.writerow(["key", "label", "contacts"])
                for key, label, _n in table.rows:
                    writer.writerow([key, label, shown[key]])
            written.append(path)
        path = out / "times.csv"
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["measure", "cases", "median_minutes", "p90_minutes"])
            for stat in self.times:
                writer.writerow([stat.name, *stat.cells()])
            mean = f"{self.rating_mean:.1f}" if self.rating_mean is not None else ""
            writer.writerow(["rating_mean", shown_total(self.rating_n), mean, ""])
        written.append(path)
        return written

    # ------------------------------------------------------------------ charts
    def figures(self) -> list[tuple[str, Figure]]:
        """The charts as (file name, matplotlib figure), headings in the report's locale."""
        period = f"{self.start:%Y-%m-%d} .. {self.end:%Y-%m-%d}"
        drawn = [(table.name, _table_figure(table, period, self.locale)) for table in self.tables]
        drawn.append(("times", _times_figure(self.times, period, self.locale)))
        return drawn

    def write_charts(self, out: Path) -> list[Path]:
        """PNG bar charts (matplotlib, Agg): only counts shown as numbers are drawn. Saved with
        a tight bounding box: a long label or footnote widens the image, it is never cut."""
        import matplotlib

        matplotlib.use("Agg")
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for name, fig in self.figures():
            path = out / f"{name}.png"
            fig.savefig(path, dpi=110, bbox_inches="tight", pad_inches=0.2)
            written.append(path)
        return written


def _note(text: str) -> str:
    return "\n".join(textwrap.wrap(text, NOTE_WIDTH))


def _table_figure(table: Table, period: str, locale: str) -> Figure:
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    shown = table.shown
    drawn = [(label, n) for key, label, n in table.rows if shown[key].isdigit() and n]
    hidden = [label for key, label, _n in table.rows if not shown[key].isdigit()]
    fig = Figure(figsize=(8, max(2.5, 0.4 * len(drawn) + 1.5)), layout="constrained")
    ax = fig.subplots()
    if drawn:
        labels, values = zip(*drawn, strict=True)
        bars = ax.barh(list(labels)[::-1], list(values)[::-1], color="#4c72b0")
        ax.bar_label(bars, padding=2)
        ax.margins(x=0.08)  # room for the count after the longest bar
    else:
        ax.text(0.5, 0.5, tr("chart.nothing", locale), ha="center", va="center")
    ax.set_title(f"{table.title}, {period}")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    note = (
        "\n" + _note(tr("chart.not_drawn", locale, min=MIN_COUNT, labels=", ".join(hidden)))
        if hidden
        else ""
    )
    ax.set_xlabel(tr("chart.contacts", locale) + note, fontsize=8)
    return fig


def _times_figure(times: Sequence[TimeStat], period: str, locale: str) -> Figure:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 3.5), layout="constrained")
    ax = fig.subplots()
    published = [s for s in times if s.published and s.median is not None]
    if published:
        xs = range(len(published))
        ax.bar([x - 0.2 for x in xs], [s.median or 0 for s in published], 0.4,
               label=tr("chart.median", locale))
        ax.bar([x + 0.2 for x in xs], [s.p90 or 0 for s in published], 0.4,
               label=tr("chart.p90", locale))
        ax.set_xticks(list(xs), [s.title for s in published])
        ax.set_xlim(-0.8, len(published) - 0.2)
        ax.legend()
    else:
        ax.text(0.5, 0.5, tr("chart.too_few", locale, min=MIN_COUNT), ha="center", va="center")
    left_out = [s.title for s in times if s not in published]
    if left_out:
        ax.set_xlabel(_note(tr("chart.not_shown", locale, min=MIN_COUNT,
                               labels=", ".join(left_out))))
    ax.set_ylabel(tr("chart.minutes", locale))
    ax.set_title(f"{tr('chart.times', locale)}, {period}")
    return fig


def compute(
    rows: Sequence[ReportRow], start: date, end: date, zone: ZoneInfo, locale: str = "en"
) -> Report:
    """The report over `rows` (the cases opened from `start` to `end`, both inclusive)."""
    ratings = [r.rating for r in rows if r.rating is not None]
    times = (
        _times(
            "waiting",
            tr("time.waiting", locale),
            (_minutes(r.created_at, r.taken_at) for r in rows),
        ),
        _times(
            "first_response",
            tr("time.first_response", locale),
            (_minutes(r.created_at, r.first_response_at) for r in rows),
        ),
    )
    mean = statistics.fmean(ratings) if len(ratings) >= MIN_COUNT else None
    return Report(
        start=start,
        end=end,
        zone=zone.key,
        locale=locale,
        total=len(rows),
        tables=(*_contact_tables(rows, start, end, zone, locale), *_result_tables(rows, locale)),
        times=times,
        rating_n=len(ratings),
        rating_mean=mean,
    )


def _contact_tables(
    rows: Sequence[ReportRow], start: date, end: date, zone: ZoneInfo, locale: str
) -> tuple[Table, ...]:
    """Who wrote about what, where and when."""
    by_category = Counter(r.category for r in rows)
    known = categories()
    category_rows = [(c, category_label(c, locale), by_category[c]) for c in known]
    category_rows += [(c, c, n) for c, n in sorted(by_category.items()) if c not in known]
    by_group = Counter(category_chi_group(r.category) for r in rows)
    groups = chi_groups() + sorted(g for g in by_group if g not in chi_groups())
    by_channel = Counter(r.channel for r in rows)
    by_week = Counter(_week(r.created_at, zone) for r in rows)
    return (
        Table("category", tr("table.category", locale), tuple(category_rows)),
        Table(
            "chi_group",
            tr("table.chi_group", locale),
            tuple((g, chi_group_label(g, locale), by_group[g]) for g in groups),
        ),
        Table(
            "platform",
            tr("table.platform", locale),
            tuple((c, c, n) for c, n in sorted(by_channel.items())),
        ),
        Table(
            "week",
            tr("table.week", locale),
            tuple((w, w, by_week[w]) for w in _weeks(start, end)),
        ),
    )


def _result_tables(rows: Sequence[ReportRow], locale: str) -> tuple[Table, ...]:
    """How risky the cases were, how they ended and how children rated them."""
    by_risk = Counter(r.risk for r in rows)
    by_outcome = Counter(r.outcome or OPEN for r in rows)
    by_rating = Counter(str(r.rating) if r.rating is not None else NO_RATING for r in rows)
    risk_keys = risks() + sorted(r for r in by_risk if r not in risks())
    outcome_rows = [(o, outcome_label(o, locale), by_outcome[o]) for o in outcomes()]
    outcome_rows.append((OPEN, tr("still_open", locale), by_outcome[OPEN]))
    rating_rows = [(str(n), str(n), by_rating[str(n)]) for n in range(1, 6)]
    rating_rows.append((NO_RATING, tr("not_rated", locale), by_rating[NO_RATING]))
    risk_rows = tuple((r, _risk_label(r, locale), by_risk[r]) for r in risk_keys)
    return (
        Table("risk", tr("table.risk", locale), risk_rows),
        Table("outcome", tr("table.outcome", locale), tuple(outcome_rows)),
        Table("rating", tr("table.rating", locale), tuple(rating_rows)),
    )


def _risk_label(risk: str, locale: str) -> str:
    return Risk(risk).label(locale) if risk in Risk._value2member_map_ else risk


def bounds(start: date, end: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The moments a report covers: local midnight of `start` to local midnight after `end`."""
    first = datetime.combine(start, datetime.min.time(), tzinfo=zone)
    last = datetime.combine(end + timedelta(days=1), datetime.min.time(), tzinfo=zone)
    return first, last


async def build_report(
    db: UnitOfWork, start: date, end: date, *, zone: ZoneInfo, locale: str = "en"
) -> Report:
    """Read the cases opened from `start` to `end` (inclusive, local dates) and count them."""
    if end < start:
        raise ValueError("the report's end date is before its start")
    first, last = bounds(start, end, zone)
    async with db.unit() as repos:
        rows = await repos.desk.report_rows(first, last)
    return compute(rows, start, end, zone, locale)


__all__ = ["HIDDEN", "SMALL", "Report", "Table", "TimeStat", "build_report", "compute", "suppress"]
