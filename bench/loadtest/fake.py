"""The fake Bot API of the tests (`tests/telegram/fake_api.py`), set up for a long load run, and
the switchboard between it and the simulated people: what they send is offered to `getUpdates`
at once, and what the bot sends reaches them (a child's queue, the desk) the moment the fake
answers the call."""

from __future__ import annotations

import asyncio
import collections
import time
from typing import Protocol

from tests.telegram.fake_api import STAFF_CHAT, Call, FakeTelegram

TOKEN = "123456:BENCH-token-for-the-fake-api"
perf = time.perf_counter


class DeskListener(Protocol):
    def on_message(self, at: float, thread: int | None, message_id: int, text: str) -> None: ...

    def on_answer(self, query_id: str, text: str) -> None: ...


class Switchboard:
    """The people's side of the fake: sends their updates, routes the bot's messages to them,
    and counts the staff group's posts."""

    def __init__(self, fake: FakeTelegram) -> None:
        self.fake = fake
        self.private: dict[int, asyncio.Queue[tuple[float, str]]] = {}
        self.desk: DeskListener | None = None
        self.staff_sent = 0  # messages and topics the bot posted in the staff group
        self.staff_kinds: collections.Counter[str] = collections.Counter()  # by first words
        self.pushed_id = 0  # the last update's id
        fake.listeners.append(self._on_call)

    # ---------------------------------------------------------------- what the bot sends
    def _on_call(self, call: Call) -> None:
        if call.method == "sendMessage":
            at = perf()
            text = str(call["text"])
            chat_id = call.chat_id
            if chat_id == STAFF_CHAT:
                self.staff_sent += 1
                self.staff_kinds[text.split("\n", 1)[0][:18]] += 1
                if self.desk is not None:
                    self.desk.on_message(at, call.thread, call.message_id, text)
            else:
                queue = self.private.get(chat_id or 0)
                if queue is not None:
                    queue.put_nowait((at, text))
        elif call.method == "createForumTopic":
            self.staff_sent += 1
        elif call.method == "answerCallbackQuery" and self.desk is not None:
            self.desk.on_answer(str(call["callback_query_id"]), str(call.get("text") or ""))

    # ---------------------------------------------------------------- what the people send
    def _offer(self, update: dict[str, object]) -> float:
        at = self.fake.offer(update)
        self.pushed_id = int(update["update_id"])  # type: ignore[call-overload]
        return at

    def child_text(self, user_id: int, text: str) -> float:
        """A child's text, available to getUpdates now; returns that moment."""
        return self._offer(self.fake.private_message(user_id, text=text))

    def child_press(self, user_id: int, data: str) -> float:
        return self._offer(self.fake.press(user_id, data))

    def staff_text(self, user_id: int, thread: int, text: str) -> float:
        return self._offer(self.fake.staff_message(user_id, thread, text=text))

    def staff_press(self, user_id: int, data: str, thread: int, message_id: int) -> str:
        """A counsellor presses a button in a topic; returns the callback query id."""
        update = self.fake.press(user_id, data, chat_id=STAFF_CHAT, thread=thread,
                                 message_id=message_id)
        self._offer(update)
        return str(update["callback_query"]["id"])


async def start_fake() -> tuple[FakeTelegram, Switchboard, str]:
    """A fake Bot API for a long run, listening on 127.0.0.1: (fake, switchboard, its URL)."""
    fake = FakeTelegram(TOKEN, record=False, long_poll=1.0)
    board = Switchboard(fake)
    url = await fake.start()
    return fake, board, url
