"""The command line: options, the runs in order, the printed figures."""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from . import ROOT
from . import __doc__ as DOC
from .database import pg_base_url
from .flood import flood_json, flood_summary, flood_table, run_flood
from .processes import python
from .report import machine, results_json, summary, table, write_json
from .runs import run_echo, run_helpline

SCRIPT = ROOT / "bench" / "load.py"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    assert DOC is not None
    p = argparse.ArgumentParser(description=DOC.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=int, default=1000, help="simulated children (default 1000)")
    p.add_argument("--duration", type=float, default=60,
                   help="seconds measured with thinking users (default 60); the saturated "
                        "phase lasts half of it, the echo bot a third")
    p.add_argument("--db", choices=["sqlite", "pg", "both"], default="sqlite")
    p.add_argument("--think", default="5-15",
                   help="seconds a child reads and types between messages, LOW-HIGH "
                        "(default 5-15)")
    p.add_argument("--counsellors", type=int, default=6)
    p.add_argument("--capacity", type=int, default=5, help="cases a counsellor holds at once")
    p.add_argument("--wait", type=float, default=30,
                   help="seconds a child waits for a counsellor before leaving the queue")
    p.add_argument("--turn-timeout", type=float, default=60)
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    p.add_argument("--profile", type=Path, default=None,
                   help="record the bot with py-spy in each window: DIR/<db>-<phase>.txt "
                        "(collapsed stacks, for flamegraph.pl or speedscope)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--flood", action="store_true",
                   help="instead of the echo bot and the two phases: --users thinking "
                        "children, a quiet window of --duration seconds, then one as long "
                        "while one more child floods the bot (bench/loadtest/flood.py)")
    p.add_argument("--flood-messages", type=int, default=500,
                   help="messages the flooder sends, a danger message in the middle "
                        "(default 500)")
    p.add_argument("--flood-rate", type=float, default=0,
                   help="the flooder's messages per second (default 0: all at once)")
    p.add_argument("--flood-chars", type=int, default=0,
                   help="make each of the flooder's ordinary messages this long, an everyday "
                        "story (default 0: a short plea); triage reads every one at intake")
    args = p.parse_args(argv)
    low, _, high = args.think.partition("-")
    args.think = (float(low), float(high or low))
    args.saturated_seconds = max(10.0, args.duration / 2)
    args.echo_seconds = max(10.0, args.duration / 3)
    args.ramp = min(10.0, max(2.0, args.users / 200))
    args.warmup = 10.0
    return args


async def load(args: argparse.Namespace, kinds: list[str], workdir: Path) -> dict[str, Any]:
    """The echo bot, then the help line on each database: the table and its summary."""
    print(f"echo bot, {args.users} users...", flush=True)
    echo, echo_rss = await run_echo(args, workdir)
    print(f"  {echo.rate:,.0f} updates/s", flush=True)
    results = []
    for kind in kinds:
        print(f"helpline on {kind}, {args.users} users: {args.duration:g} s thinking, "
              f"{args.saturated_seconds:g} s saturated...", flush=True)
        result = await run_helpline(args, kind, workdir)
        print(f"  {result.paced.rate:,.0f} / {result.saturated.rate:,.0f} updates/s "
              f"(started in {result.startup:.1f} s)", flush=True)
        results.append(result)
    print()
    print(table(echo, echo_rss, results))
    print()
    print(summary(args, echo, results))
    return results_json(echo, echo_rss, results)


async def flood(args: argparse.Namespace, kinds: list[str], workdir: Path) -> dict[str, Any]:
    """The flood run on each database: a table and the flooder's figures for each."""
    results = []
    for kind in kinds:
        print(f"helpline on {kind}, {args.users} thinking users: {args.duration:g} s quiet, "
              f"then {args.duration:g} s with one child sending {args.flood_messages} "
              f"messages...", flush=True)
        result = await run_flood(args, kind, workdir)
        print(f"  {result.quiet.rate:,.0f} / {result.flood.rate:,.0f} updates/s "
              f"(started in {result.startup:.1f} s)", flush=True)
        results.append(result)
    for r in results:
        print()
        print(f"{r.label}, one child flooding:")
        print()
        print(flood_table(r))
        print()
        print(flood_summary(r))
    return {"flood": [flood_json(r) for r in results]}


async def amain(args: argparse.Namespace) -> int:
    random.seed(args.seed)
    kinds = ["sqlite", "pg"] if args.db == "both" else [args.db]
    workdir = Path(tempfile.mkdtemp(prefix="helpline-bench-"))
    try:
        print(f"machine: {machine()}", flush=True)
        figures = await (flood if args.flood else load)(args, kinds, workdir)
        if args.json is not None:
            write_json(args.json, figures)
    finally:
        if os.environ.get("BENCH_KEEP"):
            print(f"kept {workdir} (BENCH_KEEP)")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


def main() -> int:
    args = parse_args()
    if args.db in ("pg", "both") and pg_base_url() is None:
        if os.environ.get("HELPLINE_BENCH_PG_WRAPPED"):
            raise SystemExit("no PostgreSQL URL even under scripts/with-postgres.sh")
        env = {**os.environ, "HELPLINE_BENCH_PG_WRAPPED": "1"}
        command = [str(ROOT / "scripts" / "with-postgres.sh"), python(),
                   str(SCRIPT), *sys.argv[1:]]
        return subprocess.call(command, env=env)
    return asyncio.run(amain(args))
