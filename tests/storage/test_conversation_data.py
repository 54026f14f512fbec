"""`conversations.data` (typed links, captions, collected answers) is encrypted at rest; rows
written as plain JSON before migration 0007 still read, and are encrypted on their next save
or by `helpline db rotate-keys`."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

from storage import crypto
from storage.db import Database
from storage.migrate import upgrade
from storage.models import Conversation
from storage.repositories import Repos
from storage.rotate import rotate_keys

LINK = "https://example.org/petya-7b"
PLAIN = {"link": LINK, "caption": "Петя из 7Б"}


async def _conversation(db: Database, data: dict[str, str]) -> int:
    async with db.session() as s:
        repos = Repos(s)
        user, _ = await repos.users.get_or_create("console", "child-9", "chat-9", "ru")
        conv = await repos.conversations.create(user.id, "start", "menu")
        conv.data = data
        return user.id


async def _read(db: Database, user_id: int) -> dict[str, str]:
    async with db.session() as s:
        conv = await Repos(s).conversations.for_user(user_id, lock=False)
        assert conv is not None
        return dict(conv.data)


async def _raw(db: Database) -> str:
    async with db.session() as s:
        return str((await s.execute(text("SELECT data FROM conversations"))).scalar_one())


async def _make_legacy(db: Database, value: dict[str, str]) -> None:
    """What a row written before 0007 holds: the document as plain JSON text."""
    async with db.session() as s:
        await s.execute(text("UPDATE conversations SET data = :v"), {"v": json.dumps(value)})


async def test_data_reads_back_and_is_stored_encrypted(db: Database) -> None:
    user_id = await _conversation(db, PLAIN)
    assert await _read(db, user_id) == PLAIN
    raw = await _raw(db)
    assert crypto.is_token(raw)
    assert LINK not in raw and "Петя" not in raw and "link" not in raw


async def test_a_legacy_plain_row_reads_and_is_encrypted_on_its_next_save(db: Database) -> None:
    user_id = await _conversation(db, {})
    await _make_legacy(db, PLAIN)
    assert await _read(db, user_id) == PLAIN

    async with db.session() as s:  # the engine's save: the same answers, reassigned
        conv = await Repos(s).conversations.for_user(user_id)
        assert conv is not None
        conv.data = dict(conv.data)

    raw = await _raw(db)
    assert crypto.is_token(raw) and LINK not in raw
    assert await _read(db, user_id) == PLAIN


async def test_a_damaged_value_is_an_error_not_data(db: Database) -> None:
    user_id = await _conversation(db, {})
    async with db.session() as s:
        await s.execute(text("UPDATE conversations SET data = 'gAAAAAbroken'"))
    with pytest.raises(crypto.CryptoError):
        await _read(db, user_id)


async def test_rotate_keys_encrypts_legacy_rows(db: Database) -> None:
    user_id = await _conversation(db, {})
    await _make_legacy(db, PLAIN)
    assert await rotate_keys(db) > 0
    raw = await _raw(db)
    assert crypto.is_token(raw) and LINK not in raw
    assert await _read(db, user_id) == PLAIN


@pytest.fixture
async def migration_url(tmp_path: Path) -> AsyncIterator[str]:
    """An empty database of this test's own: a file on SQLite, a new database on PostgreSQL."""
    if "postgresql" not in os.environ.get("HELPLINE_TEST_DATABASE_URL", ""):
        yield f"sqlite+aiosqlite:///{tmp_path / 'migrated.db'}"
        return
    from tests.production.conftest import create_database, drop_database, pg_base_url

    url = await create_database(pg_base_url(), "helpline_0007")
    try:
        yield url
    finally:
        await drop_database(url)


async def test_migration_0007_keeps_plain_rows_readable(migration_url: str) -> None:
    await asyncio.to_thread(upgrade, migration_url, "0006")
    old = Database(migration_url)
    async with old.session() as s:
        await s.execute(
            text(
                "INSERT INTO users (id, channel, external_id, address, address_hash, locale,"
                " locale_fixed, notice_shown, unreachable, created_at, last_seen_at)"
                " VALUES (1, 'console', 'x', 'a', 'h', 'ru', false, false, false,"
                " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
        await s.execute(
            text(
                "INSERT INTO conversations (id, user_id, flow, state, data, version, updated_at)"
                " VALUES (1, 1, 'start', 'menu', :data, 0, CURRENT_TIMESTAMP)"
            ),
            {"data": json.dumps(PLAIN)},
        )
    await old.dispose()

    await asyncio.to_thread(upgrade, migration_url, "head")

    db = Database(migration_url)
    try:
        assert await _read(db, 1) == PLAIN
        async with db.session() as s:
            conv = await s.get(Conversation, 1)
            assert conv is not None
            conv.data = {**conv.data, "more": "x"}
        assert crypto.is_token(await _raw(db))
        assert await _read(db, 1) == {**PLAIN, "more": "x"}
    finally:
        await db.dispose()
