"""The staff forum as the counsellors see it (cards, topics, the lines copied into them), and the
counsellors themselves: critical cases first, take, write, read the answer, close."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .people import Child, Sim

MARK = re.compile(r"\[([dr])(\d+)\]")
perf = time.perf_counter


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
                if n in self.sim.apart:  # measured on its own (the flooder's), not in a phase
                    if self.sim.apart[n] is None:
                        self.sim.apart[n] = at - sent
                elif phase is not None:
                    phase.danger.append(at - sent)
                    handed = self.sim.board.fake.handed.get(self.sim.danger_update.get(n, -1))
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
        query_id = self.sim.board.staff_press(uid, data, thread, message_id)
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
            self.said[case_id] = self.sim.board.staff_text(
                uid, thread, "Здравствуй! Я консультант линии помощи. Расскажи, что случилось?")
            await self._thread_message(thread, self.t.relay, timeout * 2)
            await clock.pause(0.5)
            self.sim.board.staff_text(uid, thread, "/close")
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
