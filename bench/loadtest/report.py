"""The figures as printed: the machine, the table (markdown, as docs/benchmarks.md keeps it),
the summary lines, and the same figures as JSON."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
from pathlib import Path
from typing import Any

from .measure import Phase, pct
from .runs import HelplineResult


def machine() -> str:
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (f"{os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), {model}; "
            f"Python {platform.python_version()}; {platform.system()} {platform.release()}")


def ms(value: float | None) -> str:
    return "—" if value is None else f"{value * 1000:,.0f}"


def table(echo: Phase, echo_rss: float | None, results: list[HelplineResult]) -> str:
    columns: list[tuple[str, Phase, HelplineResult | None]] = [("bare aiogram echo", echo, None)]
    for r in results:
        columns.append((f"helpline, {r.label}, think {r.paced.name.split('think ')[1]}",
                        r.paced, r))
        columns.append((f"helpline, {r.label}, saturated", r.saturated, r))
    rows: list[tuple[str, list[str]]] = []

    def row(name: str, cells: list[str]) -> None:
        rows.append((name, cells))

    row("simulated users", [str(p.users) for _, p, _ in columns])
    row("measured window, s", [f"{p.seconds:.0f}" for _, p, _ in columns])
    row("updates offered per second", [f"{p.pushed / p.seconds:,.0f}" if p.seconds else "—"
                                       for _, p, _ in columns])
    row("updates handled per second", [f"{p.rate:,.0f}" for _, p, _ in columns])
    row("ratio to the echo bot", ["1.00"] + [f"{p.rate / echo.rate:.2f}" if echo.rate else "—"
                                             for _, p, _ in columns[1:]])
    for q in (50, 95, 99):
        row(f"reply latency p{q}, ms", [ms(pct(p.latency, q)) for _, p, _ in columns])
    row("danger → staff alert p50, ms", ["n/a"] + [ms(pct(p.danger, 50))
                                                   for _, p, _ in columns[1:]])
    row("danger → staff alert p99, ms", ["n/a"] + [ms(pct(p.danger, 99))
                                                   for _, p, _ in columns[1:]])
    row("of which waiting at Telegram p50 / p99, ms",
        ["n/a"] + [f"{ms(pct(p.danger_queued, 50))} / {ms(pct(p.danger_queued, 99))}"
                   for _, p, _ in columns[1:]])
    row("danger messages (alerts seen)", ["n/a"] + [f"{p.dangers_sent} ({len(p.danger)})"
                                                    for _, p, _ in columns[1:]])
    row("counsellor → child p50 / p99, ms",
        ["n/a"] + [f"{ms(pct(p.to_child, 50))} / {ms(pct(p.to_child, 99))}"
                   for _, p, _ in columns[1:]])
    row("child → counsellor p50 / p99, ms",
        ["n/a"] + [f"{ms(pct(p.to_desk, 50))} / {ms(pct(p.to_desk, 99))}"
                   for _, p, _ in columns[1:]])
    row("cases taken / closed / child gave up",
        ["n/a"] + [f"{p.cases_taken} / {p.cases_closed} / {p.gave_up}"
                   for _, p, _ in columns[1:]])
    row("staff-group posts per minute (Telegram allows 20)",
        ["n/a"] + [f"{p.staff_sent / p.seconds * 60:,.0f}" if p.seconds else "—"
                   for _, p, _ in columns[1:]])
    row("turns without an answer in time", [str(p.stuck) for _, p, _ in columns])
    row("flood-limit replies", ["n/a"] + [str(p.flood) for _, p, _ in columns[1:]])
    row("CPU: bot / fake+people, % of a core",
        [f"{p.cpu_bot * 100:.0f} / {p.cpu_bench * 100:.0f}" for _, p, _ in columns])
    row("peak RSS of the bot (VmHWM), MB",
        [f"{echo_rss:.0f}" if echo_rss else "—"]
        + [f"{r.rss:.0f}" if r and r.rss else "—" for _, _, r in columns[1:]])
    row("database size per 1,000 conversations, MB",
        ["n/a"] + [f"{r.db_mb / r.conversations * 1000:.2f}" if r and r.conversations else "—"
                   for _, _, r in columns[1:]])
    row("database growth per 1,000 conversations, MB (over the empty schema, after VACUUM)",
        ["n/a"] + [f"{r.grown_mb / r.conversations * 1000:.2f}" if r and r.conversations
                   else "—" for _, _, r in columns[1:]])
    row("database size per 1,000 updates handled, MB",
        ["n/a"] + [f"{r.db_mb / r.updates * 1000:.2f}" if r and r.updates else "—"
                   for _, _, r in columns[1:]])
    row("database: MB / conversations / child lines kept / updates",
        ["n/a"] + [f"{r.db_mb:.1f} / {r.conversations} / {r.messages} / {r.updates}" if r
                   else "—" for _, _, r in columns[1:]])
    header = ["figure"] + [name for name, _, _ in columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join([name, *cells]) + " |" for name, cells in rows]
    return "\n".join(lines)


def summary(args: argparse.Namespace, echo: Phase, results: list[HelplineResult]) -> str:
    """The lines after the table: the biggest tables, and each result against its targets."""
    lines = []
    for r in results:
        if r.tables:
            lines.append(f"{r.label}: biggest tables with their indexes, MB: {r.tables}")
    for r in results:
        lines.append(f"{r.label}: throughput ratio to the bare echo bot = "
                     f"{r.saturated.rate / echo.rate:.2f} (target ≥ 0.5); danger alert p99 at "
                     f"{args.users} thinking users = {ms(pct(r.paced.danger, 99))} ms "
                     f"(target < 200 ms)")
    return "\n".join(lines)


def dump(p: Phase) -> dict[str, Any]:
    return {"name": p.name, "users": p.users, "seconds": p.seconds,
            "updates_per_second": p.rate, "acked": p.acked,
            **{f"latency_p{q}": pct(p.latency, q) for q in (50, 95, 99)},
            "danger_p50": pct(p.danger, 50), "danger_p99": pct(p.danger, 99),
            "danger_queued_p99": pct(p.danger_queued, 99),
            "dangers": p.dangers_sent, "alerts": len(p.danger),
            "to_child_p50": pct(p.to_child, 50), "to_child_p99": pct(p.to_child, 99),
            "staff_posts": p.staff_sent, "stuck": p.stuck, "flood": p.flood,
            "cpu_bot": p.cpu_bot, "cpu_bench": p.cpu_bench}


def write_json(path: Path, figures: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"machine": machine(), **figures}, indent=2))


def results_json(echo: Phase, echo_rss: float | None,
                 results: list[HelplineResult]) -> dict[str, Any]:
    return {"echo": dump(echo), "echo_rss_mb": echo_rss,
            "helpline": [{"db": r.label, "paced": dump(r.paced),
                          "saturated": dump(r.saturated), "rss_mb": r.rss,
                          "db_mb": r.db_mb, "grown_mb": r.grown_mb,
                          "conversations": r.conversations,
                          "messages": r.messages, "updates": r.updates,
                          "tables": r.tables} for r in results]}
