"""What eight hot-path statements cost on PostgreSQL, by the way they are sent: through an ORM
session (as most of the turn's are), on a Core connection, or as asyncpg prepared statements.

    .venv/bin/python bench/statements.py [--admin URL]   # default: bench/pipeline.py's PG_ADMIN

The statements mirror an ordinary update's (journal entry, advisory claim, journal closed, the
conversation read and locked, outbox row, conversation update, delivered mark, journal row
deleted), on tables of their own in a throwaway database. Prints CPU and wall milliseconds per
update for each way, twice. It measures the statements' sending alone, not the ORM's entities,
records or flushes around them (`bench/pipeline.py` measures the whole hot path).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    delete,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, create_async_engine

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from bench.pipeline import PG_ADMIN, _pg_database  # noqa: E402  (after the path is set)

N = 2000

md = MetaData()
inbox = Table(
    "inbox", md, Column("id", Integer, primary_key=True), Column("channel", String(16)),
    Column("update_id", BigInteger), Column("payload", Text), Column("done", Integer),
)
conv = Table(
    "conv", md, Column("id", Integer, primary_key=True), Column("user_id", Integer),
    Column("state", String(32)), Column("data", Text),
)
outbox = Table(
    "outbox", md, Column("id", Integer, primary_key=True), Column("conv_id", Integer),
    Column("body", Text), Column("sent", Integer),
)

INS_IN = (insert(inbox)
          .values(channel=bindparam("c"), update_id=bindparam("u"), payload=bindparam("p"), done=0)
          .returning(inbox.c.id))
CLAIM = text("SELECT pg_try_advisory_xact_lock(:k)")
DONE_IN = update(inbox).where(inbox.c.id == bindparam("i")).values(done=1)
READ = select(conv).where(conv.c.user_id == bindparam("uid")).with_for_update()
INS_OUT = (insert(outbox).values(conv_id=bindparam("cid"), body=bindparam("b"), sent=0)
           .returning(outbox.c.id))
UPD_CONV = (update(conv).where(conv.c.id == bindparam("cid"))
            .values(state=bindparam("s"), data=bindparam("d")))
SENT = update(outbox).where(outbox.c.id == bindparam("o")).values(sent=1)
DEL_IN = delete(inbox).where(inbox.c.id == bindparam("i"))

RAW = {
    "ins_in": "INSERT INTO inbox (channel, update_id, payload, done) "
              "VALUES ($1, $2, $3, 0) RETURNING id",
    "claim": "SELECT pg_try_advisory_xact_lock($1)",
    "done_in": "UPDATE inbox SET done = 1 WHERE id = $1",
    "read": "SELECT id, user_id, state, data FROM conv WHERE user_id = $1 FOR UPDATE",
    "ins_out": "INSERT INTO outbox (conv_id, body, sent) VALUES ($1, $2, 0) RETURNING id",
    "upd_conv": "UPDATE conv SET state = $1, data = $2 WHERE id = $3",
    "sent": "UPDATE outbox SET sent = 1 WHERE id = $1",
    "del_in": "DELETE FROM inbox WHERE id = $1",
}
PAYLOAD, BODY = "x" * 200, "hello " * 20


async def main(admin_url: str) -> None:
    url, drop = await _pg_database(admin_url, prefix="bench_statements")
    eng = create_async_engine(url)
    pool = await asyncpg.create_pool(url.replace("+asyncpg", ""), min_size=2, max_size=2)
    try:
        await _measure(eng, pool)
    finally:
        await pool.close()
        await eng.dispose()
        await drop()


async def _measure(eng: AsyncEngine, pool: asyncpg.Pool) -> None:
    async with eng.begin() as c:
        await c.run_sync(md.create_all)
        rows = [{"user_id": i, "state": "start", "data": "{}"} for i in range(200)]
        await c.execute(insert(conv), rows)

    async def eight(s: AsyncSession | AsyncConnection, i: int) -> None:
        r = (await s.execute(INS_IN, {"c": "tg", "u": i, "p": PAYLOAD})).scalar_one()
        await s.execute(CLAIM, {"k": i % 200})
        await s.execute(DONE_IN, {"i": r})
        row = (await s.execute(READ, {"uid": i % 200})).one()
        o = (await s.execute(INS_OUT, {"cid": row.id, "b": BODY})).scalar_one()
        await s.execute(UPD_CONV, {"cid": row.id, "s": "menu", "d": "{}"})
        await s.execute(SENT, {"o": o})
        await s.execute(DEL_IN, {"i": r})

    async def orm(i: int) -> None:
        async with AsyncSession(eng) as s, s.begin():
            await eight(s, i)

    async def core(i: int) -> None:
        async with eng.begin() as c:
            await eight(c, i)

    async def raw(i: int) -> None:
        async with pool.acquire() as c, c.transaction():
            r = await c.fetchval(RAW["ins_in"], "tg", i, PAYLOAD)
            await c.fetchval(RAW["claim"], i % 200)
            await c.execute(RAW["done_in"], r)
            row = await c.fetchrow(RAW["read"], i % 200)
            o = await c.fetchval(RAW["ins_out"], row["id"], BODY)
            await c.execute(RAW["upd_conv"], "menu", "{}", row["id"])
            await c.execute(RAW["sent"], o)
            await c.execute(RAW["del_in"], r)

    ways: list[tuple[str, Callable[[int], Awaitable[None]]]] = [
        ("orm session", orm), ("core connection", core), ("asyncpg", raw)]
    for name, fn in ways * 2:
        for i in range(100):  # warm up
            await fn(i)
        t0, w0 = time.process_time(), time.perf_counter()
        for i in range(N):
            await fn(i)
        cpu, wall = time.process_time() - t0, time.perf_counter() - w0
        print(f"{name:16} CPU {cpu / N * 1000:.2f} ms per update (8 statements), "
              f"wall {wall / N * 1000:.2f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--admin", default=PG_ADMIN,
                        help="a database on the server to create the throwaway one from")
    asyncio.run(main(parser.parse_args().admin))
