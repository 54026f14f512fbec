"""Every desk operation works from `helpline desk`: the console desk, driven line by line."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from bot.app import App
from bot.console import ConsoleDesk, parse_until
from bot.delivery import Delivery
from bot.settings import Settings
from dialogs.engine import DialogEngine
from dialogs.escalation import Desk
from dialogs.hours import OpeningHours, load_hours
from knowledge_base import KnowledgeBase
from storage.db import Database
from storage.models import Counsellor, utcnow
from storage.repositories import Repos
from tests.conftest import Chat, Clock
from tests.desk.conftest import Configure, join_queue

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def app(db: Database, kb: KnowledgeBase, engine: DialogEngine, desk: Desk) -> App:
    settings = Settings.model_construct(default_locale="ru")
    return App(settings=settings, db=db, kb=kb, engine=engine, desk=desk, delivery=Delivery(db))


class Terminal:
    def __init__(self, app: App, who: Counsellor) -> None:
        self.out = io.StringIO()
        self.desk = ConsoleDesk(app, who, out=self.out)

    async def __call__(self, line: str) -> str:
        start = self.out.tell()
        await self.desk.command(line)
        return self.out.getvalue()[start:]


async def test_the_console_desk_runs_every_operation(
    app: App,
    chat_factory: Callable[..., Chat],
    desk: Desk,
    counsellor: Counsellor,
    boris: Counsellor,
    supervisor: Counsellor,
) -> None:
    for i in range(4):
        await join_queue(chat_factory(user=f"c{i}"))
    anna, sveta = Terminal(app, counsellor), Terminal(app, supervisor)
    for n in (1, 2, 3):
        assert f"you hold case #{n}" in await anna(f"take {n}")
    refused = await anna("take 4")
    assert "refused: the limit of cases held at once is reached" in refused
    assert "(you hold 3 of 3 cases)" in refused
    assert "/greeting" in await anna("canned")
    assert "sent the canned reply /greeting" in await anna("reply 1 /greeting")
    assert "refused: there is no canned reply" in await anna("reply 1 /bogus")
    async with app.db.session() as s:
        *_, sent = await Repos(s).outbox.pending("console", "chat-c0")
        assert "консультант линии помощи" in str(sent.body["text"])
    assert "case #1 is now" in await anna("category 1 grooming")
    assert "case #2 handed to boris" in await anna("transfer 2 boris про школу")
    assert "refused: only a supervisor may do this" in await anna("all")
    listing = await sveta("all")
    assert "held by anna" in listing and "held by boris" in listing and "waiting" in listing
    assert "case #4 handed to anna" in await sveta("transfer 4 anna")
    assert "refused: the limit" in await sveta("transfer 2 anna")
    # Blocking is a supervisor's action (issue 17): the holder is refused, the supervisor blocks.
    assert "refused: only a supervisor may do this" in await anna("block 3 7d оскорбления")
    assert "blocked until" in await sveta("block 3 7d оскорбления")
    assert "refused: UNTIL" in await sveta("block 1 someday спам")
    assert "block lifted" in await sveta("unblock 3")
    assert "released to the queue" in await anna("release 1 нужна коллега")
    assert "open round the clock" in await anna("hours")
    assert "on call: sveta" in await anna("hours")
    assert "sweep: 0 re-announced" in await anna("sweep")
    help_text = await anna("help")
    assert "transfer N NAME" in help_text and "block N UNTIL REASON" in help_text
    assert "abusive-contact" in help_text
    assert "(up to 3 at once; a critical case always)" in help_text
    actions = {a for _t, _w, a, _d in await desk.audit_trail(3)}
    assert {"taken", "blocked", "closed", "unblocked"} <= actions


def test_block_expiry_parsing() -> None:
    now = utcnow()
    assert parse_until("30m", now) == now + timedelta(minutes=30)
    until = parse_until("2026-12-31", now)
    assert until is not None and until.tzinfo is not None and until.day == 31
    assert parse_until("soon", now) is None


def test_helpline_report_from_the_command_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "VK_"))}
    env["DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    env["EVIDENCE_DIR"] = str(tmp_path / "evidence")

    def helpline(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bot", *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=120,
        )

    assert helpline("db", "upgrade").returncode == 0
    chat = helpline("chat", "--user", "masha", stdin="привет\n1\n3\n")
    assert "в очереди" in chat.stdout, chat.stderr
    # The report's days are the help line's (its opening hours' time zone), not this machine's.
    today = utcnow().astimezone(load_hours().zone).date().isoformat()
    out = tmp_path / "reports"
    result = helpline("report", "--from", today, "--to", today, "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "Contacts (cases opened): <5" in result.stdout
    assert "wrote 16 files" in result.stdout
    folder = out / f"{today}_{today}"
    assert (folder / "category.csv").exists() and (folder / "week.png").exists()
    assert "<5" in (folder / "category.csv").read_text(encoding="utf-8")
    bad = helpline("report", "--from", "2026-13-01", "--to", today)
    assert bad.returncode == 2 and "dates like" in bad.stderr


async def test_the_console_desk_shows_the_opening_hours(
    app: App, counsellor: Counsellor, configure: Configure
) -> None:
    anna = Terminal(app, counsellor)
    configure(hours=OpeningHours(weekly=((),) * 7))
    assert "closed now; opens not within 60 days" in await anna("hours")
    configure(hours=load_hours())
    shown = await anna("hours")
    assert ("open now, until" in shown or "closed now; opens" in shown) and "Moscow" in shown


async def test_the_terminal_desk_is_told_at_once_when_the_child_ends_the_chat(
    app: App, chat_factory: Callable[..., Chat], desk: Desk
) -> None:
    anna = await desk.add_counsellor("anna", "console", "anna")
    terminal = Terminal(app, anna)
    chat = chat_factory()
    await join_queue(chat)
    [case] = await desk.queue()
    await terminal(f"take {case.id}")
    assert [c.id for c in await desk.held(anna)] == [case.id]
    await terminal.desk.poll()
    await chat.payload("cs|connected|end")  # the button the child has after "connected"
    await chat.press("Да, завершить")
    start = terminal.out.tell()
    await terminal.desk.poll()
    told = terminal.out.getvalue()[start:]
    assert f"#{case.id}: the child ended the chat" in told


async def test_the_terminal_desk_rings_for_critical_cases_and_re_announcements(
    app: App, chat_factory: Callable[..., Chat], desk: Desk, counsellor: Counsellor,
    clock: Clock,
) -> None:
    """Issue 17: two desks open, critical cases arrived, nothing was printed. Now each critical
    case rings the bell (BEL) and is printed as it arrives, and so is each re-announcement,
    also when the running bot (another process) made it."""
    anna = Terminal(app, counsellor)
    calm = chat_factory(user="calm")
    await join_queue(calm)
    await anna.desk.poll()  # the first look: a calm case already waiting does not ring
    first = anna.out.getvalue()
    assert "\a" not in first
    danger = chat_factory(user="danger")
    await danger.start_as_child()
    await danger.say("я больше не хочу жить")
    start = anna.out.tell()
    await anna.desk.poll()
    rung = anna.out.getvalue()[start:]
    critical = next(c for c in await desk.queue() if c.risk == "critical")
    assert rung.startswith("\a🚨 CRITICAL case #") and f"#{critical.id}" in rung
    assert "MSK" in rung or "UTC" in rung, "the time, labelled"
    await join_queue(chat_factory(user="calm2"))
    start = anna.out.tell()
    await anna.desk.poll()
    told = anna.out.getvalue()[start:]
    assert told.startswith("new case #") and "\a" not in told, "a calm case: printed, no bell"
    start = anna.out.tell()
    await anna.desk.poll()
    assert anna.out.getvalue()[start:] == "", "each arrival once"
    # The running bot re-announces the critical case nobody took (another process's sweep).
    clock.now += timedelta(minutes=11)
    assert [m for m in await desk.sweep(clock.now) if m.case_id == critical.id]
    start = anna.out.tell()
    await anna.desk.poll()
    again = anna.out.getvalue()[start:]
    assert f"\adesk: case #{critical.id} re-announced" in again
