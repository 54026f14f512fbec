"""Kill the worker mid-dialog, many times at different points: once restarted it loses no
child's message and sends no reply twice.

The real `helpline run` runs in a subprocess (Telegram long polling against the fake Bot API) and
is killed with SIGKILL at random moments while several children write to it. The one window no
design can close is a reply Telegram accepted just before the kill, whose delivery the worker
had not yet recorded: Telegram's sendMessage has no idempotency key. Such a reply may be repeated
once; the test allows it only for replies in flight at a kill (the fake may record one after
the kill, the worker never having heard back) or received within moments before it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.telegram.fake_api import TOKEN, FakeTelegram

ROOT = Path(__file__).resolve().parents[2]
# Enough children writing at once to keep the worker busy, so that random kills land in the
# middle of handling, not only between messages.
USERS = list(range(5101, 5113))
QUESTIONS = ["меня травят в вк", "взломали аккаунт", "как сохранить скриншоты",
             "фейковая страница от моего имени", "мошенники в игре"]
# Replies each child must get, in order: the notice and the role question, the menu, the
# question prompt, then one answer per question.
EXPECTED = 4 + len(QUESTIONS)
GRACE = 0.5  # a reply received this close before a kill may be repeated once after it


class Recorder(FakeTelegram):
    """The fake Bot API, noting when each message to a child arrived, and signalling the two
    moments worth a kill: the worker has just acknowledged a batch of updates (they are
    journalled, maybe not yet handled), and a reply to a child is in flight."""

    def __init__(self) -> None:
        super().__init__()
        # (when the request came in, when it was recorded, chat, text) of each message to a
        # child: a kill while it was in flight may leave it recorded after the kill, the
        # worker never having heard back.
        self.arrivals: list[tuple[float, float, int, str]] = []
        self.served = 0
        self.acked = asyncio.Event()
        self.sending = asyncio.Event()

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        came = time.monotonic()
        if method == "getUpdates":
            form = await request.post()
            if int(str(form.get("offset") or 0)) > self.served > 0:
                self.acked.set()
        if method == "sendMessage":
            self.sending.set()
            await asyncio.sleep(0.03)  # a slow network: the worker may die mid-send
        response = await super()._api(request)
        if method == "getUpdates":
            served = [u["update_id"] for u in self.updates]
            self.served = max(served, default=0)
        if method == "sendMessage" and self.calls:
            call = self.calls[-1]
            if call.method == "sendMessage" and call.chat_id in USERS:
                self.arrivals.append((came, time.monotonic(), int(call.chat_id), call.text))
        return response

    def replies(self, user: int) -> list[str]:
        return [text for _, _, chat, text in self.arrivals if chat == user]


def _env(tmp_path: Path, url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "VK_"))}
    env.update(
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'kill.db'}",
        KEYS_FILE=str(tmp_path / "keys.json"),
        EVIDENCE_DIR=str(tmp_path / "evidence"),
        TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_API_URL=url,
        WEBHOOK_HOST="127.0.0.1",
        WEBHOOK_PORT=str(_free_port()),
        LOG_LEVEL="WARNING",
    )
    return env


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(env: dict[str, str], log: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "bot", "run"], cwd=ROOT, env=env,
                            stdout=log, stderr=log, stdin=subprocess.DEVNULL)


async def _upgrade(env: dict[str, str]) -> None:
    """`helpline db upgrade` on the test's database, before the first worker starts."""
    upgrade = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "bot", "db", "upgrade"], cwd=ROOT, env=env,
        capture_output=True, timeout=120,
    )
    assert upgrade.returncode == 0, upgrade.stderr


def _stop(worker: subprocess.Popen[bytes], wait: float = 10) -> None:
    """The last worker stopped as `docker stop` would (SIGTERM), killed if it lingers."""
    worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(timeout=wait)
    except subprocess.TimeoutExpired:
        worker.kill()


async def _child(fake: Recorder, user: int, done: asyncio.Event) -> None:
    """One child: waits for each answer (across restarts) before the next message."""

    async def until(count: int) -> None:
        while len(set(fake.replies(user))) < count:  # noqa: ASYNC110 - polls the fake's record
            await asyncio.sleep(0.01)

    await fake.push(fake.private_message(user, text="привет"))
    await until(2)
    await fake.push(fake.press(user, "st|role|child"))
    await until(3)
    await fake.push(fake.press(user, "st|menu|question"))
    await until(4)
    for n, question in enumerate(QUESTIONS):
        await fake.push(fake.private_message(user, text=question))
        await until(5 + n)
    done.set()


async def test_killing_the_worker_loses_nothing_and_repeats_nothing(tmp_path: Path) -> None:
    fake = Recorder()
    await fake.start()
    env = _env(tmp_path, fake.url)
    await _upgrade(env)
    log = (tmp_path / "worker.log").open("ab")
    rng = random.Random(20261125)
    kills: list[float] = []
    start = time.monotonic()
    worker = _start(env, log)
    finished = [asyncio.Event() for _ in USERS]
    children = [asyncio.create_task(_child(fake, u, e)) for u, e in zip(USERS, finished,
                                                                          strict=True)]
    try:
        deadline = time.monotonic() + 240
        while not all(e.is_set() for e in finished) and time.monotonic() < deadline:
            if len(kills) < int(os.environ.get("HELPLINE_KILLS", "12")):
                # Let the worker start and get busy, then kill it: at a random moment, right
                # after it acknowledged a batch of updates, or while a reply is in flight.
                await asyncio.sleep(rng.uniform(1.0, 2.0))
                point = ("random", "after-ack", "mid-send")[len(kills) % 3]
                if point != "random":
                    moment = fake.acked if point == "after-ack" else fake.sending
                    moment.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(moment.wait(), 5)
                if all(e.is_set() for e in finished):
                    break
                worker.send_signal(signal.SIGKILL)
                worker.wait(timeout=10)
                kills.append(time.monotonic())
                worker = _start(env, log)
            else:
                await asyncio.sleep(0.2)
        assert all(e.is_set() for e in finished), (
            f"not every child was answered: {[len(fake.replies(u)) for u in USERS]}; "
            f"{[r[:40] for r in fake.replies(USERS[0])]}; "
            f"log: {(tmp_path / 'worker.log').read_text()[-3000:]}"
        )
    finally:
        for task in children:
            task.cancel()
        _stop(worker)
        await fake.stop()
        log.close()
    assert len(kills) >= min(5, int(os.environ.get("HELPLINE_KILLS", "12")))
    for user in USERS:
        replies = fake.replies(user)
        unique = list(dict.fromkeys(replies))
        assert len(unique) == EXPECTED, (user, unique)
        sent = [(came, at, text) for came, at, chat, text in fake.arrivals if chat == user]
        for n, (_came, _at, text) in enumerate(sent):
            if text not in [t for _, _, t in sent[:n]]:
                continue
            # A repeat: the first copy was in flight at a kill, or had just arrived (its
            # delivered mark not yet written).
            came, at = next((c, a) for c, a, t in sent if t == text)
            copies = [(round(c - start, 2), round(a - start, 2)) for c, a, t in sent if t == text]
            assert any(came <= k <= at + GRACE for k in kills), (
                f"a reply was sent twice without a kill in its send window: {text[:40]!r}; "
                f"sent (came, recorded) at {copies}, "
                f"kills at {[round(k - start, 2) for k in kills]}; "
                f"log: {(tmp_path / 'worker.log').read_text()[-3000:]}"
            )
        assert unique[1] == "Кто ты?" and unique[3].startswith("Напиши свой вопрос")
