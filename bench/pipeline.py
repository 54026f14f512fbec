"""The hot path alone, in one process: what one update costs from journal to delivered reply.

    .venv/bin/python bench/pipeline.py [--users 200] [--db sqlite|pg] [--profile out.prof]

Builds the app as `helpline run` does (`bot.app.build_app`), with a sender that takes every
message at once (no network, no pacing) for the children's channel and for the desk, and walks
`--users` children through the report flow (the most common path in `bench/load.py`): one message
per child per round, every child of a round at once. Prints, per update: CPU milliseconds (the
whole process, the database's thread included), SQL statements and transactions, and the
updates per second. Run it on two commits to compare; `make bench` measures the whole service.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WHAT = ["insults", "threats", "excluded", "fake_page", "photos_shared", "stranger", "other"]
WHERE = ["vk", "telegram", "whatsapp", "tiktok", "youtube", "game", "other"]
PG_ADMIN = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


def script() -> list[tuple[str | None, str | None]]:
    """(text, payload) of one child's report, from /start to the menu."""
    return [
        ("/start", None),
        (None, "st|role|child"),
        (None, "st|menu|report"),
        (None, f"cr|what|{random.choice(WHAT)}"),
        (None, f"cr|where|{random.choice(WHERE)}"),
        (None, "cr|ongoing|yes"),
        (None, "cr|safe_now|yes"),
        (None, "cr|evidence|none"),
        (None, f"cr|adult|{random.choice(['yes', 'no'])}"),
        (None, "g|menu"),
    ]


class NullSender:
    """A channel (or desk) that takes every message at once."""

    def __init__(self) -> None:
        self.sent = 0

    async def send(self, message: Any) -> None:
        self.sent += 1


async def _pg_database() -> tuple[str, Any]:
    import uuid

    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    name = f"bench_pipeline_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))

    async def drop() -> None:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()

    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}", drop


async def main(args: argparse.Namespace) -> None:
    random.seed(1)
    tmp = tempfile.TemporaryDirectory()
    drop = None
    if args.db == "pg":
        url, drop = await _pg_database()
    else:
        url = f"sqlite+aiosqlite:///{tmp.name}/pipeline.db"
    os.environ.update(DATABASE_URL=url, TELEGRAM_BOT_TOKEN="", VK_TOKEN="")
    from sqlalchemy import event

    from bot.app import build_app
    from bot.settings import Settings
    from dialogs.messages import Channel, Inbound

    app = build_app(Settings())
    await app.db.create_all()
    children, desk = NullSender(), NullSender()
    app.delivery.register(str(Channel.TELEGRAM), children)
    app.delivery.register_desk(desk)
    counts = {"statements": 0, "commits": 0}

    def on_statement(*_: Any) -> None:
        counts["statements"] += 1

    def on_commit(*_: Any) -> None:
        counts["commits"] += 1

    event.listen(app.db.engine.sync_engine, "before_cursor_execute", on_statement)
    event.listen(app.db.engine.sync_engine, "commit", on_commit)

    update = 0

    async def say(user: int, step: tuple[str | None, str | None]) -> None:
        nonlocal update
        update += 1
        text, payload = step
        await app.handle(Inbound(Channel.TELEGRAM, str(user), str(user), text=text,
                                 payload=payload, locale_hint="ru", update_id=str(update)))

    scripts = {user: script() for user in range(1, args.users + 1)}
    # A warm-up round (imports, caches, the model), not counted.
    await asyncio.gather(*(say(u, s[0]) for u, s in scripts.items()))
    counts.update(statements=0, commits=0)
    sent_before = children.sent
    profiler = cProfile.Profile() if args.profile else None
    cpu, wall = time.process_time(), time.perf_counter()
    if profiler:
        profiler.enable()
    for i in range(1, len(next(iter(scripts.values())))):
        await asyncio.gather(*(say(u, s[i]) for u, s in scripts.items()))
    if profiler:
        profiler.disable()
        profiler.dump_stats(args.profile)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    n = args.users * (len(next(iter(scripts.values()))) - 1)
    replies = children.sent - sent_before
    print(f"{args.db}: {n} updates by {args.users} children, {replies} replies")
    print(f"  CPU per update      {1000 * cpu / n:6.2f} ms")
    print(f"  statements/update   {counts['statements'] / n:6.1f}")
    print(f"  commits/update      {counts['commits'] / n:6.1f}")
    print(f"  updates per second  {n / wall:6.0f}")
    await app.close()
    if drop is not None:
        await drop()
    tmp.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--db", choices=["sqlite", "pg"], default="sqlite")
    parser.add_argument("--profile", type=Path, default=None, help="write cProfile stats here")
    asyncio.run(main(parser.parse_args()))
