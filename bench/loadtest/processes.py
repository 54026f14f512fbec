"""The processes around the simulated people: the bot (`helpline run`, and the `helpline` verbs
that prepare it), the echo bot, and py-spy."""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.telegram.fake_api import FakeTelegram

from . import ROOT

perf = time.perf_counter


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def spawn(command: list[str], log: Path, env: dict[str, str] | None = None
          ) -> subprocess.Popen[bytes]:
    """A child process writing to `log` (started from async code: Popen returns at once)."""
    with log.open("wb") as out:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=out,
                                stdin=subprocess.DEVNULL)


def python() -> str:
    venv = ROOT / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


async def wait_for_polling(fake: FakeTelegram, proc: subprocess.Popen[bytes], log: Path,
                           within: float = 120) -> None:
    deadline = perf() + within
    while fake.polls == 0:
        if proc.poll() is not None:
            raise SystemExit(f"the bot exited ({proc.returncode}):\n{tail(log)}")
        if perf() > deadline:
            raise SystemExit(f"the bot did not start polling:\n{tail(log)}")
        await asyncio.sleep(0.1)


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def start_profiler(args: argparse.Namespace, pid: int, name: str,
                   seconds: float) -> subprocess.Popen[bytes] | None:
    """py-spy on the bot for one window (--profile DIR): DIR/NAME.txt, collapsed stacks."""
    if args.profile is None:
        return None
    spy = shutil.which("py-spy", path=str(ROOT / ".venv" / "bin")) or shutil.which("py-spy")
    if spy is None:
        print("(--profile needs py-spy: .venv/bin/pip install py-spy)", file=sys.stderr)
        return None
    args.profile.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([spy, "record", "-p", str(pid), "-d", str(int(seconds)), "-r", "50",
                             "-f", "raw", "-o", str(args.profile / f"{name}.txt")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def finish_profiler(profiler: subprocess.Popen[bytes] | None) -> None:
    if profiler is not None:
        try:
            profiler.wait(timeout=30)
        except subprocess.TimeoutExpired:
            profiler.kill()


async def run_cli(env: dict[str, str], *args: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        python(), "-m", "bot", *args, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"helpline {' '.join(args)} failed:\n{out.decode()[-3000:]}")
