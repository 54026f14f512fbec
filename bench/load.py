"""Load benchmark: the real `helpline run` (Telegram long polling) against a fake Bot API on
127.0.0.1, with 1,000 simulated children and a few counsellors, next to a bare aiogram echo bot
against the same fake server.

    .venv/bin/python bench/load.py [--users 1000] [--duration 60] [--db sqlite|pg|both]
    make bench

What runs:
- this process: the fake Bot API (aiohttp) and the simulated people;
- a subprocess `bench/echo_bot.py` (the yardstick), then a subprocess running `helpline run`
  (bot.cli) on a fresh SQLite file (or a fresh PostgreSQL database: `--db pg` uses
  DATABASE_URL if it is a PostgreSQL URL, else HELPLINE_TEST_DATABASE_URL, else re-runs itself
  under scripts/with-postgres.sh). Counsellors are registered with `helpline counsellor add`
  and TELEGRAM_STAFF_CHAT_ID points at the fake staff forum, so the Telegram desk works.
  The bot runs as shipped, with one setting: SEND_PACING=off lifts Telegram's published send
  limits (30 messages a second in all, 1 a second per chat, 20 a minute per group), since the
  fake server has no limits to respect and the benchmark measures the bot (the setting is
  refused with Telegram's real API URL). The per-user flood limiter (EngineConfig, 20 burst,
  1 a second) is kept: each simulated user paces itself under it (10 burst, 0.9 a second).

Children walk scripts: a report step by step (then advice, or a counsellor), a safety question
answered from the knowledge base (as a child or a parent), a danger message ("I don't want to
live") at the menu or in the middle of a report, and asking for a person. Whoever gets a case
number waits for a counsellor; counsellors (simulated in the staff forum) take waiting cases,
critical first, write to the child, read the child's answer, close the case with an outcome, and
the child rates the help. A child who waits too long leaves the queue, as children do.

Phases: the echo bot with N users sending as fast as they get answers (saturated); then the help
line with N users reading and thinking between messages (--think, default 5-15 s: the "1,000
concurrent users" figure), then the same users with no pause (saturated: the throughput figure).

Figures: updates per second (the bot's own helpline_updates_total counter, read from /metrics at
both ends of the window), reply latency from the moment the fake makes an update available to
getUpdates to the bot's first message to that chat, danger message -> first staff-group message
carrying the child's words (the new critical case's card in its new topic, or the line copied
into the case's topic when the child already had a case), counsellor -> child, peak RSS (VmHWM of
the bot process), database size per 1,000 conversations, CPU used by each process.

This is a script that prints figures, not a test. Loopback only; every loop is bounded by the
phase clock.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import itertools
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

THIS = Path(__file__).resolve()
ROOT = THIS.parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TOKEN = "123456:BENCH-token-for-the-fake-api"
BOT_ID = 123456
STAFF_CHAT = -1001234567890
FIRST_CHILD = 10_000_000
FIRST_COUNSELLOR = 501
perf = time.perf_counter


# =====================================================================================
# Texts the simulated people recognise, from the bot's own catalogues.
# =====================================================================================
class Texts:
    def __init__(self) -> None:
        from dialogs.catalogue import Catalogue, default_catalogue

        cat = default_catalogue()
        desk = Catalogue(ROOT / "bot" / "telegram" / "desk_texts.yaml")

        def p(*keys: str, catalogue: Any = cat) -> tuple[str, ...]:
            out = []
            for key in keys:
                text = catalogue._texts[key]["ru"]  # the raw template
                out.append(text.split("{")[0])
            return tuple(out)

        self.role = p("role.ask")
        self.menu = p("menu.ask", "menu.ask.parent")
        self.what = p("report.what.ask")
        self.where = p("report.where.ask")
        self.ongoing = p("report.ongoing.ask")
        self.safe = p("report.safe.ask")
        self.evidence = p("report.evidence.ask")
        self.adult = p("report.adult.ask")
        self.offer = p("report.offer")
        self.ask_question = p("question.ask")
        self.answer = p("question.answer")
        self.answer_or_none = p("question.answer", "question.none")
        self.waiting = p("counselling.waiting", "counselling.waiting.again",
                         "counselling.still_waiting", "counselling.after_hours")
        self.connected = p("counselling.connected")
        self.closed = p("counselling.closed")
        self.rate_why = p("rate.why")
        self.rate_thanks = p("rate.thanks")
        self.danger = p("safety.open.self")
        self.flood = p("flood.wait")
        self.card = p("desk.card.head", catalogue=desk)
        self.picker = p("desk.close.pick", catalogue=desk)
        self.relay = p("desk.child", catalogue=desk)
        self.taken_you = desk._texts["desk.taken.you"]["ru"]


QUESTIONS = [
    "меня травят в вк", "взломали аккаунт", "как сохранить скриншоты",
    "фейковая страница от моего имени", "мошенники в игре", "незнакомец просит фото",
    "как закрыть профиль", "одноклассники смеются в чате", "что делать если угрожают",
]
WHAT = ["insults", "threats", "excluded", "fake_page", "photos_shared", "stranger", "demands",
        "other"]
WHERE = ["vk", "telegram", "whatsapp", "tiktok", "youtube", "game", "other"]
MARK = re.compile(r"\[([dr])(\d+)\]")
CASE_NO = re.compile(r"№(\d+)")


# =====================================================================================
# The fake Bot API: just enough of Telegram for aiogram, fast, and routing what the bot sends
# to the simulated people.
# =====================================================================================
class FakeBotAPI:
    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.pending: deque[dict[str, Any]] = deque()
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1)
        self._thread_ids = itertools.count(100)
        self._waiters: list[asyncio.Future[None]] = []
        self.private: dict[int, asyncio.Queue[tuple[float, str]]] = {}
        self.staff: DeskSim | None = None
        self.calls = 0
        self.staff_sent = 0  # messages and topics the bot posted in the staff group
        self.staff_kinds: collections.Counter[str] = collections.Counter()  # by first words
        self.pushed = 0
        self.pushed_id = 0
        self.acked = 0
        self.handed: dict[int, float] = {}  # update id -> when getUpdates first handed it out
        self.polls = 0
        self.url = ""
        self._runner: Any = None

    async def start(self) -> str:
        from aiohttp import web

        app = web.Application()
        app.router.add_post(f"/bot{self.token}/{{method}}", self._api)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        if self._runner is not None:
            await self._runner.cleanup()

    # ---------------------------------------------------------------- the people's side
    def push(self, update: dict[str, Any]) -> float:
        """Make an update available to getUpdates; returns that moment (perf_counter)."""
        update["update_id"] = self.pushed_id = next(self._update_ids)
        self.pending.append(update)
        self.pushed += 1
        at = perf()
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
        return at

    @staticmethod
    def _user(user_id: int, name: str = "Маша") -> dict[str, Any]:
        return {"id": user_id, "is_bot": False, "first_name": name, "language_code": "ru"}

    def child_text(self, user_id: int, text: str) -> float:
        return self.push({"message": {
            "message_id": next(self._message_ids), "date": int(time.time()),
            "chat": {"id": user_id, "type": "private", "first_name": "Маша"},
            "from": self._user(user_id), "text": text}})

    def child_press(self, user_id: int, data: str) -> float:
        return self.push({"callback_query": {
            "id": f"q{next(self._update_ids)}", "from": self._user(user_id),
            "chat_instance": "ci", "data": data,
            "message": {"message_id": 1, "date": int(time.time()),
                        "chat": {"id": user_id, "type": "private"},
                        "from": {"id": BOT_ID, "is_bot": True, "first_name": "Bot"},
                        "text": "…"}}})

    def _staff_chat(self) -> dict[str, Any]:
        return {"id": STAFF_CHAT, "type": "supergroup", "title": "Desk", "is_forum": True}

    def staff_text(self, user_id: int, thread: int, text: str) -> float:
        message: dict[str, Any] = {
            "message_id": next(self._message_ids), "date": int(time.time()),
            "chat": self._staff_chat(), "from": self._user(user_id, f"Staff{user_id}"),
            "text": text, "message_thread_id": thread, "is_topic_message": True}
        if text.startswith("/"):
            command = text.split()[0]
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        return self.push({"message": message})

    def staff_press(self, user_id: int, data: str, thread: int, message_id: int) -> str:
        query_id = f"s{next(self._update_ids)}"
        self.push({"callback_query": {
            "id": query_id, "from": self._user(user_id, f"Staff{user_id}"),
            "chat_instance": "staff", "data": data,
            "message": {"message_id": message_id, "date": int(time.time()),
                        "chat": self._staff_chat(), "message_thread_id": thread,
                        "is_topic_message": True,
                        "from": {"id": BOT_ID, "is_bot": True, "first_name": "Bot"},
                        "text": "…"}}})
        return query_id

    # ---------------------------------------------------------------- the Bot API
    async def _api(self, request: Any) -> Any:
        from aiohttp import web

        method = request.match_info["method"]
        form = await request.post()
        self.calls += 1
        if method == "getUpdates":
            return await self._get_updates(form)
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            return web.json_response({"ok": False, "error_code": 404,
                                      "description": f"Not Found: {method} not faked"},
                                     status=404)
        return web.json_response({"ok": True, "result": handler(form)})

    async def _get_updates(self, form: Any) -> Any:
        from aiohttp import web

        self.polls += 1
        offset = int(form.get("offset") or 0)
        while self.pending and self.pending[0]["update_id"] < offset:
            self.pending.popleft()
            self.acked += 1
        timeout = min(float(form.get("timeout") or 0), 1.0)
        if not self.pending and timeout > 0:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter, timeout)
        limit = int(form.get("limit") or 100)
        batch = list(itertools.islice(self.pending, limit))
        now = perf()
        for update in batch:
            self.handed.setdefault(update["update_id"], now)
        return web.json_response({"ok": True, "result": batch})

    def _message(self, form: Any, text: str | None) -> dict[str, Any]:
        chat_id = int(form["chat_id"])
        message: dict[str, Any] = {
            "message_id": next(self._message_ids), "date": int(time.time()),
            "chat": self._staff_chat() if chat_id == STAFF_CHAT else
            {"id": chat_id, "type": "private"},
            "from": {"id": BOT_ID, "is_bot": True, "first_name": "Helpline"},
        }
        if text is not None:
            message["text"] = text
        thread = form.get("message_thread_id")
        if thread is not None:
            message["message_thread_id"] = int(thread)
            message["is_topic_message"] = True
        return message

    def _m_sendMessage(self, form: Any) -> dict[str, Any]:
        text = str(form["text"])
        message = self._message(form, text)
        at = perf()
        chat_id = message["chat"]["id"]
        if chat_id == STAFF_CHAT:
            self.staff_sent += 1
            self.staff_kinds[text.split("\n", 1)[0][:18]] += 1
            if self.staff is not None:
                self.staff.on_message(at, message.get("message_thread_id"),
                                      message["message_id"], text)
        else:
            queue = self.private.get(chat_id)
            if queue is not None:
                queue.put_nowait((at, text))
        return message

    def _m_editMessageText(self, form: Any) -> dict[str, Any]:
        message = self._message(form, str(form["text"]))
        message["message_id"] = int(form.get("message_id") or 1)
        message["edit_date"] = int(time.time())
        return message

    def _m_answerCallbackQuery(self, form: Any) -> bool:
        if self.staff is not None and str(form["callback_query_id"]).startswith("s"):
            self.staff.on_answer(str(form["callback_query_id"]), str(form.get("text") or ""))
        return True

    def _m_createForumTopic(self, form: Any) -> dict[str, Any]:
        self.staff_sent += 1
        return {"message_thread_id": next(self._thread_ids), "name": form["name"],
                "icon_color": 7322096}

    def _m_copyMessage(self, form: Any) -> dict[str, Any]:
        return {"message_id": next(self._message_ids)}

    def _m_getMe(self, form: Any) -> dict[str, Any]:
        return {"id": BOT_ID, "is_bot": True, "first_name": "Helpline",
                "username": "helpline_bench_bot"}

    def _m_getChat(self, form: Any) -> dict[str, Any]:
        return {**self._staff_chat(), "accent_color_id": 0, "max_reaction_count": 11,
                "accepted_gift_types": {"unlimited_gifts": False, "limited_gifts": False,
                                        "unique_gifts": False, "premium_subscription": False,
                                        "gifts_from_channels": False}}

    def _m_getChatMember(self, form: Any) -> dict[str, Any]:
        rights = {name: True for name in (
            "can_be_edited", "can_manage_chat", "can_delete_messages",
            "can_manage_video_chats", "can_restrict_members", "can_promote_members",
            "can_change_info", "can_invite_users", "can_post_stories", "can_edit_stories",
            "can_delete_stories", "can_pin_messages", "can_send_welcome_messages",
            "can_manage_topics")}
        return {"status": "administrator", "is_anonymous": False, **rights,
                "user": {"id": int(form["user_id"]), "is_bot": True, "first_name": "Helpline"}}

    def _ok(self, form: Any) -> bool:
        return True

    _m_setMyCommands = _m_deleteWebhook = _m_editForumTopic = _m_closeForumTopic = _ok
    _m_pinChatMessage = _m_unpinChatMessage = _m_editMessageReplyMarkup = _ok


# =====================================================================================
# Measurements
# =====================================================================================
@dataclass
class Phase:
    name: str
    latency: list[float] = field(default_factory=list)
    danger: list[float] = field(default_factory=list)
    danger_queued: list[float] = field(default_factory=list)  # of which: waiting at Telegram
    to_child: list[float] = field(default_factory=list)
    to_desk: list[float] = field(default_factory=list)
    turns: int = 0
    stuck: int = 0
    flood: int = 0
    dangers_sent: int = 0
    cases_taken: int = 0
    cases_closed: int = 0
    gave_up: int = 0
    seconds: float = 0.0
    updates: float = 0.0  # the bot's own counter
    acked: int = 0
    pushed: int = 0
    staff_sent: int = 0
    replies: int = 0
    cpu_bot: float = 0.0
    cpu_bench: float = 0.0
    users: int = 0

    @property
    def rate(self) -> float:
        return self.updates / self.seconds if self.seconds else 0.0


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class Clock:
    """Which phase a moment belongs to; samples are filed under the phase of their start."""

    def __init__(self) -> None:
        self.current: Phase | None = None
        self.stopping = False
        self.think: tuple[float, float] = (0.0, 0.0)

    async def pause(self, scale: float = 1.0) -> None:
        low, high = self.think
        await asyncio.sleep(random.uniform(low, high) * scale if high else 0)


# =====================================================================================
# The simulated people
# =====================================================================================
class Stuck(Exception):
    """A turn got no answer in time: the child walks away (and comes back as someone new)."""


class EchoUser:
    def __init__(self, fake: FakeBotAPI, clock: Clock, uid: int) -> None:
        self.fake, self.clock, self.uid = fake, clock, uid
        self.queue: asyncio.Queue[tuple[float, str]] = asyncio.Queue()
        fake.private[uid] = self.queue

    async def run(self) -> None:
        n = 0
        while not self.clock.stopping:
            n += 1
            sent = self.fake.child_text(self.uid, f"привет {n}")
            try:
                at, _ = await asyncio.wait_for(self.queue.get(), 30)
            except TimeoutError:
                if self.clock.current is not None:
                    self.clock.current.stuck += 1
                continue
            phase = self.clock.current  # samples belong to the window they arrive in
            if phase is not None:
                phase.latency.append(at - sent)
                phase.replies += 1
            await self.clock.pause()


class Sim:
    """What the children and counsellors share: the fake, the texts, markers, the desk."""

    def __init__(self, fake: FakeBotAPI, clock: Clock, texts: Texts, *, wait: float,
                 turn_timeout: float) -> None:
        self.fake, self.clock, self.texts = fake, clock, texts
        self.wait = wait  # how long a child waits for a counsellor
        self.turn_timeout = turn_timeout
        self.uids = itertools.count(FIRST_CHILD)
        self.markers = itertools.count(1)
        self.danger_sent: dict[int, float] = {}
        self.danger_update: dict[int, int] = {}  # marker -> its update id
        self.relay_sent: dict[int, float] = {}
        self.desk = DeskSim(self)
        fake.staff = self.desk


class Child:
    def __init__(self, sim: Sim) -> None:
        self.sim, self.t = sim, sim.texts
        self.queue: asyncio.Queue[tuple[float, str]] = asyncio.Queue()
        self.uid = 0
        self.case_id: int | None = None
        self.tokens, self.updated = 10.0, perf()
        self._new_identity()

    def _new_identity(self) -> None:
        self.sim.fake.private.pop(self.uid, None)
        self.uid = next(self.sim.uids)
        self.case_id = None
        self.queue = asyncio.Queue()
        self.sim.fake.private[self.uid] = self.queue

    async def _pace(self) -> None:
        """Stay under the bot's per-user flood limit (burst 20, 1 a second)."""
        now = perf()
        self.tokens = min(10.0, self.tokens + (now - self.updated) * 0.9)
        self.updated = now
        if self.tokens < 1:
            await asyncio.sleep((1 - self.tokens) / 0.9)
            self.tokens = 1.0
            self.updated = perf()
        self.tokens -= 1

    def _drain(self) -> None:
        while not self.queue.empty():
            self.queue.get_nowait()

    async def send(self, *, text: str | None = None, payload: str | None = None) -> float:
        await self._pace()
        if payload is not None:
            return self.sim.fake.child_press(self.uid, payload)
        assert text is not None
        return self.sim.fake.child_text(self.uid, text)

    async def turn(self, expect: tuple[str, ...], *, text: str | None = None,
                   payload: str | None = None, danger: int | None = None) -> str:
        """Send one update; wait for the turn's last message (one starting with `expect`)."""
        self._drain()
        clock = self.sim.clock
        sent = await self.send(text=text, payload=payload)
        if danger is not None:
            self.sim.danger_sent[danger] = sent
            self.sim.danger_update[danger] = self.sim.fake.pushed_id
            if clock.current is not None:
                clock.current.dangers_sent += 1
        first = True
        deadline = sent + self.sim.turn_timeout
        while True:
            try:
                at, message = await asyncio.wait_for(self.queue.get(), deadline - perf())
            except TimeoutError:
                if clock.current is not None:
                    clock.current.stuck += 1
                raise Stuck from None
            phase = clock.current  # samples belong to the window they arrive in
            if first:
                first = False
                if phase is not None:
                    phase.latency.append(at - sent)
                    phase.replies += 1
            if message.startswith(self.t.flood) and phase is not None:
                phase.flood += 1
            if message.startswith(expect):
                if phase is not None:
                    phase.turns += 1
                return message

    async def expect(self, prefixes: tuple[str, ...], within: float) -> tuple[float, str] | None:
        """A message not caused by our own update (the desk's doing)."""
        deadline = perf() + within
        while True:
            remaining = deadline - perf()
            if remaining <= 0:
                return None
            try:
                at, message = await asyncio.wait_for(self.queue.get(), remaining)
            except TimeoutError:
                return None
            if message.startswith(prefixes):
                return at, message

    # ---------------------------------------------------------------- scripts
    async def run(self) -> None:
        while not self.sim.clock.stopping:
            try:
                roll = random.random()
                if roll < 0.40:
                    await self.report()
                elif roll < 0.72:
                    await self.question()
                elif roll < 0.84:
                    await self.danger_at_menu()
                else:
                    await self.person()
            except Stuck:
                self._new_identity()
            await self.sim.clock.pause()

    async def pause(self) -> None:
        await self.sim.clock.pause()

    async def start(self, parent: bool = False) -> None:
        await self.turn(self.t.role, text="/start")
        await self.pause()
        await self.turn(self.t.menu, payload=f"st|role|{'parent' if parent else 'child'}")
        await self.pause()

    async def report(self) -> None:
        t = self.t
        await self.start()
        await self.turn(t.what, payload="st|menu|report")
        await self.pause()
        await self.turn(t.where, payload=f"cr|what|{random.choice(WHAT)}")
        await self.pause()
        await self.turn(t.ongoing, payload=f"cr|where|{random.choice(WHERE)}")
        await self.pause()
        await self.turn(t.safe, payload="cr|ongoing|yes")
        await self.pause()
        if random.random() < 0.05:  # "I'm not safe now": a critical case at once
            await self.counselling(await self.turn(t.waiting, payload="cr|safe_now|no"))
            return
        await self.turn(t.evidence, payload="cr|safe_now|yes")
        await self.pause()
        if random.random() < 0.12:  # danger in the middle of a report
            await self.danger()
            return
        await self.turn(t.adult, payload="cr|evidence|none")
        await self.pause()
        await self.turn(t.offer, payload=f"cr|adult|{random.choice(['yes', 'no'])}")
        await self.pause()
        if random.random() < 0.3:
            await self.counselling(await self.turn(t.waiting, payload="cr|advice|person"))
        else:
            await self.turn(t.menu, payload="g|menu")

    async def question(self) -> None:
        t = self.t
        await self.start(parent=random.random() < 0.2)
        await self.turn(t.ask_question, payload="st|menu|question")
        await self.pause()
        answer = await self.turn(t.answer_or_none, text=random.choice(QUESTIONS))
        await self.pause()
        if answer.startswith(t.answer) and random.random() < 0.6:
            await self.turn(t.menu, payload="sq|answered|helped")
        else:
            await self.turn(t.menu, payload="g|menu")

    async def danger_at_menu(self) -> None:
        await self.start()
        await self.danger()

    async def danger(self) -> None:
        n = next(self.sim.markers)
        await self.turn(self.t.danger, text=f"[d{n}] мне очень плохо, я больше не хочу жить",
                        danger=n)
        case_id = await self.sim.desk.case_of_marker(n, self.sim.turn_timeout)
        if case_id is None:
            raise Stuck
        self.case_id = case_id
        await self.counselling(None)

    async def person(self) -> None:
        await self.start()
        await self.counselling(await self.turn(self.t.waiting, payload="st|menu|person"))

    async def counselling(self, waiting_text: str | None) -> None:
        """Wait for a counsellor; talk; rate. Or leave the queue after `sim.wait` seconds."""
        t, desk = self.t, self.sim.desk
        if waiting_text is not None:
            found = CASE_NO.search(waiting_text)
            if found:
                self.case_id = int(found.group(1))
        if self.case_id is None:
            raise Stuck
        case_id = self.case_id
        desk.enqueue(case_id, self)
        connected = await self.expect(t.connected, self.sim.wait)
        if connected is None:
            if desk.withdraw(case_id):
                phase = self.sim.clock.current
                if phase is not None:
                    phase.gave_up += 1
                await self.turn(t.menu, payload="cs|waiting|end")
                return
            connected = await self.expect(t.connected, self.sim.turn_timeout)
            if connected is None:
                raise Stuck
        hello = await self.expect(("Здравствуй",), self.sim.turn_timeout)
        if hello is None:
            raise Stuck
        sent = desk.said.pop(case_id, None)
        if sent is not None and self.sim.clock.current is not None:
            self.sim.clock.current.to_child.append(hello[0] - sent)
        await self.pause()
        n = next(self.sim.markers)
        self._drain()
        at = await self.send(text=f"[r{n}] они пишут мне гадости каждый день")
        self.sim.relay_sent[n] = at
        if await self.expect(t.closed, self.sim.turn_timeout * 2) is None:
            raise Stuck
        await self.pause()
        await self.turn(t.rate_why, payload=f"cs|rating|{random.choice('345')}")
        await self.pause(0.5)
        await self.turn(t.rate_thanks, payload="cs|comment|skip")
        self.case_id = None


class DeskSim:
    """The staff forum as the counsellors see it, and the counsellors themselves."""

    def __init__(self, sim: Sim) -> None:
        self.sim, self.t = sim, sim.texts
        self.cards: dict[int, tuple[int, int]] = {}  # case -> (thread, card message id)
        self.thread_case: dict[int, int] = {}
        self.threads: dict[int, asyncio.Queue[tuple[float, int, str]]] = {}
        self.marker_case: dict[int, int] = {}
        self._marker_events: dict[int, asyncio.Event] = {}
        self.waiting: dict[int, Child] = {}
        self.critical: set[int] = set()
        self.answers: dict[str, asyncio.Future[str]] = {}
        self.said: dict[int, float] = {}

    # ---------------------------------------------------------------- what the fake sees
    def on_message(self, at: float, thread: int | None, message_id: int, text: str) -> None:
        if thread is not None:
            if text.startswith(self.t.card):
                found = re.search(r"#(\d+)", text)
                if found:
                    case_id = int(found.group(1))
                    self.cards[case_id] = (thread, message_id)
                    self.thread_case[thread] = case_id
                    if "CRITICAL" in text.upper() or "критич" in text.lower():
                        self.critical.add(case_id)
            queue = self.threads.get(thread)
            if queue is not None:
                queue.put_nowait((at, message_id, text))
        phase = self.sim.clock.current
        for kind, number in MARK.findall(text):
            n = int(number)
            if kind == "d" and n in self.sim.danger_sent and n not in self.marker_case:
                sent = self.sim.danger_sent[n]
                if phase is not None:
                    phase.danger.append(at - sent)
                    handed = self.sim.fake.handed.get(self.sim.danger_update.get(n, -1))
                    if handed is not None:
                        phase.danger_queued.append(handed - sent)
                case_id = self.thread_case.get(thread or 0)
                if case_id is not None:
                    self.marker_case[n] = case_id
                    self.critical.add(case_id)
                    event = self._marker_events.pop(n, None)
                    if event is not None:
                        event.set()
            elif kind == "r" and n in self.sim.relay_sent:
                sent = self.sim.relay_sent.pop(n)
                if phase is not None:
                    phase.to_desk.append(at - sent)

    def on_answer(self, query_id: str, text: str) -> None:
        future = self.answers.pop(query_id, None)
        if future is not None and not future.done():
            future.set_result(text)

    async def case_of_marker(self, n: int, within: float) -> int | None:
        if n not in self.marker_case:
            event = self._marker_events.setdefault(n, asyncio.Event())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), within)
        return self.marker_case.get(n)

    # ---------------------------------------------------------------- the queue
    def enqueue(self, case_id: int, child: Child) -> None:
        self.waiting[case_id] = child

    def withdraw(self, case_id: int) -> bool:
        """The child gives up waiting: True if no counsellor has taken the case meanwhile."""
        return self.waiting.pop(case_id, None) is not None

    def pick(self) -> int | None:
        """The oldest waiting critical case whose card is up, else the oldest waiting one."""
        ready = [c for c in self.waiting if c in self.cards]
        if not ready:
            return None
        critical = [c for c in ready if c in self.critical]
        case_id = (critical or ready)[0]
        del self.waiting[case_id]
        return case_id

    # ---------------------------------------------------------------- counsellors
    async def counsellor(self, uid: int, capacity: int) -> None:
        held: set[asyncio.Task[None]] = set()
        while not self.sim.clock.stopping:
            if len(held) < capacity:
                case_id = self.pick()
                if case_id is not None:
                    task = asyncio.create_task(self._handle(uid, case_id))
                    held.add(task)
                    task.add_done_callback(held.discard)
                    continue
            await asyncio.sleep(0.1)
        for task in held:
            task.cancel()

    async def _thread_message(self, thread: int, prefixes: tuple[str, ...],
                              within: float) -> tuple[float, int, str] | None:
        queue = self.threads[thread]
        deadline = perf() + within
        while (remaining := deadline - perf()) > 0:
            try:
                item = await asyncio.wait_for(queue.get(), remaining)
            except TimeoutError:
                return None
            if item[2].startswith(prefixes):
                return item
        return None

    async def _press(self, uid: int, data: str, thread: int, message_id: int,
                     within: float) -> str | None:
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        query_id = self.sim.fake.staff_press(uid, data, thread, message_id)
        self.answers[query_id] = future
        try:
            return await asyncio.wait_for(future, within)
        except TimeoutError:
            self.answers.pop(query_id, None)
            return None

    async def _handle(self, uid: int, case_id: int) -> None:
        clock, timeout = self.sim.clock, self.sim.turn_timeout
        thread, card = self.cards[case_id]
        self.threads.setdefault(thread, asyncio.Queue())
        try:
            await clock.pause(0.3)
            answer = await self._press(uid, f"dk|take|{case_id}", thread, card, timeout)
            if answer != self.t.taken_you:
                return
            if clock.current is not None:
                clock.current.cases_taken += 1
            await clock.pause(0.5)
            self.said[case_id] = self.sim.fake.staff_text(
                uid, thread, "Здравствуй! Я консультант линии помощи. Расскажи, что случилось?")
            await self._thread_message(thread, self.t.relay, timeout * 2)
            await clock.pause(0.5)
            self.sim.fake.staff_text(uid, thread, "/close")
            picker = await self._thread_message(thread, self.t.picker, timeout)
            if picker is None:
                return
            await clock.pause(0.3)
            done = await self._press(uid, f"dk|out|{case_id}|advice-given", thread, picker[1],
                                     timeout)
            if done is not None and clock.current is not None:
                clock.current.cases_closed += 1
        finally:
            self.threads.pop(thread, None)


# =====================================================================================
# Processes
# =====================================================================================
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def spawn(command: list[str], log: Path, env: dict[str, str] | None = None
          ) -> subprocess.Popen[bytes]:
    """A child process writing to `log` (started from async code: Popen returns at once)."""
    with log.open("wb") as out:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=out,
                                stdin=subprocess.DEVNULL)


def python() -> str:
    venv = ROOT / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


async def wait_for_polling(fake: FakeBotAPI, proc: subprocess.Popen[bytes], log: Path,
                           within: float = 120) -> None:
    deadline = perf() + within
    while fake.polls == 0:
        if proc.poll() is not None:
            raise SystemExit(f"the bot exited ({proc.returncode}):\n{tail(log)}")
        if perf() > deadline:
            raise SystemExit(f"the bot did not start polling:\n{tail(log)}")
        await asyncio.sleep(0.1)


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def start_profiler(args: argparse.Namespace, pid: int, name: str,
                   seconds: float) -> subprocess.Popen[bytes] | None:
    """py-spy on the bot for one window (--profile DIR): DIR/NAME.txt, collapsed stacks."""
    if args.profile is None:
        return None
    spy = shutil.which("py-spy", path=str(ROOT / ".venv" / "bin")) or shutil.which("py-spy")
    if spy is None:
        print("(--profile needs py-spy: .venv/bin/pip install py-spy)", file=sys.stderr)
        return None
    args.profile.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([spy, "record", "-p", str(pid), "-d", str(int(seconds)), "-r", "50",
                             "-f", "raw", "-o", str(args.profile / f"{name}.txt")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def finish_profiler(profiler: subprocess.Popen[bytes] | None) -> None:
    if profiler is not None:
        try:
            profiler.wait(timeout=30)
        except subprocess.TimeoutExpired:
            profiler.kill()


async def metric_updates(port: int) -> tuple[float, float]:
    """(moment, helpline_updates_total) from the bot's /metrics."""
    import aiohttp

    async with aiohttp.ClientSession() as session, session.get(
        f"http://127.0.0.1:{port}/metrics", timeout=aiohttp.ClientTimeout(total=60)
    ) as response:
        body = await response.text()
    at = perf()
    total = 0.0
    for line in body.splitlines():
        if line.startswith("helpline_updates_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return at, total


class Window:
    """Measure one phase: counters and CPU at both ends."""

    def __init__(self, phase: Phase, fake: FakeBotAPI, bot_pid: int,
                 metrics_port: int | None) -> None:
        self.phase, self.fake, self.pid, self.port = phase, fake, bot_pid, metrics_port

    async def __aenter__(self) -> Window:
        self.acked = self.fake.acked
        self.pushed = self.fake.pushed
        self.staff_sent = self.fake.staff_sent
        self.cpu = cpu_seconds(self.pid), cpu_seconds(os.getpid())
        if self.port is not None:
            self.start, self.count = await metric_updates(self.port)
        else:
            self.start, self.count = perf(), 0.0
        return self

    async def __aexit__(self, *exc: object) -> None:
        phase = self.phase
        if self.port is not None:
            end, count = await metric_updates(self.port)
        else:
            end, count = perf(), float(phase.replies)
        phase.seconds = end - self.start
        phase.updates = count - self.count
        phase.acked = self.fake.acked - self.acked
        phase.pushed = self.fake.pushed - self.pushed
        phase.staff_sent = self.fake.staff_sent - self.staff_sent
        phase.cpu_bot = (cpu_seconds(self.pid) - self.cpu[0]) / phase.seconds
        phase.cpu_bench = (cpu_seconds(os.getpid()) - self.cpu[1]) / phase.seconds


async def run_echo(args: argparse.Namespace, workdir: Path) -> tuple[Phase, float | None]:
    fake = FakeBotAPI()
    url = await fake.start()
    clock = Clock()
    log = workdir / "echo.log"
    proc = spawn([python(), str(ROOT / "bench" / "echo_bot.py"), url, TOKEN], log)
    users: list[asyncio.Task[None]] = []
    try:
        await wait_for_polling(fake, proc, log)
        users = [asyncio.create_task(EchoUser(fake, clock, FIRST_CHILD + i).run())
                 for i in range(args.users)]
        await asyncio.sleep(3)
        phase = Phase("echo (saturated)", users=args.users)
        clock.current = phase
        async with Window(phase, fake, proc.pid, None):
            await asyncio.sleep(args.echo_seconds)
            clock.current = None
        phase.updates = float(phase.replies)
        rss = peak_rss_mb(proc.pid)
    finally:
        clock.stopping = True
        stop_process(proc)
        for task in users:
            task.cancel()
        await asyncio.gather(*users, return_exceptions=True)
        await fake.stop()
    return phase, rss


# =====================================================================================
# The help line
# =====================================================================================
HOURS_24_7 = """timezone: Europe/Moscow
zone_label: {ru: "по московскому времени", en: "Moscow time"}
weekly: {mon: ["00:00-24:00"], tue: ["00:00-24:00"], wed: ["00:00-24:00"], thu: ["00:00-24:00"],
         fri: ["00:00-24:00"], sat: ["00:00-24:00"], sun: ["00:00-24:00"]}
"""


@dataclass
class Database:
    url: str
    label: str
    sqlite_path: Path | None = None
    admin_url: str | None = None  # PostgreSQL: where to drop the database afterwards
    name: str | None = None


async def make_database(kind: str, workdir: Path) -> Database:
    if kind == "sqlite":
        path = workdir / "helpline.db"
        return Database(f"sqlite+aiosqlite:///{path}", "SQLite", sqlite_path=path)
    import asyncpg

    base = pg_base_url()
    assert base is not None
    name = f"helpline_bench_{os.getpid()}"
    plain = base.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(plain)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await conn.execute(f'CREATE DATABASE "{name}"')
        version = await conn.fetchval("SHOW server_version")
    finally:
        await conn.close()
    url = base.rsplit("/", 1)[0] + "/" + name
    return Database(url, f"PostgreSQL {version.split()[0]}", admin_url=plain, name=name)


async def database_figures(db: Database) -> tuple[float, int, int, int, str]:
    """(size in MB, conversations, messages, journalled updates, the biggest tables)."""
    if db.sqlite_path is not None:
        with contextlib.closing(sqlite3.connect(db.sqlite_path)) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conversations = conn.execute("SELECT count(*) FROM conversations").fetchone()[0]
            messages = conn.execute("SELECT count(*) FROM messages").fetchone()[0]
            updates = conn.execute("SELECT count(*) FROM inbox").fetchone()[0]
            try:
                owner = {name: table for table, name in conn.execute(
                    "SELECT tbl_name, name FROM sqlite_schema").fetchall()}
                sizes: dict[str, int] = {}
                for name, pages in conn.execute(
                        "SELECT name, sum(pgsize) FROM dbstat GROUP BY name"):
                    table = owner.get(name, name)
                    sizes[table] = sizes.get(table, 0) + int(pages)
                top = sorted(sizes.items(), key=lambda kv: -kv[1])[:6]
                breakdown = ", ".join(f"{name} {size / 1e6:.1f}" for name, size in top)
            except sqlite3.Error:
                breakdown = ""
        size = db.sqlite_path.stat().st_size
        return size / 1e6, int(conversations), int(messages), int(updates), breakdown
    import asyncpg

    conn = await asyncpg.connect(db.url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        size = await conn.fetchval("SELECT pg_database_size(current_database())")
        conversations = await conn.fetchval("SELECT count(*) FROM conversations")
        messages = await conn.fetchval("SELECT count(*) FROM messages")
        updates = await conn.fetchval("SELECT count(*) FROM inbox")
        top = await conn.fetch(
            "SELECT relname, pg_total_relation_size(relid) AS size FROM pg_statio_user_tables "
            "ORDER BY size DESC LIMIT 6")
    finally:
        await conn.close()
    breakdown = ", ".join(f"{r['relname']} {r['size'] / 1e6:.1f}" for r in top)
    return size / 1e6, int(conversations), int(messages), int(updates), breakdown


async def drop_database(db: Database) -> None:
    if db.admin_url is None:
        return
    import asyncpg

    conn = await asyncpg.connect(db.admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{db.name}" WITH (FORCE)')
    finally:
        await conn.close()


async def run_cli(env: dict[str, str], *args: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        python(), "-m", "bot", *args, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"helpline {' '.join(args)} failed:\n{out.decode()[-3000:]}")


@dataclass
class HelplineResult:
    label: str
    paced: Phase
    saturated: Phase
    rss: float | None
    db_mb: float
    conversations: int
    messages: int
    updates: int
    startup: float
    tables: str


async def run_helpline(args: argparse.Namespace, kind: str, workdir: Path) -> HelplineResult:
    texts = Texts()
    db = await make_database(kind, workdir)
    fake = FakeBotAPI()
    url = await fake.start()
    hours = workdir / "hours.yaml"
    hours.write_text(HOURS_24_7, encoding="utf-8")
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TELEGRAM_", "VK_", "WEB_", "HELPLINE_"))}
    env.update(
        DATABASE_URL=db.url, KEYS_FILE=str(workdir / "keys.json"),
        EVIDENCE_DIR=str(workdir / "evidence"), TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_API_URL=url, TELEGRAM_STAFF_CHAT_ID=str(STAFF_CHAT), TELEGRAM_WEBHOOK_URL="",
        VK_TOKEN="", WEB_ENABLED="false", WEBHOOK_HOST="127.0.0.1", WEBHOOK_PORT=str(port),
        LOG_LEVEL=os.environ.get("BENCH_LOG_LEVEL", "WARNING"), HOURS_FILE=str(hours),
        ENCRYPTION_KEYS="", ID_HASH_KEY="",
        COUNSELLOR_CAPACITY=str(args.capacity), SEND_PACING="off",
    )
    began = perf()
    await run_cli(env, "db", "upgrade")
    ids = [FIRST_COUNSELLOR + i for i in range(args.counsellors)]
    # Two at a time on PostgreSQL (this machine has two cores); one at a time on SQLite, where
    # two processes writing a fresh file at once may find it locked.
    step = 1 if kind == "sqlite" else 2
    for start in range(0, len(ids), step):
        await asyncio.gather(*(run_cli(env, "counsellor", "add", f"c{uid}", "--channel",
                                       "telegram", "--id", str(uid))
                               for uid in ids[start:start + step]))
    log = workdir / f"helpline-{kind}.log"
    proc = spawn([python(), "-m", "bot", "run"], log, env)  # as shipped
    clock = Clock()
    sim = Sim(fake, clock, texts, wait=args.wait, turn_timeout=args.turn_timeout)
    tasks: list[asyncio.Task[None]] = []
    try:
        await wait_for_polling(fake, proc, log)
        startup = perf() - began
        clock.think = args.think
        tasks += [asyncio.create_task(sim.desk.counsellor(uid, args.capacity)) for uid in ids]
        for i in range(args.users):  # arrive over a few seconds, not all in one instant
            tasks.append(asyncio.create_task(Child(sim).run()))
            if i % 50 == 49:
                await asyncio.sleep(args.ramp * 50 / args.users)
        await asyncio.sleep(args.warmup)
        paced = Phase(f"{kind}: {args.users} users, think {args.think[0]:g}-{args.think[1]:g} s",
                      users=args.users)
        clock.current = paced
        profiler = start_profiler(args, proc.pid, f"{kind}-paced", args.duration)
        async with Window(paced, fake, proc.pid, port):
            await asyncio.sleep(args.duration)
            clock.current = None
        finish_profiler(profiler)
        clock.think = (0.0, 0.0)
        await asyncio.sleep(5)
        saturated = Phase(f"{kind}: {args.users} users, no pause (saturated)", users=args.users)
        clock.current = saturated
        profiler = start_profiler(args, proc.pid, f"{kind}-saturated", args.saturated_seconds)
        async with Window(saturated, fake, proc.pid, port):
            await asyncio.sleep(args.saturated_seconds)
            clock.current = None
        finish_profiler(profiler)
        rss = peak_rss_mb(proc.pid)
    finally:
        clock.stopping = True
        stop_process(proc)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await fake.stop()
    if os.environ.get("BENCH_KEEP"):
        print("staff posts by first words:", fake.staff_kinds.most_common(25))
    if proc.returncode not in (0, -signal.SIGTERM):
        print(f"(the bot exited with {proc.returncode}; log: {log})", file=sys.stderr)
    errors = [line for line in log.read_text(errors="replace").splitlines()
              if " ERROR " in line or "Traceback" in line]
    if errors:
        print(f"(the bot logged {len(errors)} errors, e.g. {errors[0][:200]}; log: {log})",
              file=sys.stderr)
    size, conversations, messages, updates, tables = await database_figures(db)
    await drop_database(db)
    return HelplineResult(db.label, paced, saturated, rss, size, conversations, messages, updates,
                          startup, tables)


# =====================================================================================
# Report
# =====================================================================================
def machine() -> str:
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (f"{os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), {model}; "
            f"Python {platform.python_version()}; {platform.system()} {platform.release()}")


def ms(value: float | None) -> str:
    return "—" if value is None else f"{value * 1000:,.0f}"


def table(echo: Phase, echo_rss: float | None, results: list[HelplineResult]) -> str:
    columns: list[tuple[str, Phase, HelplineResult | None]] = [("bare aiogram echo", echo, None)]
    for r in results:
        columns.append((f"helpline, {r.label}, think {r.paced.name.split('think ')[1]}",
                        r.paced, r))
        columns.append((f"helpline, {r.label}, saturated", r.saturated, r))
    rows: list[tuple[str, list[str]]] = []

    def row(name: str, cells: list[str]) -> None:
        rows.append((name, cells))

    row("simulated users", [str(p.users) for _, p, _ in columns])
    row("measured window, s", [f"{p.seconds:.0f}" for _, p, _ in columns])
    row("updates offered per second", [f"{p.pushed / p.seconds:,.0f}" if p.seconds else "—"
                                       for _, p, _ in columns])
    row("updates handled per second", [f"{p.rate:,.0f}" for _, p, _ in columns])
    row("ratio to the echo bot", ["1.00"] + [f"{p.rate / echo.rate:.2f}" if echo.rate else "—"
                                             for _, p, _ in columns[1:]])
    for q in (50, 95, 99):
        row(f"reply latency p{q}, ms", [ms(pct(p.latency, q)) for _, p, _ in columns])
    row("danger → staff alert p50, ms", ["n/a"] + [ms(pct(p.danger, 50))
                                                   for _, p, _ in columns[1:]])
    row("danger → staff alert p99, ms", ["n/a"] + [ms(pct(p.danger, 99))
                                                   for _, p, _ in columns[1:]])
    row("of which waiting at Telegram p50 / p99, ms",
        ["n/a"] + [f"{ms(pct(p.danger_queued, 50))} / {ms(pct(p.danger_queued, 99))}"
                   for _, p, _ in columns[1:]])
    row("danger messages (alerts seen)", ["n/a"] + [f"{p.dangers_sent} ({len(p.danger)})"
                                                    for _, p, _ in columns[1:]])
    row("counsellor → child p50 / p99, ms",
        ["n/a"] + [f"{ms(pct(p.to_child, 50))} / {ms(pct(p.to_child, 99))}"
                   for _, p, _ in columns[1:]])
    row("child → counsellor p50 / p99, ms",
        ["n/a"] + [f"{ms(pct(p.to_desk, 50))} / {ms(pct(p.to_desk, 99))}"
                   for _, p, _ in columns[1:]])
    row("cases taken / closed / child gave up",
        ["n/a"] + [f"{p.cases_taken} / {p.cases_closed} / {p.gave_up}"
                   for _, p, _ in columns[1:]])
    row("staff-group posts per minute (Telegram allows 20)",
        ["n/a"] + [f"{p.staff_sent / p.seconds * 60:,.0f}" if p.seconds else "—"
                   for _, p, _ in columns[1:]])
    row("turns without an answer in time", [str(p.stuck) for _, p, _ in columns])
    row("flood-limit replies", ["n/a"] + [str(p.flood) for _, p, _ in columns[1:]])
    row("CPU: bot / fake+people, % of a core",
        [f"{p.cpu_bot * 100:.0f} / {p.cpu_bench * 100:.0f}" for _, p, _ in columns])
    row("peak RSS of the bot (VmHWM), MB",
        [f"{echo_rss:.0f}" if echo_rss else "—"]
        + [f"{r.rss:.0f}" if r and r.rss else "—" for _, _, r in columns[1:]])
    row("database size per 1,000 conversations, MB",
        ["n/a"] + [f"{r.db_mb / r.conversations * 1000:.2f}" if r and r.conversations else "—"
                   for _, _, r in columns[1:]])
    row("database size per 1,000 updates handled, MB",
        ["n/a"] + [f"{r.db_mb / r.updates * 1000:.2f}" if r and r.updates else "—"
                   for _, _, r in columns[1:]])
    row("database: MB / conversations / child lines kept / updates",
        ["n/a"] + [f"{r.db_mb:.1f} / {r.conversations} / {r.messages} / {r.updates}" if r
                   else "—" for _, _, r in columns[1:]])
    header = ["figure"] + [name for name, _, _ in columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join([name, *cells]) + " |" for name, cells in rows]
    return "\n".join(lines)


# =====================================================================================
# Entry point
# =====================================================================================
def pg_base_url() -> str | None:
    for name in ("DATABASE_URL", "HELPLINE_TEST_DATABASE_URL"):
        value = os.environ.get(name, "")
        if value.startswith("postgresql"):
            if "+asyncpg" not in value:
                value = value.replace("postgresql://", "postgresql+asyncpg://", 1)
            return value
    return None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=int, default=1000, help="simulated children (default 1000)")
    p.add_argument("--duration", type=float, default=60,
                   help="seconds measured with thinking users (default 60); the saturated "
                        "phase lasts half of it, the echo bot a third")
    p.add_argument("--db", choices=["sqlite", "pg", "both"], default="sqlite")
    p.add_argument("--think", default="5-15",
                   help="seconds a child reads and types between messages, LOW-HIGH "
                        "(default 5-15)")
    p.add_argument("--counsellors", type=int, default=6)
    p.add_argument("--capacity", type=int, default=5, help="cases a counsellor holds at once")
    p.add_argument("--wait", type=float, default=30,
                   help="seconds a child waits for a counsellor before leaving the queue")
    p.add_argument("--turn-timeout", type=float, default=60)
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    p.add_argument("--profile", type=Path, default=None,
                   help="record the bot with py-spy in each window: DIR/<db>-<phase>.txt "
                        "(collapsed stacks, for flamegraph.pl or speedscope)")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    low, _, high = args.think.partition("-")
    args.think = (float(low), float(high or low))
    args.saturated_seconds = max(10.0, args.duration / 2)
    args.echo_seconds = max(10.0, args.duration / 3)
    args.ramp = min(10.0, max(2.0, args.users / 200))
    args.warmup = 10.0
    return args


async def amain(args: argparse.Namespace) -> int:
    random.seed(args.seed)
    kinds = ["sqlite", "pg"] if args.db == "both" else [args.db]
    workdir = Path(tempfile.mkdtemp(prefix="helpline-bench-"))
    try:
        print(f"machine: {machine()}", flush=True)
        print(f"echo bot, {args.users} users...", flush=True)
        echo, echo_rss = await run_echo(args, workdir)
        print(f"  {echo.rate:,.0f} updates/s", flush=True)
        results = []
        for kind in kinds:
            print(f"helpline on {kind}, {args.users} users: {args.duration:g} s thinking, "
                  f"{args.saturated_seconds:g} s saturated...", flush=True)
            result = await run_helpline(args, kind, workdir)
            print(f"  {result.paced.rate:,.0f} / {result.saturated.rate:,.0f} updates/s "
                  f"(started in {result.startup:.1f} s)", flush=True)
            results.append(result)
        print()
        print(table(echo, echo_rss, results))
        print()
        for r in results:
            if r.tables:
                print(f"{r.label}: biggest tables with their indexes, MB: {r.tables}")
        for r in results:
            print(f"{r.label}: throughput ratio to the bare echo bot = "
                  f"{r.saturated.rate / echo.rate:.2f} (target ≥ 0.5); danger alert p99 at "
                  f"{args.users} thinking users = {ms(pct(r.paced.danger, 99))} ms "
                  f"(target < 200 ms)")
        if args.json is not None:
            def dump(p: Phase) -> dict[str, Any]:
                return {"name": p.name, "users": p.users, "seconds": p.seconds,
                        "updates_per_second": p.rate, "acked": p.acked,
                        **{f"latency_p{q}": pct(p.latency, q) for q in (50, 95, 99)},
                        "danger_p50": pct(p.danger, 50), "danger_p99": pct(p.danger, 99),
                        "danger_queued_p99": pct(p.danger_queued, 99),
                        "dangers": p.dangers_sent, "alerts": len(p.danger),
                        "to_child_p50": pct(p.to_child, 50), "to_child_p99": pct(p.to_child, 99),
                        "staff_posts": p.staff_sent, "stuck": p.stuck, "flood": p.flood,
                        "cpu_bot": p.cpu_bot, "cpu_bench": p.cpu_bench}
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({
                "machine": machine(), "echo": dump(echo), "echo_rss_mb": echo_rss,
                "helpline": [{"db": r.label, "paced": dump(r.paced),
                              "saturated": dump(r.saturated), "rss_mb": r.rss,
                              "db_mb": r.db_mb, "conversations": r.conversations,
                              "messages": r.messages, "updates": r.updates,
                              "tables": r.tables} for r in results]}, indent=2))
    finally:
        if os.environ.get("BENCH_KEEP"):
            print(f"kept {workdir} (BENCH_KEEP)")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


def main() -> int:
    args = parse_args()
    if args.db in ("pg", "both") and pg_base_url() is None:
        if os.environ.get("HELPLINE_BENCH_PG_WRAPPED"):
            raise SystemExit("no PostgreSQL URL even under scripts/with-postgres.sh")
        env = {**os.environ, "HELPLINE_BENCH_PG_WRAPPED": "1"}
        command = [str(ROOT / "scripts" / "with-postgres.sh"), python(),
                   str(THIS), *sys.argv[1:]]
        return subprocess.call(command, env=env)
    return asyncio.run(amain(args))


if __name__ == "__main__":
    sys.exit(main())
