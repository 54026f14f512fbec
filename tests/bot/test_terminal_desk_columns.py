"""The terminal desk's tables (`queue`, `all`, `mine`) keep their columns aligned at any case
number and with Cyrillic (or wide) category labels and counsellor names."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest

from bot.app import App
from bot.console import ConsoleDesk, display_width
from bot.delivery import Delivery
from bot.settings import Settings
from dialogs.desk import CaseSummary
from dialogs.engine import DialogEngine
from dialogs.escalation import Desk
from dialogs.taxonomy import category_label
from knowledge_base import KnowledgeBase
from storage.db import Database
from storage.models import Counsellor, utcnow

NUMBERS = (1, 42, 12345, 1234567)
# The last: a category the taxonomy does not know is shown by its key, here in wide characters.
CATEGORIES = ("grooming", "eating-disorder", "dangerous-challenge", "网络欺凌")
OWNERS = ("Анна", "Мария-Александра Кузнецова", "bo", "王小明")  # the last one: wide characters


def cards() -> list[CaseSummary]:
    now = utcnow()
    return [
        CaseSummary(
            id=n,
            category=category,
            risk=risk,
            status=status,
            channel=channel,
            created_at=now - timedelta(minutes=minutes),
            owner=owner,
            waiting_minutes=minutes,
        )
        for n, category, risk, status, channel, owner, minutes in zip(
            NUMBERS,
            CATEGORIES,
            ("critical", "low", "high", "medium"),
            ("waiting", "active", "active", "waiting"),
            ("vk", "telegram", "console", "web"),
            OWNERS,
            (0, 7, 125, 10080),
            strict=True,
        )
    ]


@pytest.fixture
def terminal(
    db: Database,
    kb: KnowledgeBase,
    engine: DialogEngine,
    desk: Desk,
    counsellor: Counsellor,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[ConsoleDesk, io.StringIO]:
    async def listed(*_args: object, **_kwargs: object) -> list[CaseSummary]:
        return cards()

    for method in ("queue", "held", "open_cases"):
        monkeypatch.setattr(desk, method, listed)
    settings = Settings.model_construct(default_locale="ru")
    app = App(settings=settings, db=db, kb=kb, engine=engine, desk=desk, delivery=Delivery(db))
    out = io.StringIO()
    return ConsoleDesk(app, counsellor, out=out), out


def starts(line: str, cells: list[str]) -> list[int]:
    """The terminal column at which each cell starts, cells found left to right."""
    found, at = [], 0
    for cell in cells:
        index = line.index(cell, at)
        found.append(display_width(line[:index]))
        at = index + len(cell)
    return found


@pytest.mark.parametrize("verb", ["queue", "all", "mine"])
async def test_columns_start_at_the_same_place_on_every_line(
    terminal: tuple[ConsoleDesk, io.StringIO], verb: str
) -> None:
    desk, out = terminal
    await desk.command(verb)
    lines = [line for line in out.getvalue().splitlines() if line.startswith("#")]
    assert len(lines) == len(NUMBERS), out.getvalue()
    columns = []
    for line, card in zip(lines, cards(), strict=True):
        cells = [f"#{card.id}", card.risk.upper(), category_label(card.category, "ru")]
        if verb != "mine":
            cells.append(card.channel)
        if verb == "all":
            cells += [card.status, f"{card.waiting_minutes} min", f"held by {card.owner}"]
        elif verb == "queue":
            cells.append(f"{card.waiting_minutes} min")
        columns.append(starts(line, cells))
    assert all(found == columns[0] for found in columns), "\n" + out.getvalue()
    # Cyrillic labels are there, in the desk's language, and the cells never run together.
    assert "Груминг" in lines[0]
    assert all(b - a > 1 for a, b in zip(columns[0], columns[0][1:], strict=False))


def test_display_width_counts_terminal_columns() -> None:
    assert display_width("Анна") == 4 == display_width("anna")
    assert display_width("王小明") == 6
    assert display_width("й") == 1  # и + a combining breve
