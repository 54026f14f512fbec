"""`helpline report` charts: headings in the report's language (Russian by default, English
with --locale en), and nothing cut off at the image's edges."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from dialogs.catalogue import default_catalogue
from dialogs.ports import ReportRow
from dialogs.reports import Report, compute
from dialogs.taxonomy import categories

pytest.importorskip("matplotlib")

ROOT = Path(__file__).resolve().parents[2]
MOSCOW = ZoneInfo("Europe/Moscow")
START, END = date(2026, 11, 2), date(2026, 11, 15)
CYRILLIC = re.compile("[а-яёА-ЯЁ]")
TEXTS = default_catalogue()


def rows() -> list[ReportRow]:
    """Many categories with a few cases each (a long "not drawn" footnote), one with many, and
    times published for waiting only (a "not shown" note under the times chart)."""
    opened = datetime(2026, 11, 3, 9, tzinfo=UTC)
    made: list[ReportRow] = []
    for i, category in enumerate(categories()):
        for k in range(7 if i == 0 else 2):
            made.append(
                ReportRow(
                    category=category,
                    channel=("telegram", "vk", "console")[k % 3],
                    risk=("critical", "high", "medium", "low")[k % 4],
                    status="closed",
                    outcome="advice-given",
                    rating=5 if k % 2 else None,
                    created_at=opened + timedelta(hours=i, minutes=k),
                    taken_at=opened + timedelta(hours=i, minutes=k + 3),
                    first_response_at=None,
                )
            )
    return made


def report(locale: str) -> Report:
    return compute(rows(), START, END, MOSCOW, locale)


def headings(report: Report) -> dict[str, list[str]]:
    """Each chart's title, axis labels, legend and notes."""
    found: dict[str, list[str]] = {}
    for name, fig in report.figures():
        texts: list[str] = []
        for ax in fig.axes:
            texts += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
            texts += [t.get_text() for t in ax.texts]
            legend = ax.get_legend()
            if legend is not None:
                texts += [t.get_text() for t in legend.get_texts()]
        found[name] = [t for t in texts if t]
    return found


def test_russian_headings_in_russian() -> None:
    found = headings(report("ru"))
    assert set(found) == {"category", "chi_group", "platform", "week", "risk", "outcome",
                          "rating", "times"}
    for name, texts in found.items():
        title, *_ = texts
        assert CYRILLIC.search(title), (name, title)
        assert any(CYRILLIC.search(t) for t in texts[1:]), (name, texts)
    assert found["category"][0].startswith(TEXTS.t("stats.table.category", "ru"))
    assert TEXTS.t("stats.chart.contacts", "ru") in found["category"][1]
    times = found["times"]
    assert times[0].startswith(TEXTS.t("stats.chart.times", "ru"))
    assert TEXTS.t("stats.chart.minutes", "ru") in times
    assert TEXTS.t("stats.chart.median", "ru") in times
    assert "Не показаны" in times[1] and TEXTS.t("stats.time.first_response", "ru") in times[1]


def test_english_headings_in_english() -> None:
    found = headings(report("en"))
    for name, texts in found.items():
        assert not [t for t in texts if CYRILLIC.search(t)], (name, texts)
    assert found["category"][0].startswith("Contacts by category, 2026-11-02 .. 2026-11-15")
    assert found["times"][0].startswith("Waiting and first response")
    assert {"minutes", "median", "p90"} <= set(found["times"])


@pytest.mark.parametrize("locale", ["ru", "en"])
def test_nothing_is_cut_off_at_the_edges(locale: str, tmp_path: Path) -> None:
    from matplotlib.image import imread

    written = report(locale).write_charts(tmp_path)
    assert len(written) == 8
    for path in written:
        pixels = imread(path)
        edges = [pixels[:3], pixels[-3:], pixels[:, :3], pixels[:, -3:]]
        # A text or bar that ran past the figure would be cut there and touch the edge.
        assert all(edge[..., :3].min() > 0.97 for edge in edges), path.name


def test_the_default_locale_reaches_the_charts_and_en_gives_english(tmp_path: Path) -> None:
    """The report's locale (the charts' language, tested above) is the default locale, Russian,
    unless --locale says otherwise: the CSV's labels, drawn from the same report, show it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "VK_"))}
    env.update(
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'report.db'}",
        KEYS_FILE=str(tmp_path / "keys.json"),
        EVIDENCE_DIR=str(tmp_path / "evidence"),
    )
    env.pop("DEFAULT_LOCALE", None)
    for extra, label in (([], "Груминг"), (["--locale", "en"], "Grooming")):
        out = tmp_path / ("-".join(extra) or "default")
        done = subprocess.run(
            [sys.executable, "-m", "bot", "report", "--from", "2026-11-02", "--to", "2026-11-15",
             "--out", str(out), *extra],
            capture_output=True, text=True, env=env, cwd=ROOT, timeout=120,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        folder = out / "2026-11-02_2026-11-15"
        assert label in (folder / "category.csv").read_text(encoding="utf-8")
        assert (folder / "category.png").exists() and (folder / "times.png").exists()
