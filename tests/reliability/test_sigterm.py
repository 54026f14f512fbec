"""`helpline run` stops gracefully on SIGTERM (what `docker stop` and systemd send).

The real process polls the fake Bot API over a temporary SQLite database. Children write, and
the worker is sent SIGTERM as soon as it has fetched their messages, while Telegram (the fake) is
slow to take replies: it must exit with code 0 within a few seconds, and no message may be lost
or answered twice, whether answered before exit or after the next start.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from aiohttp import web

from tests.reliability.test_kill import ROOT, _env, _start
from tests.telegram.fake_api import FakeTelegram

CHILDREN = [6101, 6102, 6103]
REPLIES = ["Привет! Я бот линии помощи", "Кто ты?"]  # what each child's first message gets


class SlowTelegram(FakeTelegram):
    """The fake Bot API, slow to take messages, noting which updates it has handed out."""

    def __init__(self) -> None:
        super().__init__()
        self.served = 0

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if method == "sendMessage":
            await asyncio.sleep(0.3)
        response = await super()._api(request)
        if method == "getUpdates":
            self.served = max([self.served, *[u["update_id"] for u in self.updates]])
        return response

    def texts_to(self, chat: int) -> list[str]:
        return [c.text for c in self.sent_to(chat)]


async def _wait(condition: object, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def _stop(worker: subprocess.Popen[bytes]) -> tuple[int, float]:
    started = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    code = await asyncio.to_thread(worker.wait, 15)
    return code, time.monotonic() - started


async def _fake_and_schema(
    tmp_path: Path, database: str | None = None
) -> tuple[SlowTelegram, dict[str, str]]:
    """The slow fake Bot API, running, and the environment of a worker whose database (its
    own SQLite file, or `database`) has its schema."""
    fake = SlowTelegram()
    await fake.start()
    env = _env(tmp_path, fake.url)
    if database is not None:
        env["DATABASE_URL"] = database
    env["LOG_LEVEL"] = "INFO"
    upgrade = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "bot", "db", "upgrade"], cwd=ROOT, env=env,
        capture_output=True, timeout=120,
    )
    assert upgrade.returncode == 0, upgrade.stderr
    return fake, env


async def test_sigterm_exits_0_quickly_and_loses_no_claimed_work(tmp_path: Path) -> None:
    await stop_mid_work_and_restart(tmp_path, CHILDREN)


async def stop_mid_work_and_restart(
    tmp_path: Path, children: list[int], *, database: str | None = None,
    backlog: bool = False,
) -> None:
    """Children write; the worker gets SIGTERM as soon as it has fetched their messages
    (`backlog`: half a second later, and most of them must still be unanswered then). It must
    exit with code 0 within 10 s, and after the next start every child has each reply once."""
    fake, env = await _fake_and_schema(tmp_path, database)
    log_path = tmp_path / "worker.log"
    log = log_path.open("ab")
    worker = _start(env, log)
    try:
        await _wait(lambda: fake.polls > 0, 60, "the worker to poll")
        for child in children:
            await fake.child_says(child, "привет")
        last = fake.updates[-1]["update_id"]
        # SIGTERM as soon as the worker holds the messages: journalled or about to be, with
        # their replies still to be sent through the slow API.
        await _wait(lambda: fake.served >= last, 20, "the worker to fetch the messages")
        if backlog:
            await asyncio.sleep(0.5)  # a backlog builds behind the slow API and the pacing
            answered = sum(bool(fake.texts_to(c)) for c in children)
            assert answered < len(children) // 2, "no backlog left to test the stop with"
        code, took = await _stop(worker)
        assert code == 0, log_path.read_text()[-3000:]
        assert took < 10, f"took {took:.1f}s to stop"
        before_restart = {child: fake.texts_to(child) for child in children}
        # The next start answers whatever the stopped worker had not.
        worker = _start(env, log)
        await _wait(lambda: all(len(fake.texts_to(c)) >= len(REPLIES) for c in children), 120,
                    "every child to be answered")
        await asyncio.sleep(1.5)  # a repeat would come now
        code, took = await _stop(worker)
        assert code == 0 and took < 10, (code, took)
    finally:
        if worker.poll() is None:
            worker.kill()
        await fake.stop()
        log.close()
    text = log_path.read_text()
    assert "Traceback" not in text, text[-3000:]

    def answered_once(child: int) -> bool:
        got = fake.texts_to(child)
        return len(got) == len(REPLIES) and all(
            text.startswith(reply) for text, reply in zip(got, REPLIES, strict=True))

    wrong = {c: (fake.texts_to(c), before_restart[c]) for c in children if not answered_once(c)}
    assert not wrong, (len(wrong), list(wrong.items())[:3])


def _catches_sigterm(pid: int) -> bool:
    """Whether the process has a handler for SIGTERM (Linux: the SigCgt mask in /proc)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    caught = next(line for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(caught.split()[1], 16) & (1 << (signal.SIGTERM - 1)))


@pytest.mark.skipif(not os.path.exists("/proc/self/status"),
                    reason="needs /proc to see when the process catches SIGTERM")
@pytest.mark.parametrize("after", [0.0, 1.5], ids=["at-once", "mid-start-up"])
async def test_sigterm_while_starting_up_is_a_graceful_stop(tmp_path: Path, after: float) -> None:
    """`docker stop` right after `docker start`: the signal comes while the app is still being
    imported and built, before the event loop's handlers exist (at once, or a moment later while
    the channels' modules load). It must still be a stop with exit code 0 (not death by the
    signal), without first finishing the start-up, and a child's message waiting at the API is
    left there for the next start, which answers it."""
    fake, env = await _fake_and_schema(tmp_path)
    await fake.child_says(CHILDREN[0], "привет")
    log_path = tmp_path / "worker.log"
    log = log_path.open("ab")
    worker = _start(env, log)
    try:
        await _wait(lambda: _catches_sigterm(worker.pid), 20, "the worker to catch SIGTERM")
        await asyncio.sleep(after)
        assert fake.polls == 0, "too late: the worker already polls (the test needs the start-up)"
        code, took = await _stop(worker)
        assert code == 0, log_path.read_text()[-3000:]
        assert took < 10, f"took {took:.1f}s to stop"
        assert fake.polls == 0, "the stopped start-up went on to poll"
        assert "http server on" not in log_path.read_text(), "the start-up went on to the end"
        assert "SIGTERM during start-up: stopping" in log_path.read_text()
        worker = _start(env, log)
        await _wait(lambda: len(fake.texts_to(CHILDREN[0])) >= len(REPLIES), 60,
                    "the child to be answered by the next start")
        code, took = await _stop(worker)
        assert code == 0 and took < 10
    finally:
        if worker.poll() is None:
            worker.kill()
        await fake.stop()
        log.close()
    assert "Traceback" not in log_path.read_text()
    got = fake.texts_to(CHILDREN[0])
    assert len(got) == len(REPLIES), got
