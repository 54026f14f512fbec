"""Kill the worker while children wait for a counsellor: the staff group still gets every
child's message in the case's topic exactly once, one topic per case, and a critical case is
announced and pinned once.

The real `helpline run` (long polling, a staff forum group) runs in a subprocess against the fake
Bot API and is killed with SIGKILL at random moments. Each child asks for a person and then
writes several lines while waiting; some write danger words. As in test_kill.py, the one window
no design can close is a call Telegram accepted just before the kill whose result the worker had
not yet recorded: a repeat is allowed only for a call the fake received within moments of a kill.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import time
from collections import Counter
from pathlib import Path

from aiohttp import web

from tests.reliability.test_kill import GRACE, _env, _start, _stop, _upgrade
from tests.telegram.fake_api import STAFF_CHAT, FakeTelegram

USERS = list(range(6101, 6109))
LINES = 4
DANGER = "я больше не хочу жить"
DANGER_USERS = set(USERS[:2])


class StaffRecorder(FakeTelegram):
    """The fake Bot API, noting when each staff-group call arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.staff: list[tuple[float, str, str, int | None]] = []  # at, method, text, thread
        self.child_replies: dict[int, int] = Counter()
        self.busy = asyncio.Event()

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if method in ("sendMessage", "createForumTopic", "pinChatMessage"):
            self.busy.set()
            await asyncio.sleep(0.02)  # a slow network: the worker may die mid-call
        response = await super()._api(request)
        call = self.calls[-1] if self.calls else None
        if call is not None and call.method == method:
            if call.chat_id == STAFF_CHAT and not call.get("reply_markup"):
                # A line relayed into the topic (a case's card, with its buttons, quotes the
                # child's recent lines: it is not a relay).
                self.staff.append((time.monotonic(), method, call.text or
                                   str(call.get("name") or ""), call.thread))
            elif method == "sendMessage" and call.chat_id in USERS:
                self.child_replies[int(call.chat_id)] += 1
        return response

    def in_topics(self, text: str) -> list[float]:
        return [at for at, method, said, _ in self.staff
                if method == "sendMessage" and text in said]


def _line(user: int, n: int) -> str:
    return f"строчка {n} от {user}"


async def _child(fake: StaffRecorder, user: int, done: asyncio.Event) -> None:
    async def replies(count: int) -> None:
        while fake.child_replies[user] < count:  # noqa: ASYNC110 - polls the fake's record
            await asyncio.sleep(0.01)

    async def relayed(text: str) -> None:
        while not fake.in_topics(text):  # noqa: ASYNC110 - polls the fake's record
            await asyncio.sleep(0.01)

    await fake.push(fake.private_message(user, text="привет"))
    await replies(2)
    await fake.push(fake.press(user, "st|role|child"))
    await replies(3)
    await fake.push(fake.press(user, "g|person"))  # a case waits; the desk gets a topic
    await replies(4)
    for n in range(LINES):
        text = _line(user, n)
        if user in DANGER_USERS and n == 1:
            text = f"{DANGER}. {text}"
        await fake.push(fake.private_message(user, text=text))
        await relayed(_line(user, n))
    done.set()


def _repeats_outside_kills(times: list[float], kills: list[float]) -> bool:
    """A second copy is allowed only when a kill fell just after the first one was accepted."""
    if len(times) <= 1:
        return False
    first = min(times)
    return not any(first <= k <= first + GRACE for k in kills)


async def test_killing_the_worker_keeps_the_desk_exact(tmp_path: Path) -> None:
    fake = StaffRecorder()
    await fake.start()
    env = {**_env(tmp_path, fake.url), "TELEGRAM_STAFF_CHAT_ID": str(STAFF_CHAT)}
    await _upgrade(env)
    log = (tmp_path / "worker.log").open("ab")
    rng = random.Random(20261202)
    kills: list[float] = []
    worker = _start(env, log)
    finished = [asyncio.Event() for _ in USERS]
    children = [asyncio.create_task(_child(fake, u, e))
                for u, e in zip(USERS, finished, strict=True)]
    try:
        deadline = time.monotonic() + 240
        while not all(e.is_set() for e in finished) and time.monotonic() < deadline:
            if len(kills) < int(os.environ.get("HELPLINE_KILLS", "10")):
                await asyncio.sleep(rng.uniform(1.0, 2.0))
                if len(kills) % 2:
                    fake.busy.clear()  # kill mid-call to the staff group or a child
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(fake.busy.wait(), 5)
                if all(e.is_set() for e in finished):
                    break
                worker.send_signal(signal.SIGKILL)
                worker.wait(timeout=10)
                kills.append(time.monotonic())
                worker = _start(env, log)
            else:
                await asyncio.sleep(0.2)
        assert all(e.is_set() for e in finished), (
            f"not every line reached the desk: {[e.is_set() for e in finished]}; "
            f"log: {(tmp_path / 'worker.log').read_text()[-3000:]}"
        )
        await asyncio.sleep(2)  # announcements and pins the last turns asked for
    finally:
        for task in children:
            task.cancel()
        _stop(worker, wait=15)
        await fake.stop()
        log.close()
    assert len(kills) >= 4
    duplicated = [
        _line(u, n) for u in USERS for n in range(LINES)
        if _repeats_outside_kills(fake.in_topics(_line(u, n)), kills)
    ]
    topics = [at for at, method, _, _ in fake.staff if method == "createForumTopic"]
    pins = [at for at, method, _, _ in fake.staff if method == "pinChatMessage"]
    spare_topics = len(topics) - len(USERS)
    spare_pins = len(pins) - len(DANGER_USERS)
    near_kill = sum(1 for at in topics + pins if any(at <= k <= at + GRACE for k in kills))
    print(f"kills {len(kills)}: duplicated lines {len(duplicated)}, topics {len(topics)} "
          f"for {len(USERS)} cases, pins {len(pins)} for {len(DANGER_USERS)} critical cases")
    assert duplicated == [], duplicated
    assert 0 <= spare_topics + max(spare_pins, 0) <= near_kill, (
        f"{len(topics)} topics for {len(USERS)} cases, {len(pins)} pins for "
        f"{len(DANGER_USERS)} critical cases ({near_kill} calls just before a kill)"
    )
    assert len(pins) >= len(DANGER_USERS), "every critical case was announced and pinned"
