"""What `helpline run` and `/readyz` find of the schema, read without Alembic."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from storage import health
from storage.db import Database
from storage.health import head_revision, schema_state
from storage.migrate import head_revision as alembic_head
from storage.migrate import upgrade

ROOT = Path(__file__).resolve().parents[2]


def test_the_head_is_alembic_s_own(tmp_path: Path) -> None:
    assert head_revision() == alembic_head(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")


async def test_empty_behind_current_and_unversioned(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 's.db'}"
    db = Database(url)
    try:
        assert await schema_state(db) == "empty"
        await asyncio.to_thread(upgrade, url, "0012")
        assert await schema_state(db) == "behind"
        await asyncio.to_thread(upgrade, url)
        assert await schema_state(db) == "current"
        ready = await health.readiness(db)
        assert ready.ready and ready.revision == head_revision()
    finally:
        await db.dispose()
    made = Database(f"sqlite+aiosqlite:///{tmp_path / 'made.db'}")
    try:
        await made.create_all()
        assert await schema_state(made) == "unversioned"
    finally:
        await made.dispose()


def test_two_heads_fail_instead_of_passing_a_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a.py").write_text('revision: str = "a"\ndown_revision: str | None = None\n')
    (tmp_path / "b.py").write_text('revision = "b"\ndown_revision = "a"\n')
    (tmp_path / "c.py").write_text("revision = 'c'\ndown_revision = 'a'\n")
    monkeypatch.setattr(health, "VERSIONS", tmp_path)
    head_revision.cache_clear()
    try:
        with pytest.raises(RuntimeError, match="several heads"):
            head_revision()
        (tmp_path / "c.py").write_text("revision = 'c'\ndown_revision = 'b'\n")
        head_revision.cache_clear()
        assert head_revision() == "c"
    finally:
        head_revision.cache_clear()


def test_a_current_database_is_checked_without_loading_alembic(tmp_path: Path) -> None:
    """`helpline run` checks the schema at every start: on a current database that check
    alone must not keep Alembic (about 11 MB) in the process."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'c.db'}"
    upgrade(url)
    code = (
        "import asyncio, sys\n"
        "from bot.cli import _ensure_schema\n"
        "from bot.settings import Settings\n"
        f"print(asyncio.run(_ensure_schema(Settings(database_url={url!r}))))\n"
        "print('alembic' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELPLINE_")}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120, check=True)
    assert done.stdout.split() == ["None", "False"], done.stderr
