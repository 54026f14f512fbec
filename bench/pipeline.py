"""The hot path alone, in one process: what one update costs from journal to delivered reply.

    .venv/bin/python bench/pipeline.py [--users 200] [--db sqlite|pg] [--profile out.prof]
    .venv/bin/python bench/pipeline.py --db pg --workers 3     # one worker, then three

Builds the app as `helpline run` does (`bot.app.build_app`), with a sender that takes every
message at once (no network, no pacing) for the children's channel and for the desk, and walks
`--users` children through the report flow (the most common path in `bench/load.py`): one message
per child per round, every child of a round at once. Prints, per update: CPU milliseconds (the
whole process, the database's thread included), SQL statements and transactions, and the
updates per second. Run it on two commits to compare; `make bench` measures the whole service.

`--workers N` (PostgreSQL): one worker process first, then N at once on one database, each with
children of its own (as webhook workers behind a balancer would share a line's children), and
prints the throughput of each, the ratio, and the updates per CPU-second of the workers.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
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


async def _pg_database(
    admin_url: str = PG_ADMIN, prefix: str = "bench_pipeline"
) -> tuple[str, Any]:
    """A throwaway database on the server of `admin_url`: its URL and the coroutine that drops
    it (also `bench/statements.py`'s)."""
    import uuid

    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))

    async def drop() -> None:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()

    return admin_url.rsplit("/", 1)[0] + f"/{name}", drop


async def main(args: argparse.Namespace) -> None:
    random.seed(1 + args.offset)
    tmp = tempfile.TemporaryDirectory()
    drop = None
    if args.url:
        url = args.url  # a worker of `--workers`: the schema is there
    elif args.db == "pg":
        url, drop = await _pg_database()
    else:
        url = f"sqlite+aiosqlite:///{tmp.name}/pipeline.db"
    os.environ.update(DATABASE_URL=url, TELEGRAM_BOT_TOKEN="", VK_TOKEN="")
    os.environ.setdefault("KEYS_FILE", f"{tmp.name}/keys.json")
    from sqlalchemy import event

    from bot.app import build_app
    from bot.settings import Settings
    from dialogs.messages import Channel, Inbound

    app = build_app(Settings())
    if not args.url:
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

    first = args.offset + 1
    scripts = {user: script() for user in range(first, first + args.users)}
    # A warm-up round (imports, caches, the model), not counted.
    await asyncio.gather(*(say(u, s[0]) for u, s in scripts.items()))
    counts.update(statements=0, commits=0)
    sent_before = children.sent
    profiler = cProfile.Profile() if args.profile else None
    cpu, wall, began = time.process_time(), time.perf_counter(), time.time()
    if profiler:
        profiler.enable()
    for i in range(1, len(next(iter(scripts.values())))):
        await asyncio.gather(*(say(u, s[i]) for u, s in scripts.items()))
    if profiler:
        profiler.disable()
        profiler.dump_stats(args.profile)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    n = args.users * (len(next(iter(scripts.values()))) - 1)
    if args.url:
        print(json.dumps({"updates": n, "cpu": cpu, "began": began, "ended": began + wall}))
        await app.close()
        return
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


async def workers(args: argparse.Namespace) -> None:
    """One worker, then `--workers` at once, on fresh PostgreSQL databases."""
    import subprocess

    def run(count: int, url: str, keys: str) -> dict[str, float]:
        env = {**os.environ, "KEYS_FILE": keys}
        procs = [
            subprocess.Popen(
                [sys.executable, __file__, "--url", url, "--users", str(args.users),
                 "--offset", str(k * args.users)],
                stdout=subprocess.PIPE, env=env,
            )
            for k in range(count)
        ]
        results = [json.loads(p.communicate()[0].decode().strip().splitlines()[-1])
                   for p in procs]
        updates = sum(r["updates"] for r in results)
        wall = max(r["ended"] for r in results) - min(r["began"] for r in results)
        cpu = sum(r["cpu"] for r in results)
        return {"updates": updates, "per_second": updates / wall, "cpu_ms": 1000 * cpu / updates,
                "per_cpu_second": updates / cpu}

    with tempfile.TemporaryDirectory() as tmp:
        keys = f"{tmp}/keys.json"
        figures = {}
        for count in (1, args.workers):
            url, drop = await _pg_database()
            os.environ.update(DATABASE_URL=url, KEYS_FILE=keys, TELEGRAM_BOT_TOKEN="", VK_TOKEN="")
            from bot.app import build_app
            from bot.settings import Settings

            app = build_app(Settings())  # the schema, and the keys every worker shares
            await app.db.create_all()
            await app.close()
            figures[count] = await asyncio.to_thread(run, count, url, keys)
            await drop()
    for count, f in figures.items():
        print(f"{count} worker(s), {args.users} children each: {f['updates']} updates, "
              f"{f['per_second']:.0f}/s, CPU {f['cpu_ms']:.2f} ms per update, "
              f"{f['per_cpu_second']:.0f} updates per worker CPU-second")
    one, many = figures[1], figures[args.workers]
    print(f"throughput x{many['per_second'] / one['per_second']:.2f} with {args.workers} workers "
          f"on {os.cpu_count()} cores")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--db", choices=["sqlite", "pg"], default="sqlite")
    parser.add_argument("--profile", type=Path, default=None, help="write cProfile stats here")
    parser.add_argument("--workers", type=int, default=0,
                        help="PostgreSQL: one worker process, then this many at once")
    parser.add_argument("--url", default="", help=argparse.SUPPRESS)  # a worker of --workers
    parser.add_argument("--offset", type=int, default=0, help=argparse.SUPPRESS)
    parsed = parser.parse_args()
    asyncio.run(workers(parsed) if parsed.workers else main(parsed))
