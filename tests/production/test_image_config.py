"""The production image and compose file, as an operator meets them.

`helpline run` on a database that was never migrated: the embedded SQLite database is migrated
at start (a plain `docker run` of the image works); PostgreSQL is migrated once, as its own step,
so a worker says what to run instead of failing later on "no such table". The compose file
refuses to start without the secrets every worker must share, keeps the database password out
of the URL, and the proxy keeps /metrics and /readyz private.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from sqlalchemy import text

from bot.cli import _ensure_schema
from bot.settings import Settings
from storage.db import Database
from storage.migrate import head_revision
from tests.production.conftest import create_database, drop_database, pg_base_url

ROOT = Path(__file__).resolve().parents[2]
SHARED = ("ENCRYPTION_KEYS", "ID_HASH_KEY", "TELEGRAM_WEBHOOK_SECRET", "TELEGRAM_WEBHOOK_URL")


async def test_run_migrates_a_new_sqlite_database(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'new.db'}"
    assert await _ensure_schema(Settings(_env_file=None, database_url=url)) is None  # type: ignore[call-arg]
    db = Database(url)
    try:
        async with db.session() as s:
            version = (await s.execute(text("SELECT version_num FROM alembic_version"))).scalar()
            users = (await s.execute(text("SELECT count(*) FROM users"))).scalar()
    finally:
        await db.dispose()
    assert version == head_revision(url) and users == 0


async def test_run_on_an_unmigrated_postgresql_says_what_to_run() -> None:
    url = await create_database(pg_base_url(), "schema_at_start")
    try:
        problem = await _ensure_schema(Settings(_env_file=None, database_url=url))  # type: ignore[call-arg]
    finally:
        await drop_database(url)
    assert problem is not None and "helpline db upgrade" in problem


def _compose() -> dict[str, object]:
    loaded = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def test_compose_refuses_to_start_without_the_shared_secrets() -> None:
    compose = _compose()
    services = compose["services"]
    assert isinstance(services, dict)
    for name in ("migrate", "bot"):
        env = services[name]["environment"]
        for key in SHARED:
            assert re.fullmatch(r"\$\{" + key + r":\?[^}]+\}", str(env.get(key))), (name, key)
        url = str(env["DATABASE_URL"])
        assert "${" not in url and ":" not in url.split("@")[0].split("//")[1], (
            "no password in the URL: asyncpg reads PGPASSWORD"
        )
        assert str(env["PGPASSWORD"]).startswith("${POSTGRES_PASSWORD:?")
    assert services["bot"]["stop_grace_period"] and "build" not in services["bot"], (
        "workers run the image the migration built"
    )
    assert services["bot"]["image"] == services["migrate"]["image"]


def test_the_image_and_the_proxy() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "WEBHOOK_PORT" in dockerfile.split("HEALTHCHECK", 1)[1].split("\n\n")[0]
    owned = r"install -d -o helpline -g helpline .*/var/lib/helpline/evidence"
    assert re.search(owned, dockerfile), "the evidence volume is the service user's"
    assert "matplotlib" not in dockerfile and "--without-pip" in dockerfile
    caddy = (ROOT / "deploy" / "Caddyfile").read_text(encoding="utf-8")
    assert re.search(r"@internal path [^\n]*/metrics[^\n]*/readyz", caddy)
    assert "respond @internal 404" in caddy
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert {".env", ".venv", ".git", "var"} <= set(ignored)


@pytest.fixture(autouse=True)
def _no_env_file(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("DATABASE_URL",):
        monkeypatch.delenv(key, raising=False)
