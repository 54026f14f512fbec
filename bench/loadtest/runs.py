"""The runs: the echo bot saturated, and the help line (`helpline run` on a fresh database) with
thinking users, then saturated. `start_helpline` and `HelplineBot.finish` are shared with the
flood run (`flood.py`)."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.telegram.fake_api import STAFF_CHAT, FakeTelegram

from . import ROOT
from .database import (
    Database,
    database_figures,
    database_size,
    drop_database,
    make_database,
    settled_size,
)
from .fake import TOKEN, Switchboard, start_fake
from .measure import Clock, Phase, Window, peak_rss_mb
from .people import FIRST_CHILD, Child, EchoUser, Sim
from .processes import (
    finish_profiler,
    free_port,
    python,
    run_cli,
    spawn,
    start_profiler,
    stop_process,
    wait_for_polling,
)
from .texts import Texts

FIRST_COUNSELLOR = 501
perf = time.perf_counter


async def run_echo(args: argparse.Namespace, workdir: Path) -> tuple[Phase, float | None]:
    fake, board, url = await start_fake()
    clock = Clock()
    log = workdir / "echo.log"
    proc = spawn([python(), str(ROOT / "bench" / "echo_bot.py"), url, TOKEN], log)
    users: list[asyncio.Task[None]] = []
    try:
        await wait_for_polling(fake, proc, log)
        users = [asyncio.create_task(EchoUser(board, clock, FIRST_CHILD + i).run())
                 for i in range(args.users)]
        await asyncio.sleep(3)
        phase = Phase("echo (saturated)", users=args.users)
        clock.current = phase
        async with Window(phase, board, proc.pid, None):
            await asyncio.sleep(args.echo_seconds)
            clock.current = None
        phase.updates = float(phase.replies)
        rss = peak_rss_mb(proc.pid)
    finally:
        clock.stopping = True
        # Off the loop: the fake must go on answering while the bot shuts down, as Telegram
        # would (blocking here left the bot's last calls hanging, and its stop looked stuck).
        await asyncio.to_thread(stop_process, proc)
        for task in users:
            task.cancel()
        await asyncio.gather(*users, return_exceptions=True)
        await fake.stop()
    return phase, rss


# =====================================================================================
# The help line
# =====================================================================================
HOURS_24_7 = """timezone: Europe/Moscow
zone_label: {ru: "по московскому времени", en: "Moscow time"}
weekly: {mon: ["00:00-24:00"], tue: ["00:00-24:00"], wed: ["00:00-24:00"], thu: ["00:00-24:00"],
         fri: ["00:00-24:00"], sat: ["00:00-24:00"], sun: ["00:00-24:00"]}
"""


@dataclass
class HelplineResult:
    label: str
    paced: Phase
    saturated: Phase
    rss: float | None
    db_mb: float
    conversations: int
    messages: int
    updates: int
    startup: float
    tables: str
    grown_mb: float  # settled size minus the empty schema's


@dataclass
class DatabaseFigures:
    label: str
    db_mb: float
    conversations: int
    messages: int
    updates: int
    tables: str
    grown_mb: float  # after VACUUM, minus the empty schema's size


@dataclass
class HelplineBot:
    """`helpline run` as shipped, polling the fake, with its counsellors registered."""

    kind: str
    db: Database
    fake: FakeTelegram
    board: Switchboard
    proc: subprocess.Popen[bytes]
    log: Path
    port: int  # /metrics
    counsellors: list[int]
    startup: float = 0.0
    empty_mb: float = 0.0  # the database with its schema and counsellors, before the load

    async def stop(self) -> None:
        """SIGTERM, waited for off the loop: the fake goes on answering meanwhile."""
        await asyncio.to_thread(stop_process, self.proc)

    async def finish(self) -> DatabaseFigures:
        """After `stop()` and the fake's: what the log says, the database's figures, and the
        database dropped."""
        proc, log = self.proc, self.log
        if os.environ.get("BENCH_KEEP"):
            print("staff posts by first words:", self.board.staff_kinds.most_common(25))
        if proc.returncode not in (0, -signal.SIGTERM):
            print(f"(the bot exited with {proc.returncode}; log: {log})", file=sys.stderr)
        errors = [line for line in log.read_text(errors="replace").splitlines()
                  if " ERROR " in line or "Traceback" in line]
        if errors:
            print(f"(the bot logged {len(errors)} errors, e.g. {errors[0][:200]}; log: {log})",
                  file=sys.stderr)
        size, conversations, messages, updates, tables = await database_figures(self.db)
        grown = await settled_size(self.db) - self.empty_mb
        await drop_database(self.db)
        return DatabaseFigures(self.db.label, size, conversations, messages, updates, tables,
                               grown)


async def start_helpline(args: argparse.Namespace, kind: str, workdir: Path) -> HelplineBot:
    """A fresh database, the fake, `helpline db upgrade`, the counsellors, then `helpline run`,
    polling. On failure everything started is stopped again."""
    db = await make_database(kind, workdir)
    fake, board, url = await start_fake()
    hours = workdir / "hours.yaml"
    hours.write_text(HOURS_24_7, encoding="utf-8")
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TELEGRAM_", "VK_", "WEB_", "HELPLINE_"))}
    env.update(
        DATABASE_URL=db.url, KEYS_FILE=str(workdir / "keys.json"),
        EVIDENCE_DIR=str(workdir / "evidence"), TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_API_URL=url, TELEGRAM_STAFF_CHAT_ID=str(STAFF_CHAT), TELEGRAM_WEBHOOK_URL="",
        VK_TOKEN="", WEB_ENABLED="false", WEBHOOK_HOST="127.0.0.1", WEBHOOK_PORT=str(port),
        LOG_LEVEL=os.environ.get("BENCH_LOG_LEVEL", "WARNING"), HOURS_FILE=str(hours),
        ENCRYPTION_KEYS="", ID_HASH_KEY="",
        COUNSELLOR_CAPACITY=str(args.capacity), SEND_PACING="off",
    )
    began = perf()
    await run_cli(env, "db", "upgrade")
    ids = [FIRST_COUNSELLOR + i for i in range(args.counsellors)]
    # Two at a time on PostgreSQL (this machine has two cores); one at a time on SQLite, where
    # two processes writing a fresh file at once may find it locked.
    step = 1 if kind == "sqlite" else 2
    for start in range(0, len(ids), step):
        await asyncio.gather(*(run_cli(env, "counsellor", "add", f"c{uid}", "--channel",
                                       "telegram", "--id", str(uid))
                               for uid in ids[start:start + step]))
    empty = await database_size(db)
    log = workdir / f"helpline-{kind}.log"
    proc = spawn([python(), "-m", "bot", "run"], log, env)  # as shipped
    bot = HelplineBot(kind, db, fake, board, proc, log, port, ids, empty_mb=empty)
    try:
        await wait_for_polling(fake, proc, log)
    except BaseException:
        await bot.stop()
        await fake.stop()
        raise
    bot.startup = perf() - began
    return bot


async def arrive(args: argparse.Namespace, sim: Sim, tasks: list[asyncio.Task[None]]) -> None:
    """The counsellors at their desks, then the children, over a few seconds."""
    tasks += [asyncio.create_task(sim.desk.counsellor(uid, args.capacity))
              for uid in range(FIRST_COUNSELLOR, FIRST_COUNSELLOR + args.counsellors)]
    for i in range(args.users):  # arrive over a few seconds, not all in one instant
        tasks.append(asyncio.create_task(Child(sim).run()))
        if i % 50 == 49:
            await asyncio.sleep(args.ramp * 50 / args.users)


async def stop_run(clock: Clock, bot: HelplineBot, tasks: list[asyncio.Task[None]]) -> None:
    """The end of a measured run: the users stop, the bot is stopped, then the fake API."""
    clock.stopping = True
    await bot.stop()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await bot.fake.stop()


async def run_helpline(args: argparse.Namespace, kind: str, workdir: Path) -> HelplineResult:
    texts = Texts()
    bot = await start_helpline(args, kind, workdir)
    proc, port = bot.proc, bot.port
    clock = Clock()
    sim = Sim(bot.board, clock, texts, wait=args.wait, turn_timeout=args.turn_timeout)
    tasks: list[asyncio.Task[None]] = []
    try:
        clock.think = args.think
        await arrive(args, sim, tasks)
        await asyncio.sleep(args.warmup)
        paced = Phase(f"{kind}: {args.users} users, think {args.think[0]:g}-{args.think[1]:g} s",
                      users=args.users)
        clock.current = paced
        profiler = start_profiler(args, proc.pid, f"{kind}-paced", args.duration)
        async with Window(paced, bot.board, proc.pid, port):
            await asyncio.sleep(args.duration)
            clock.current = None
        finish_profiler(profiler)
        clock.think = (0.0, 0.0)
        await asyncio.sleep(5)
        saturated = Phase(f"{kind}: {args.users} users, no pause (saturated)", users=args.users)
        clock.current = saturated
        profiler = start_profiler(args, proc.pid, f"{kind}-saturated", args.saturated_seconds)
        async with Window(saturated, bot.board, proc.pid, port):
            await asyncio.sleep(args.saturated_seconds)
            clock.current = None
        finish_profiler(profiler)
        rss = peak_rss_mb(proc.pid)
    finally:
        await stop_run(clock, bot, tasks)
    figures = await bot.finish()
    return HelplineResult(figures.label, paced, saturated, rss, figures.db_mb,
                          figures.conversations, figures.messages, figures.updates,
                          bot.startup, figures.tables, figures.grown_mb)
