"""The command line, run as a user would run it: in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def helpline(*args: str, stdin: str = "", env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "VK_"))}
    env["DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    env["EVIDENCE_DIR"] = str(tmp_path / "evidence")
    return env


def test_piped_chat_and_desk_on_one_database(tmp_path: Path) -> None:
    env = _env(tmp_path)
    assert helpline("db", "upgrade", env=env).returncode == 0
    chat = helpline("chat", "--user", "masha", stdin="привет\n1\n3\nмне страшно\n", env=env)
    assert chat.returncode == 0, chat.stderr
    assert "Кто ты?" in chat.stdout and "Чем я могу помочь?" in chat.stdout
    assert "в очереди" in chat.stdout
    refused = helpline("desk", "--as", "nobody", stdin="queue\n", env=env)
    assert refused.returncode == 1 and "not a registered counsellor" in refused.stderr
    added = helpline("counsellor", "add", "anna", "--channel", "console", "--id", "anna", env=env)
    assert added.returncode == 0, added.stderr
    desk = helpline(
        "desk",
        "--as",
        "anna",
        stdin="queue\ntake 1\nreply 1 Привет, я консультант\nclose 1 advice-given\n",
        env=env,
    )
    assert desk.returncode == 0, desk.stderr
    assert "#1" in desk.stdout and "you hold case #1" in desk.stdout
    assert "мне страшно" in desk.stdout
    assert "masha" not in desk.stdout, "the child's account is never shown"
    after = helpline("chat", "--user", "masha", stdin="5\n", env=env)
    assert "counsellor> Привет, я консультант" in after.stdout
    assert "Оцени" in after.stdout and "почему" in after.stdout
    audit = helpline("audit", "1", env=env)
    assert "anna" in audit.stdout and "taken" in audit.stdout and "viewed" in audit.stdout


def test_bad_setting_names_the_variable(tmp_path: Path) -> None:
    env = _env(tmp_path)
    env["WEBHOOK_PORT"] = "not-a-port"
    result = helpline("db", "upgrade", env=env)
    assert result.returncode == 2 and "WEBHOOK_PORT" in result.stderr


def test_flows_prints_mermaid(tmp_path: Path) -> None:
    result = helpline("flows", env=_env(tmp_path))
    # The five flows and the conversation machine between them.
    assert result.returncode == 0 and result.stdout.count("stateDiagram-v2") == 6


def test_every_verb_works_before_any_setup_and_never_prints_a_traceback(tmp_path: Path) -> None:
    env = {**_env(tmp_path), "KEYS_FILE": str(tmp_path / "keys.json")}
    # No `db upgrade` first: the embedded database is made and migrated on first use.
    for verb in (["purge"], ["audit", "1"], ["counsellor", "list"]):
        done = helpline(*verb, env=env)
        assert done.returncode == 0, (verb, done.stderr[-500:])
        assert "Traceback" not in done.stderr
    away = {**env, "DATABASE_URL": "postgresql+asyncpg://helpline@127.0.0.1:1/helpline"}
    refused = helpline("purge", env=away)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "DATABASE_URL" in refused.stderr.strip().splitlines()[-1]
