"""The simulated children: scripts walked turn by turn (a report, a safety question, danger,
asking for a person), waiting for a counsellor and rating the help; and the echo bot's users."""

from __future__ import annotations

import asyncio
import itertools
import random
import re
import time

from .desk import DeskSim
from .fake import Switchboard
from .measure import Clock
from .texts import Texts

FIRST_CHILD = 10_000_000
QUESTIONS = [
    "меня травят в вк", "взломали аккаунт", "как сохранить скриншоты",
    "фейковая страница от моего имени", "мошенники в игре", "незнакомец просит фото",
    "как закрыть профиль", "одноклассники смеются в чате", "что делать если угрожают",
]
WHAT = ["insults", "threats", "excluded", "fake_page", "photos_shared", "stranger", "demands",
        "other"]
WHERE = ["vk", "telegram", "whatsapp", "tiktok", "youtube", "game", "other"]
CASE_NO = re.compile(r"№(\d+)")
perf = time.perf_counter


class Stuck(Exception):
    """A turn got no answer in time: the child walks away (and comes back as someone new)."""


class EchoUser:
    def __init__(self, board: Switchboard, clock: Clock, uid: int) -> None:
        self.board, self.clock, self.uid = board, clock, uid
        self.queue: asyncio.Queue[tuple[float, str]] = asyncio.Queue()
        board.private[uid] = self.queue

    async def run(self) -> None:
        n = 0
        while not self.clock.stopping:
            n += 1
            sent = self.board.child_text(self.uid, f"привет {n}")
            try:
                at, _ = await asyncio.wait_for(self.queue.get(), 30)
            except TimeoutError:
                if self.clock.current is not None:
                    self.clock.current.stuck += 1
                continue
            phase = self.clock.current  # samples belong to the window they arrive in
            if phase is not None:
                phase.latency.append(at - sent)
                phase.latency_sent.append(sent)
                phase.replies += 1
            await self.clock.pause()


class Sim:
    """What the children and counsellors share: the fake, the texts, markers, the desk."""

    def __init__(self, board: Switchboard, clock: Clock, texts: Texts, *, wait: float,
                 turn_timeout: float) -> None:
        self.board, self.clock, self.texts = board, clock, texts
        self.wait = wait  # how long a child waits for a counsellor
        self.turn_timeout = turn_timeout
        self.uids = itertools.count(FIRST_CHILD)
        self.markers = itertools.count(1)
        self.danger_sent: dict[int, float] = {}
        self.danger_update: dict[int, int] = {}  # marker -> its update id
        self.relay_sent: dict[int, float] = {}
        # Danger markers measured on their own: marker -> seconds to the staff alert, once seen.
        self.apart: dict[int, float | None] = {}
        self.desk = DeskSim(self)
        board.desk = self.desk


class Child:
    def __init__(self, sim: Sim) -> None:
        self.sim, self.t = sim, sim.texts
        self.queue: asyncio.Queue[tuple[float, str]] = asyncio.Queue()
        self.uid = 0
        self.case_id: int | None = None
        self.tokens, self.updated = 10.0, perf()
        self._new_identity()

    def _new_identity(self) -> None:
        self.sim.board.private.pop(self.uid, None)
        self.uid = next(self.sim.uids)
        self.case_id = None
        self.queue = asyncio.Queue()
        self.sim.board.private[self.uid] = self.queue

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
            return self.sim.board.child_press(self.uid, payload)
        assert text is not None
        return self.sim.board.child_text(self.uid, text)

    async def turn(self, expect: tuple[str, ...], *, text: str | None = None,
                   payload: str | None = None, danger: int | None = None) -> str:
        """Send one update; wait for the turn's last message (one starting with `expect`)."""
        self._drain()
        clock = self.sim.clock
        sent = await self.send(text=text, payload=payload)
        if danger is not None:
            self.sim.danger_sent[danger] = sent
            self.sim.danger_update[danger] = self.sim.board.pushed_id
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
                    phase.latency_sent.append(sent)
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
        await self.sim.clock.pause(0.5)
        await self.turn(t.rate_thanks, payload="cs|comment|skip")
        self.case_id = None
