"""Count the hops of one message through our own code: how many calls of functions in bot/,
dialogs/ and storage/ (and how deep the deepest chain) it takes from an inbound update to the
replies written to the outbox, for an ordinary text mid-flow and for a danger message.

    .venv/bin/python bench/hops.py

Prints, per message: calls into project code, distinct project functions, and the deepest
project call chain. Run it on two commits to compare the engine's shape.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import uuid
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dialogs.engine import DialogEngine  # noqa: E402
from dialogs.messages import Channel, Inbound  # noqa: E402
from knowledge_base import KnowledgeBase  # noqa: E402
from storage import crypto  # noqa: E402
from storage.db import Database  # noqa: E402

PROJECT = tuple(str(ROOT / d) for d in ("bot", "dialogs", "storage"))
TRIAGE = str(ROOT / "dialogs" / "triage")


class Counter:
    def __init__(self) -> None:
        self.calls = 0
        self.functions: set[str] = set()
        self.depth = 0
        self.deepest = 0
        self.triage = 0

    def __call__(self, frame: FrameType, event: str, arg: Any) -> None:
        if not frame.f_code.co_filename.startswith(PROJECT):
            return
        if event == "call":
            self.calls += 1
            self.triage += frame.f_code.co_filename.startswith(TRIAGE)
            self.functions.add(f"{frame.f_code.co_filename}:{frame.f_code.co_name}")
            self.depth += 1
            self.deepest = max(self.deepest, self.depth)
        elif event == "return":
            self.depth -= 1


async def main() -> None:
    crypto.configure(crypto.Cipher([crypto.new_key()], "bench-id-hash-key-0123456789abc"))
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite+aiosqlite:///{tmp}/hops.db")
        await db.create_all()
        engine = DialogEngine(db, kb=KnowledgeBase.load())

        async def send(**kwargs: Any) -> Counter:
            inbound = Inbound(channel=Channel.CONSOLE, user_id="u1", chat_id="c1",
                              locale_hint="ru", update_id=uuid.uuid4().hex, **kwargs)
            counter = Counter()
            sys.setprofile(counter)
            try:
                await engine.handle(inbound)
            finally:
                sys.setprofile(None)
            return counter

        await send(text="привет")
        await send(payload="st|role|child")
        await send(payload="st|menu|question")
        for label, kwargs in (
            ("ordinary text mid-flow", {"text": "как закрыть профиль в вк"}),
            ("danger message", {"text": "я больше не хочу жить"}),
        ):
            c = await send(**kwargs)
            print(f"{label:<24} calls {c.calls:>5} (triage {c.triage:>5})  functions "
                  f"{len(c.functions):>4}  deepest chain {c.deepest:>3}")
        await db.dispose()


if __name__ == "__main__":
    asyncio.run(main())
