"""The worker is killed (SIGKILL) while it sends a child's emergency numbers: the next start
sends them, and alerts the counsellors, at once, not when the dead worker's claim on them runs
out (`bot.delivery.CLAIM`, 20 s; `App.take_over`).

The real `helpline run` in a subprocess, Telegram long polling against the fake Bot API, on the
embedded SQLite database."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

from aiohttp import web

from bot.delivery import CLAIM
from tests.reliability.test_kill import _env, _start, _stop, _upgrade
from tests.telegram.fake_api import STAFF_CHAT, FakeTelegram

CHILD = 5301
DANGER = "мне страшно, я не хочу больше жить и сегодня всё закончу"
NUMBERS = "8-800-2000-122"


class Holding(FakeTelegram):
    """The fake Bot API, holding a message with the emergency numbers unanswered while `hold`
    is set (the worker dies with it in hand), and noting when each message arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.hold = True
        self.holding = asyncio.Event()
        self.arrived: list[tuple[float, str, str]] = []  # (when, chat, text)

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if method == "sendMessage" and self.hold:
            form = await request.post()
            if str(form.get("chat_id")) == str(CHILD) and NUMBERS in str(form.get("text")):
                self.holding.set()
                while self.hold:  # noqa: ASYNC110 - until the test lets go
                    await asyncio.sleep(0.01)
                raise web.HTTPServiceUnavailable  # the worker that asked is gone
        response = await super()._api(request)
        if method == "sendMessage" and self.calls and self.calls[-1].method == "sendMessage":
            call = self.calls[-1]
            self.arrived.append((time.monotonic(), str(call.chat_id), str(call.text)))
        return response


async def test_a_danger_reply_in_hand_at_a_kill_goes_out_at_the_next_start(
    tmp_path: Path,
) -> None:
    fake = Holding()
    await fake.start()
    env = {**_env(tmp_path, fake.url), "TELEGRAM_STAFF_CHAT_ID": str(STAFF_CHAT)}
    await _upgrade(env)
    log = (tmp_path / "worker.log").open("ab")
    worker = _start(env, log)
    try:
        await fake.push(fake.private_message(CHILD, text=DANGER))
        await asyncio.wait_for(fake.holding.wait(), 60)
        # The dead worker claimed the numbers just before this: its claim runs out no sooner
        # than CLAIM after it, which is when they would go out without the take-over.
        claim_ends = time.monotonic() + CLAIM.total_seconds() - 0.5
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        fake.hold = False
        restarted = time.monotonic()
        worker = _start(env, log)
        deadline = restarted + 60
        told = alert = None
        while time.monotonic() < deadline and (told is None or alert is None):
            for at, chat, text in fake.arrived:
                if chat == str(CHILD) and NUMBERS in text and told is None:
                    told = (at, text)
                if chat == str(STAFF_CHAT) and "Критическое обращение" in text:
                    alert = (at, text)
            await asyncio.sleep(0.05)
        history = (tmp_path / "worker.log").read_text()[-3000:]
        assert told is not None, f"the numbers never came after the restart; log: {history}"
        assert "112" in told[1]
        # A dead worker's claim lasts 20 s; the take-over sends at the next start's recovery,
        # before it runs out, however long the start takes (bounded by the claim: a slow
        # machine takes 12-17 s to import aiogram and the model).
        assert told[0] < claim_ends, (
            f"the numbers came {told[0] - restarted:.1f} s after the restart, when the dead "
            f"worker's claim had run out; log: {history}")
        staff = [t[:60] for _, c, t in fake.arrived if c == str(STAFF_CHAT)]
        assert alert is not None, f"no alert in the staff group: {staff}; log: {history}"
        assert str(CHILD) not in alert[1], "the child's account stays hidden"
        assert alert[0] < claim_ends, f"the alert came {alert[0] - restarted:.1f} s after"
        copies = [t for _, c, t in fake.arrived if c == str(CHILD) and NUMBERS in t]
        assert len(copies) == 1, "the numbers once (the dead worker's copy never arrived)"
    finally:
        fake.hold = False
        _stop(worker)
        await fake.stop()
        log.close()
