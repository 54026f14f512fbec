"""The flood run (`--flood`): does one child who floods the bot hurt the others?

On a fresh `helpline run`, `--users` children write as the thinking users do (`--think`) and
the counsellors work. One more child opens the menu during the warm-up and stays quiet. Then two
windows of `--duration` seconds: quiet, then one in which that child sends `--flood-messages`
texts as fast as they can be offered (all at once; `--flood-rate N` sends N a second instead),
the one in the middle a danger message.

Figures: the others' reply latency in both windows (the issue's target: p99 while flooding under
twice the quiet one), how soon the flooder's own danger message is answered and reaches the staff
group, how many of the flooder's other replies came between it and its answer, and how many
times the flooder is told to slow down (the target: once per flood, not again each time a token
frees). The flooder's texts go through the bot's per-user flood limit (`EngineConfig`: burst 20,
1 a second); the other children pace themselves under it, as in the other runs.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .measure import Clock, Phase, Window, pct, peak_rss_mb
from .people import Sim
from .report import dump, ms
from .runs import DatabaseFigures, arrive, start_helpline, stop_run
from .texts import Texts

FLOODER = 9_000_000
DANGER = "мне очень плохо, я больше не хочу жить"
perf = time.perf_counter


@dataclass
class FloodResult:
    label: str
    quiet: Phase
    flood: Phase
    messages: int
    offered_in: float  # seconds from the first flood message offered to the last
    handed_in: float | None  # from the first offered to getUpdates handing out the last
    danger_index: int  # 1-based, of `messages`
    danger_answer: float | None  # from the danger message to its first answer
    danger_alert: float | None  # to the first staff-group message carrying its words
    danger_queued: float | None  # of which waiting at Telegram
    replies_between: int  # the flooder's other replies after the danger message, before its answer
    slow_down: list[float] = field(default_factory=list)  # seconds after the flood began
    received: int = 0  # messages to the flooder after the flood began
    last_reply: float | None = None
    # The others' turns under way while the flood was being taken in and answered (from its
    # first message to the later of the last one handed out and the flooder's last reply).
    during: list[float] = field(default_factory=list)
    span: float = 0.0
    rss: float | None = None
    startup: float = 0.0
    database: DatabaseFigures | None = None


class Flooder:
    """One child who opens the menu, then sends many texts at once, danger in the middle."""

    def __init__(self, sim: Sim, uid: int = FLOODER) -> None:
        self.sim, self.uid = sim, uid
        self.queue: asyncio.Queue[tuple[float, str]] = asyncio.Queue()
        sim.board.private[uid] = self.queue
        self.first = 0.0
        self.offered_in = 0.0
        self.last_id = 0
        self.danger_marker = 0
        self.danger_sent = 0.0
        self.danger_id = 0

    async def _turn(self, expect: tuple[str, ...], *, text: str | None = None,
                    payload: str | None = None) -> None:
        board = self.sim.board
        if payload is not None:
            board.child_press(self.uid, payload)
        else:
            assert text is not None
            board.child_text(self.uid, text)
        deadline = perf() + self.sim.turn_timeout
        while (remaining := deadline - perf()) > 0:
            _, message = await asyncio.wait_for(self.queue.get(), remaining)
            if message.startswith(expect):
                return
        raise TimeoutError

    async def open_menu(self) -> None:
        t = self.sim.texts
        await self._turn(t.role, text="/start")
        await self._turn(t.menu, payload="st|role|child")
        while not self.queue.empty():
            self.queue.get_nowait()

    async def flood(self, messages: int, rate: float, chars: int = 0) -> None:
        sim, board = self.sim, self.sim.board
        self.danger_marker = n = next(sim.markers)
        sim.apart[n] = None
        middle = messages // 2
        self.first = perf()
        for i in range(messages):
            if i == middle:
                self.danger_sent = board.child_text(self.uid, f"[d{n}] {DANGER}")
                self.danger_id = board.pushed_id
                sim.danger_sent[n] = self.danger_sent
                sim.danger_update[n] = self.danger_id
            else:
                board.child_text(self.uid, _long(f"ответьте пожалуйста {i + 1}", chars))
            if rate > 0:
                await asyncio.sleep(1 / rate)
        self.last_id = board.pushed_id
        self.offered_in = perf() - self.first

    def result(self, label: str, quiet: Phase, flood: Phase, messages: int) -> FloodResult:
        t, sim, fake = self.sim.texts, self.sim, self.sim.board.fake
        inbox: list[tuple[float, str]] = []
        while not self.queue.empty():
            inbox.append(self.queue.get_nowait())
        after = [(at, text) for at, text in inbox if at >= self.first]
        answer = next((at for at, text in after
                       if at >= self.danger_sent and text.startswith(t.danger)), None)
        between = sum(1 for at, text in after if self.danger_sent <= at
                      and (answer is None or at < answer) and not text.startswith(t.danger))
        handed_last = fake.handed.get(self.last_id)
        handed_danger = fake.handed.get(self.danger_id)
        end = max(after[-1][0] if after else self.first, handed_last or self.first)
        during = [latency for sent, latency in zip(flood.latency_sent, flood.latency, strict=True)
                  if sent <= end and sent + latency >= self.first]
        return FloodResult(
            label, quiet, flood, messages, self.offered_in,
            None if handed_last is None else handed_last - self.first,
            messages // 2 + 1,
            None if answer is None else answer - self.danger_sent,
            sim.apart.get(self.danger_marker),
            None if handed_danger is None else handed_danger - self.danger_sent,
            between,
            slow_down=[at - self.first for at, text in after if text.startswith(t.flood)],
            received=len(after),
            last_reply=after[-1][0] - self.first if after else None,
            during=during, span=end - self.first)


# An everyday story (no danger in it), for a flood of long messages (`--flood-chars`).
STORY = ("сегодня в школе была контрольная по математике, я вроде всё решила, но не уверена "
         "во второй задаче. потом мы с подругой пошли в столовую и долго спорили, какой сериал "
         "смотреть на выходных. мама просила купить хлеб и молоко по дороге домой, а я забыла, "
         "пришлось возвращаться в магазин. вечером делала презентацию по биологии про клетки. ")


def _long(text: str, chars: int) -> str:
    """`text`, then the story again and again up to `chars` characters."""
    if len(text) >= chars:
        return text
    story = STORY * (chars // len(STORY) + 1)
    return f"{text}. {story}"[:chars]


async def run_flood(args: argparse.Namespace, kind: str, workdir: Path) -> FloodResult:
    texts = Texts()
    bot = await start_helpline(args, kind, workdir)
    proc, port = bot.proc, bot.port
    clock = Clock()
    sim = Sim(bot.board, clock, texts, wait=args.wait, turn_timeout=args.turn_timeout)
    flooder = Flooder(sim)
    tasks: list[asyncio.Task[None]] = []
    think = f"think {args.think[0]:g}-{args.think[1]:g} s"
    try:
        clock.think = args.think
        await arrive(args, sim, tasks)
        await flooder.open_menu()
        await asyncio.sleep(args.warmup)
        quiet = Phase(f"{kind}: {args.users} users, {think}, quiet", users=args.users)
        clock.current = quiet
        async with Window(quiet, bot.board, proc.pid, port):
            await asyncio.sleep(args.duration)
            clock.current = None
        flood = Phase(f"{kind}: {args.users} users, {think}, one flooding", users=args.users)
        clock.current = flood
        async with Window(flood, bot.board, proc.pid, port):
            await flooder.flood(args.flood_messages, args.flood_rate, args.flood_chars)
            await asyncio.sleep(max(0.0, args.duration - (perf() - flooder.first)))
            clock.current = None
        rss = peak_rss_mb(proc.pid)
    finally:
        await stop_run(clock, bot, tasks)
    result = flooder.result(bot.db.label, quiet, flood, args.flood_messages)
    result.rss, result.startup = rss, bot.startup
    result.database = await bot.finish()
    return result


def flood_table(r: FloodResult) -> str:
    columns = [("quiet", r.quiet), (f"one child sending {r.messages}", r.flood)]
    rows: list[tuple[str, list[str]]] = []

    def row(name: str, cells: list[str]) -> None:
        rows.append((name, cells))

    row("other users (thinking)", [str(p.users) for _, p in columns])
    row("measured window, s", [f"{p.seconds:.0f}" for _, p in columns])
    row("updates offered / handled per second",
        [f"{p.pushed / p.seconds:,.0f} / {p.rate:,.0f}" if p.seconds else "—"
         for _, p in columns])
    row("others' replies measured", [str(len(p.latency)) for _, p in columns])
    for q in (50, 95, 99):
        row(f"others' reply latency p{q}, ms", [ms(pct(p.latency, q)) for _, p in columns])
    row(f"of which under way during the flood's first {r.span:.1f} s: n, p50 / max, ms",
        ["—", f"{len(r.during)}, {ms(pct(r.during, 50))} / "
              f"{ms(max(r.during) if r.during else None)}"])
    row("others' danger → staff alert p50 / p99, ms",
        [f"{ms(pct(p.danger, 50))} / {ms(pct(p.danger, 99))}" for _, p in columns])
    row("others' turns without an answer in time", [str(p.stuck) for _, p in columns])
    row("others' flood-limit replies", [str(p.flood) for _, p in columns])
    row("CPU: bot / fake+people, % of a core",
        [f"{p.cpu_bot * 100:.0f} / {p.cpu_bench * 100:.0f}" for _, p in columns])
    header = ["figure"] + [name for name, _ in columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join([name, *cells]) + " |" for name, cells in rows]
    return "\n".join(lines)


def flood_summary(r: FloodResult) -> str:
    quiet, flood = pct(r.quiet.latency, 99), pct(r.flood.latency, 99)
    ratio = f"{flood / quiet:.2f}×" if quiet and flood is not None else "—"
    handed = "never" if r.handed_in is None else f"{r.handed_in:.2f} s after the first"
    slow = ", ".join(f"+{s:.1f} s" for s in r.slow_down) or "never"
    last = "—" if r.last_reply is None else f"+{r.last_reply:.1f} s"
    return "\n".join([
        f"{r.label}: the flood: {r.messages} messages offered in {r.offered_in * 1000:,.0f} ms; "
        f"getUpdates handed out the last {handed}",
        f"{r.label}: others' reply p99 flooding / quiet = {ms(flood)} / {ms(quiet)} ms = "
        f"{ratio} (target < 2×)",
        f"{r.label}: the flooder's danger message (#{r.danger_index} of {r.messages}): answered "
        f"in {ms(r.danger_answer)} ms, staff alert in {ms(r.danger_alert)} ms (of which "
        f"waiting at Telegram {ms(r.danger_queued)} ms); the flooder's other replies between "
        f"it and its answer: {r.replies_between}",
        f"{r.label}: \"please slow down\" to the flooder: {len(r.slow_down)} time(s) ({slow}; "
        f"target: once per flood); the flooder got {r.received} messages after the flood "
        f"began, the last at {last}",
    ])


def flood_json(r: FloodResult) -> dict[str, Any]:
    return {"db": r.label, "quiet": dump(r.quiet), "flood": dump(r.flood),
            "messages": r.messages, "offered_in": r.offered_in, "handed_in": r.handed_in,
            "danger_index": r.danger_index, "danger_answer": r.danger_answer,
            "danger_alert": r.danger_alert, "danger_queued": r.danger_queued,
            "replies_between": r.replies_between, "slow_down": r.slow_down,
            "received": r.received, "last_reply": r.last_reply, "rss_mb": r.rss,
            "during_span": r.span, "during": sorted(r.during)}
