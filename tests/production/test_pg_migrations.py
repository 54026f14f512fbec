"""`helpline db upgrade` on an empty PostgreSQL database builds exactly the schema the models
declare (types included), in a database of its own that is dropped afterwards."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from storage.migrate import head_revision
from storage.models import Base

from .conftest import create_database, drop_database, helpline, helpline_env, pg_base_url


async def test_upgrade_of_an_empty_postgresql_database_matches_the_models(
    tmp_path: Path,
) -> None:
    base = pg_base_url()
    url = await create_database(base, "helpline_migrate")
    try:
        env = helpline_env(url, tmp_path)
        out = await asyncio.to_thread(helpline, env, "db", "upgrade")
        assert "latest schema" in out
        # Upgrading again is a no-op, as `make run` does on every start.
        await asyncio.to_thread(helpline, env, "db", "upgrade")

        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                revision = (await conn.execute(
                    text("SELECT version_num FROM alembic_version"))).scalar_one()

                def diff(sync_conn: Any) -> list[Any]:
                    ctx = MigrationContext.configure(sync_conn, opts={"compare_type": True})
                    return list(compare_metadata(ctx, Base.metadata))

                differences = await conn.run_sync(diff)
        finally:
            await engine.dispose()
        assert revision == head_revision(url)
        assert differences == [], "\n".join(map(str, differences))
    finally:
        await drop_database(url)
