"""`helpline counsellor password` and `helpline web`, run as an administrator would: in
subprocesses, on one database."""

from __future__ import annotations

import asyncio
import os
import pty
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import pyotp

ROOT = Path(__file__).resolve().parents[2]


def helpline(*args: str, stdin: str = "", env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin, capture_output=True, text=True, env=env, cwd=ROOT, timeout=120,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "VK_", "WEB_"))}
    env["DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    env["EVIDENCE_DIR"] = str(tmp_path / "evidence")
    env["WEB_HOST"] = "127.0.0.1"
    env["WEB_PORT"] = str(_free_port())
    env["WEB_COOKIE_SECURE"] = "false"
    env.update(extra)
    return env


@contextmanager
def running(*args: str, env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    # A terminal for stdin, as an operator would have.
    primary, secondary = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", *args],
        stdin=secondary, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=env, cwd=ROOT,
    )
    os.close(secondary)
    try:
        yield process
    finally:
        os.close(primary)
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def _sign_in(base: str, name: str, password: str, code: str = "") -> int:
    # unsafe=True: the default jar keeps no cookies from an IP address such as 127.0.0.1.
    async with aiohttp.ClientSession(
        cookie_jar=aiohttp.CookieJar(unsafe=True), timeout=aiohttp.ClientTimeout(total=20)
    ) as http:
        for _ in range(150):
            try:
                page = await http.get(f"{base}/signin")
                break
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.1)
        else:
            raise AssertionError("the console did not start")
        token = re.search(r'name="csrf" value="([^"]+)"', await page.text())
        assert token is not None
        answer = await http.post(
            f"{base}/signin",
            data={"csrf": token.group(1), "name": name, "password": password, "code": code},
            allow_redirects=False,
        )
        if answer.status != 302:
            return answer.status
        queue = await http.get(f"{base}/", allow_redirects=False)
        return queue.status


def test_password_from_stdin_totp_and_the_web_verb(tmp_path: Path) -> None:
    env = _env(tmp_path)
    assert helpline("db", "upgrade", env=env).returncode == 0
    assert helpline("counsellor", "add", "anna", "--channel", "web", "--id", "anna",
                    env=env).returncode == 0
    short = helpline("counsellor", "password", "anna", stdin="short\n", env=env)
    assert short.returncode == 2 and "at least 10" in short.stderr
    nobody = helpline("counsellor", "password", "nobody", stdin="long enough pw\n", env=env)
    assert nobody.returncode == 1 and "no counsellor named" in nobody.stderr
    done = helpline("counsellor", "password", "anna", "--totp", stdin="long enough pw\n",
                    env=env)
    assert done.returncode == 0, done.stderr
    assert "long enough pw" not in done.stdout + done.stderr
    secret = re.search(r"Secret: ([A-Z2-7]+)", done.stdout)
    assert secret is not None and "otpauth://totp/" in done.stdout

    base = f"http://127.0.0.1:{env['WEB_PORT']}"
    with running("web", env=env) as process:
        assert asyncio.run(_sign_in(base, "anna", "long enough pw")) == 401, "code needed"
        code = pyotp.TOTP(secret.group(1)).now()
        assert asyncio.run(_sign_in(base, "anna", "long enough pw", code)) == 200
        assert process.poll() is None
    assert "long enough pw" not in (process.stderr.read() if process.stderr else "")
