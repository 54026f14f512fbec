"""What a phase measures, and the window it measures in: counters and CPU at both ends, and the
clock that says which phase a sample belongs to."""

from __future__ import annotations

import asyncio
import os
import random
import time
from dataclasses import dataclass, field

from .fake import Switchboard

perf = time.perf_counter


@dataclass
class Phase:
    name: str
    latency: list[float] = field(default_factory=list)
    latency_sent: list[float] = field(default_factory=list)  # each sample's update, offered
    danger: list[float] = field(default_factory=list)
    danger_queued: list[float] = field(default_factory=list)  # of which: waiting at Telegram
    to_child: list[float] = field(default_factory=list)
    to_desk: list[float] = field(default_factory=list)
    turns: int = 0
    stuck: int = 0
    flood: int = 0
    dangers_sent: int = 0
    cases_taken: int = 0
    cases_closed: int = 0
    gave_up: int = 0
    seconds: float = 0.0
    updates: float = 0.0  # the bot's own counter
    acked: int = 0
    pushed: int = 0
    staff_sent: int = 0
    replies: int = 0
    cpu_bot: float = 0.0
    cpu_bench: float = 0.0
    users: int = 0

    @property
    def rate(self) -> float:
        return self.updates / self.seconds if self.seconds else 0.0


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class Clock:
    """Which phase a moment belongs to; samples are filed under the phase of their start."""

    def __init__(self) -> None:
        self.current: Phase | None = None
        self.stopping = False
        self.think: tuple[float, float] = (0.0, 0.0)

    async def pause(self, scale: float = 1.0) -> None:
        low, high = self.think
        await asyncio.sleep(random.uniform(low, high) * scale if high else 0)



async def metric_updates(port: int) -> tuple[float, float]:
    """(moment, helpline_updates_total) from the bot's /metrics."""
    import aiohttp

    async with aiohttp.ClientSession() as session, session.get(
        f"http://127.0.0.1:{port}/metrics", timeout=aiohttp.ClientTimeout(total=60)
    ) as response:
        body = await response.text()
    at = perf()
    total = 0.0
    for line in body.splitlines():
        if line.startswith("helpline_updates_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return at, total


class Window:
    """Measure one phase: counters and CPU at both ends."""

    def __init__(self, phase: Phase, board: Switchboard, bot_pid: int,
                 metrics_port: int | None) -> None:
        self.phase, self.board, self.pid, self.port = phase, board, bot_pid, metrics_port
        self.fake = board.fake

    async def __aenter__(self) -> Window:
        self.acked = self.fake.confirmed
        self.pushed = self.fake.pushed
        self.staff_sent = self.board.staff_sent
        self.cpu = cpu_seconds(self.pid), cpu_seconds(os.getpid())
        if self.port is not None:
            self.start, self.count = await metric_updates(self.port)
        else:
            self.start, self.count = perf(), 0.0
        return self

    async def __aexit__(self, *exc: object) -> None:
        phase = self.phase
        if self.port is not None:
            end, count = await metric_updates(self.port)
        else:
            end, count = perf(), float(phase.replies)
        phase.seconds = end - self.start
        phase.updates = count - self.count
        phase.acked = self.fake.confirmed - self.acked
        phase.pushed = self.fake.pushed - self.pushed
        phase.staff_sent = self.board.staff_sent - self.staff_sent
        phase.cpu_bot = (cpu_seconds(self.pid) - self.cpu[0]) / phase.seconds
        phase.cpu_bench = (cpu_seconds(os.getpid()) - self.cpu[1]) / phase.seconds
