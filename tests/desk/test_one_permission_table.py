"""ONE permission table, three desks (issue 17): the same command, by the same role, on a case in
the same state, gets the same answer from the terminal desk, the Telegram staff group and the web
console — the same case state in the database afterwards, and the refusal each one shows.

Each row: who acts (the case's holder, another counsellor, a supervisor), the case (waiting or
held, its risk and category), the command, and the answer (allowed, or the refusal). Every row
runs through all three front-ends, each on a case of its own in one database: the terminal desk
(`ConsoleDesk.command`), the staff group (the real aiogram dispatcher polling a fake Bot API) and
the web console (aiohttp test client, signed in like a browser)."""

from __future__ import annotations

import asyncio
import html
import io
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient, TestServer

from bot.app import App
from bot.console import ERRORS, ConsoleDesk
from bot.web import build_console
from dialogs.desk.rules import MIN_REASON_LETTERS
from dialogs.escalation import DeskError
from dialogs.operations import DeskPolicy
from knowledge_base import KnowledgeBase
from storage.db import Database
from storage.models import Counsellor
from storage.repositories import Repos
from tests.telegram.conftest import ANNA, BORIS, CHILD, Harness, start_channel, stop_channel
from tests.telegram.fake_api import STAFF_CHAT, FakeTelegram
from tests.web.conftest import add_staff, csrf_of, sign_in

ROOT = Path(__file__).resolve().parents[2]
SVETA = 503
REASON = "говорили с мамой, ребёнок дома и в безопасности"
RISK_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3}


@dataclass(frozen=True)
class Row:
    """who × case × command -> answer (None: allowed) and the case afterwards."""

    who: str  # holder | other | supervisor
    held: bool  # the case is held by the holder (else it waits)
    risk: str
    command: tuple[str, ...]  # verb and arguments, in no front-end's syntax yet
    answer: DeskError | None
    after: dict[str, Any]  # the case row's fields afterwards, when allowed
    category: str = "information"
    full: bool = False  # the actor already holds as many cases as they may (capacity 1)

    @property
    def id(self) -> str:
        state = f"{'held' if self.held else 'waiting'}-{self.risk}"
        return f"{self.who}-{state}-{'-'.join(self.command[:2])}-{self.answer or 'ok'}"


ROWS = [
    # The hole of issue 17: a counsellor who does not hold a waiting critical case lowers it.
    Row("other", False, "critical", ("risk", "low", "x"), DeskError.SUPERVISOR_ONLY, {}),
    Row("holder", True, "critical", ("risk", "low", REASON), DeskError.SUPERVISOR_ONLY, {}),
    Row("supervisor", True, "critical", ("risk", "low", "ok"), DeskError.WEAK_REASON, {}),
    Row("supervisor", True, "critical", ("risk", "low", REASON), None, {"risk": "low"}),
    Row("other", False, "medium", ("risk", "critical", ""), None, {"risk": "critical"}),
    Row("other", True, "medium", ("risk", "critical", ""), DeskError.NOT_YOURS, {}),
    Row("other", False, "medium", ("risk", "low", REASON), DeskError.NOT_YOURS, {}),
    Row("holder", True, "medium", ("risk", "low", REASON), None, {"risk": "low"}),
    Row("holder", True, "medium", ("close", "advice-given"), None,
        {"status": "closed", "outcome": "advice-given"}),
    Row("holder", True, "medium", ("close", "abusive-contact"), DeskError.USE_BLOCK, {}),
    Row("holder", True, "medium", ("block", "оскорбления"), DeskError.SUPERVISOR_ONLY, {}),
    Row("supervisor", True, "critical", ("block", "ложные вызовы"), None,
        {"status": "closed", "outcome": "abusive-contact"}),
    Row("supervisor", False, "medium", ("block", "угрозы"), DeskError.CONFIRM_BLOCK, {},
        category="sextortion"),
    Row("supervisor", False, "medium", ("block!", "угрозы"), None,
        {"status": "closed", "outcome": "abusive-contact"}, category="sextortion"),
    Row("other", True, "medium", ("reply", "привет"), DeskError.NOT_YOURS, {}),
    Row("other", True, "critical", ("take",), DeskError.TAKEN, {}),
    Row("other", False, "critical", ("take",), None, {"status": "active"}, full=True),
    Row("other", False, "medium", ("take",), DeskError.AT_CAPACITY, {}, full=True),
    Row("other", True, "medium", ("release",), DeskError.NOT_YOURS, {}),
    Row("supervisor", True, "medium", ("release",), None, {"status": "waiting"}),
]


def _texts(path: str) -> dict[str, dict[str, str]]:
    with (ROOT / path).open(encoding="utf-8") as fh:
        loaded: dict[str, dict[str, str]] = yaml.safe_load(fh)
    return loaded


TG = _texts("bot/telegram/desk_texts.yaml")
WEB = _texts("bot/web/texts.yaml")


def tg_refusal(error: DeskError) -> str:
    """What the staff group shows for a refusal (the part of it that names no one)."""
    key = {DeskError.CONFIRM_BLOCK: "desk.block.confirm"}.get(error, f"desk.error.{error}")
    text = TG[key]["ru"]
    return text.split("{")[0] if error is not DeskError.WEAK_REASON else text.format(
        n=MIN_REASON_LETTERS)


# ---------------------------------------------------------------------- the three front-ends
@dataclass
class Staff:
    holder: Counsellor
    other: Counsellor
    supervisor: Counsellor


class Front:
    """One desk front-end: who its staff are, and how a row's command is typed or pressed."""

    name = ""
    staff: Staff

    async def act(self, who: str, case_id: int, command: tuple[str, ...]) -> str:
        raise NotImplementedError

    def refusal(self, error: DeskError) -> str:
        raise NotImplementedError


class Terminal(Front):
    name = "terminal"

    def __init__(self, app: App, staff: Staff) -> None:
        self.app, self.staff = app, staff

    async def act(self, who: str, case_id: int, command: tuple[str, ...]) -> str:
        out = io.StringIO()
        desk = ConsoleDesk(self.app, getattr(self.staff, who), out=out)
        verb, *args = command
        line = {
            "risk": lambda: f"risk {case_id} {args[0]} {args[1]}",
            "close": lambda: f"close {case_id} {args[0]}",
            "block": lambda: f"block {case_id} 7d {args[0]}",
            "block!": lambda: f"block {case_id} 7d {args[0]} --confirm",
            "reply": lambda: f"reply {case_id} {args[0]}",
            "take": lambda: f"take {case_id}",
            "release": lambda: f"release {case_id}",
        }[verb]()
        await desk.command(line)
        return out.getvalue()

    def refusal(self, error: DeskError) -> str:
        return f"refused: {ERRORS[error]}"


class Group(Front):
    name = "telegram"

    def __init__(self, tg: Harness, staff: Staff) -> None:
        self.tg, self.staff = tg, staff
        self.ids = {"holder": ANNA, "other": BORIS, "supervisor": SVETA}

    async def act(self, who: str, case_id: int, command: tuple[str, ...]) -> str:
        fake, user = self.tg.fake, self.ids[who]
        thread = await self.thread(case_id)
        verb, *args = command
        before = len(fake.calls)
        if verb == "take":
            query = await fake.staff_presses(user, f"dk|take|{case_id}", thread=thread)
            return str((await fake.answer_to(query)).get("text", ""))
        text = {
            "risk": lambda: f"/risk {args[0]} {args[1]}".strip(),
            "close": lambda: f"/close {args[0]}",
            "block": lambda: f"/block 7d {args[0]}",
            "block!": lambda: f"/block 7d {args[0]}",
            "reply": lambda: args[0],
            "release": lambda: "/release",
        }[verb]()
        await fake.staff_says(user, text, thread)
        if verb == "block!":  # the staff group's confirm step: the button under the question
            ask = await fake.text_to(STAFF_CHAT, "может быть жертвой", thread=thread)
            query = await fake.staff_presses(user, ask.button("Да, заблокировать"),
                                             thread=thread)
            return str((await fake.answer_to(query)).get("text", ""))
        return await self.shown_since(before, thread)

    async def shown_since(self, before: int, thread: int) -> str:
        """What the group showed in the topic after the command (once the handler is done)."""
        await asyncio.sleep(0.3)
        for _ in range(40):
            shown = [c for c in self.tg.fake.calls[before:] if c.method == "sendMessage"
                     and c.params.get("message_thread_id") in (thread, str(thread))]
            if shown:
                await asyncio.sleep(0.2)
                return "\n".join(c.text for c in self.tg.fake.calls[before:]
                                 if c.method == "sendMessage")
            await asyncio.sleep(0.05)
        return ""

    async def thread(self, case_id: int) -> int:
        case = await self.tg.case(case_id)
        assert case.desk_thread_id is not None
        return int(case.desk_thread_id)

    def refusal(self, error: DeskError) -> str:
        return tg_refusal(error)


class Browser(Front):
    name = "web"

    def __init__(self, clients: dict[str, TestClient[Any, Any]], staff: Staff) -> None:
        self.clients, self.staff = clients, staff

    async def act(self, who: str, case_id: int, command: tuple[str, ...]) -> str:
        client = self.clients[who]
        token = await csrf_of(client)
        verb, *args = command
        action, form = {
            "risk": lambda: ("risk", {"risk": args[0], "note": args[1]}),
            "close": lambda: ("close", {"outcome": args[0]}),
            "block": lambda: ("block", {"reason": args[0], "days": "7"}),
            "block!": lambda: ("block", {"reason": args[0], "days": "7", "confirmed": "1"}),
            "reply": lambda: ("reply", {"text": args[0]}),
            "take": lambda: ("take", {}),
            "release": lambda: ("release", {}),
        }[verb]()
        posted = await client.post(f"/cases/{case_id}/{action}", data={"csrf": token, **form},
                                   allow_redirects=False)
        location = posted.headers["Location"]
        page = await (await client.get(location)).text()
        return location + "\n" + html.unescape(page)

    def refusal(self, error: DeskError) -> str:
        return WEB[f"error.{error}"]["ru"]


# ---------------------------------------------------------------------- one world, three desks
@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    api = FakeTelegram()
    await api.start()
    yield api
    await api.stop()


@dataclass
class World:
    tg: Harness
    fronts: list[Front]
    children: Callable[[], int]


@pytest.fixture
async def world(fake: FakeTelegram, tmp_path: Path, db: Database,
                kb: KnowledgeBase) -> AsyncIterator[World]:
    tg, task = await start_channel(fake, tmp_path, db, kb, web_cookie_secure=False)
    app = tg.app
    # Capacity 1, so that a row can start with its actor "full" after one take.
    app.engine.policy = DeskPolicy(replace(app.engine.policy.config, capacity=1))
    desk = app.desk
    by_id = {c.external_id: c for c in await _all_staff(app)}
    tg_staff = Staff(by_id[str(ANNA)], by_id[str(BORIS)],
                     await desk.add_counsellor("sveta", "telegram", str(SVETA), "supervisor"))
    term = Staff(*[await desk.add_counsellor(n, "console", n, r) for n, r in
                   (("t-anna", "counsellor"), ("t-boris", "counsellor"),
                    ("t-sveta", "supervisor"))])
    web = Staff(*[await add_staff(app, n, r) for n, r in
                  (("w-anna", "counsellor"), ("w-boris", "counsellor"),
                   ("w-sveta", "supervisor"))])
    clients: dict[str, TestClient[Any, Any]] = {}
    for who in ("holder", "other", "supervisor"):
        client: TestClient[Any, Any] = TestClient(TestServer(
            build_console(app, notify=False, poll_seconds=0.2)))
        await client.start_server()
        await sign_in(client, getattr(web, who).name)
        clients[who] = client
    counter = iter(range(CHILD, CHILD + 100))
    try:
        yield World(tg, [Terminal(app, term), Group(tg, tg_staff), Browser(clients, web)],
                    lambda: next(counter))
    finally:
        for client in clients.values():
            await client.close()
        await stop_channel(tg, task)


async def _all_staff(app: App) -> list[Counsellor]:
    async with app.db.session() as session:
        return list(await Repos(session).counsellors.all())


async def prepare(world: World, front: Front, row: Row) -> int:
    """A case in the row's state for this front-end's staff; returns its id."""
    tg, desk = world.tg, world.tg.app.desk
    if row.full:
        filler, _, _ = await tg.open_case(world.children())
        assert (await desk.take(getattr(front.staff, row.who), filler)).ok
    case_id, _, _ = await tg.open_case(world.children())
    async with tg.app.db.session() as session:
        case = await Repos(session).cases.get(case_id)
        assert case is not None
        case.risk, case.risk_rank, case.category = row.risk, RISK_RANK[row.risk], row.category
    if row.held:
        assert (await desk.take(front.staff.holder, case_id)).ok
    return case_id


def state(case: Any) -> dict[str, Any]:
    return {"risk": case.risk, "status": case.status, "outcome": case.outcome,
            "owner_id": case.owner_id}


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.id)
async def test_the_same_command_gets_the_same_answer_from_every_desk(
    world: World, row: Row
) -> None:
    answers: dict[str, str] = {}
    for front in world.fronts:
        case_id = await prepare(world, front, row)
        before = state(await world.tg.case(case_id))
        shown = await front.act(row.who, case_id, row.command)
        after = state(await world.tg.case(case_id))
        if row.answer is None:
            expected = {**before, **row.after}
            if row.command[0] in ("take", "block", "block!", "close"):
                expected["owner_id"] = after["owner_id"]
            if row.command[0] == "release":
                expected["owner_id"] = None
            assert after == expected, f"{front.name}: {after} != {expected}\n{shown}"
            assert "refused" not in shown and "error=" not in shown, f"{front.name}: {shown}"
            answers[front.name] = "allowed"
        else:
            assert after == before, f"{front.name} changed the case: {before} -> {after}"
            assert front.refusal(row.answer) in shown, (
                f"{front.name} did not show {front.refusal(row.answer)!r}:\n{shown}")
            answers[front.name] = str(row.answer)
    assert set(answers.values()) == {str(row.answer or "allowed")}, answers
