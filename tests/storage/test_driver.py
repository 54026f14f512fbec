"""PostgreSQL: the hot path's statements sent as asyncpg prepared statements (`storage.driver`)
keep what SQLAlchemy's execution gave them: the unit's transaction, the columns' encryption and
time zones, SQLAlchemy's errors, and the statement listeners. Run by `make test-pg`; on SQLite
the driver is not used and those are skipped. `Database.lone` (statements that each commit
alone, with no session) is tested on both."""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest
from sqlalchemy import bindparam, exc, func, insert, select, text

from storage import driver
from storage.db import Database
from storage.models import InboxUpdate, OutboxMessage, ProcessedUpdate, utcnow
from storage.repos.base import connection
from storage.repositories import Repos


class Boom(Exception):
    pass


async def _count(db: Database, model: type) -> int:
    async with db.session() as s:
        return int((await s.execute(select(func.count()).select_from(model))).scalar_one())


async def test_a_statement_sent_first_in_a_transaction_rolls_back_with_it(db: Database) -> None:
    with pytest.raises(Boom):
        async with db.session() as s:
            entry, _first = await Repos(s).inbox.add_first("telegram", "1", {"t": "hi"}, "k")
            assert entry is not None
            conn = await connection(s)
            assert driver.usable(conn)  # the statement above went to the driver
            raise Boom
    assert await _count(db, InboxUpdate) == 0
    async with db.session() as s:  # and when the unit commits, it is there
        await Repos(s).inbox.add_first("telegram", "1", {"t": "hi"}, "k")
    assert await _count(db, InboxUpdate) == 1


async def test_in_a_single_unit_each_statement_commits_alone(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("SQLite's `single()` is one transaction")
    with pytest.raises(Boom):
        async with db.single() as s:
            await Repos(s).inbox.add_first("telegram", "2", {"t": "hi"}, "k")
            raise Boom
    assert await _count(db, InboxUpdate) == 1


async def test_encrypted_and_timestamp_columns_are_written_as_sqlalchemy_writes_them(
    db: Database,
) -> None:
    body = {"text": "мне страшно", "chat": "12345", "n": [1, 2]}
    before = utcnow()
    async with db.session() as s:
        entry, first = await Repos(s).inbox.add_first("telegram", "3", body, "key-3")
        out_id = await Repos(s).outbox.write("telegram", "12345", {"text": "мы рядом"})
    assert first is True
    async with db.session() as s:
        row = await s.get(InboxUpdate, entry)
        assert row is not None and row.body == body and row.chat_key == "key-3"
        assert row.received_at.tzinfo is not None
        assert abs(row.received_at - before) < timedelta(seconds=5)
        # At rest the body is ciphertext: the words are not in the column.
        raw = (await s.execute(text("SELECT body FROM inbox WHERE id = :i"), {"i": entry}))
        assert "страшно" not in str(raw.scalar_one())
        message = await s.get(OutboxMessage, out_id)
        assert message is not None and message.body == {"text": "мы рядом"}


async def test_answers_and_row_counts(db: Database) -> None:
    async with db.session() as s:
        repos = Repos(s)
        entry, first = await repos.inbox.add_first("telegram", "4", {}, "chat")
        assert entry is not None and first is True
        assert await repos.inbox.add_first("telegram", "4", {}, "chat") == (None, False)
        later, first = await repos.inbox.add_first("telegram", "4b", {}, "chat")
        assert later is not None and later > entry and first is False  # one older is open
        assert await repos.inbox.chat_waiting("telegram", "chat") is True
        assert await repos.inbox.take("telegram", "4") is True  # closes the open entry
        assert await repos.inbox.take("telegram", "4") is False  # a repeat
        assert await repos.inbox.take("telegram", "4b") is True
        assert await repos.inbox.chat_waiting("telegram", "chat") is False
        ids = [await repos.outbox.write("telegram", "c", {"n": i}) for i in range(3)]
        await repos.outbox.mark_delivered_many(ids[:2])
    async with db.session() as s:
        left = (await s.execute(select(OutboxMessage.id))).scalars().all()
    assert left == [ids[2]]


async def test_driver_errors_are_sqlalchemys(db: Database) -> None:
    stmt = insert(ProcessedUpdate).values(
        channel=bindparam("c"), update_id=bindparam("u"), created_at=bindparam("t"),
    )
    params = {"c": "telegram", "u": "5", "t": utcnow()}
    with pytest.raises(exc.IntegrityError):
        async with db.session() as s:
            conn = await connection(s)
            await driver.execute(conn, stmt, params)
            await driver.execute(conn, stmt, params)  # the same key again
    assert await _count(db, ProcessedUpdate) == 0  # the transaction rolled back whole
    with pytest.raises(exc.DBAPIError):
        async with db.session() as s:
            await driver.execute(await connection(s), text("SELECT * FROM no_such_table"), {})
    # The connection is usable again afterwards (the pool gave it back rolled back).
    async with db.session() as s:
        rows = await driver.execute(await connection(s), text("SELECT :a + 1"), {"a": 41})
        assert rows.scalar_one() == 42


async def test_one_raises_as_sqlalchemys_result(db: Database) -> None:
    async with db.session() as s:
        conn = await connection(s)
        none = await driver.execute(conn, text("SELECT 1 WHERE false"), {})
        with pytest.raises(exc.NoResultFound):
            none.one()
        assert none.first() is None and none.scalar() is None
        two = await driver.execute(conn, text("SELECT 1 UNION ALL SELECT 2"), {})
        with pytest.raises(exc.MultipleResultsFound):
            two.one()
        assert [r[0] for r in two.all()] == [1, 2]


async def test_statement_listeners_see_each_statement(db: Database) -> None:
    from sqlalchemy import event

    seen: list[str] = []

    def on_statement(_c: object, _cur: object, statement: str, *_: object) -> None:
        seen.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", on_statement)
    try:
        async with db.session() as s:
            await Repos(s).inbox.add_first("telegram", "6", {}, "k6")
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", on_statement)
    assert any(line.startswith("INSERT INTO inbox") for line in seen)


async def test_timestamps_come_back_aware(db: Database) -> None:
    async with db.session() as s:
        conn = await connection(s)
        stmt = select(bindparam("t", type_=InboxUpdate.__table__.c.received_at.type))
        moment = utcnow()
        got = (await driver.execute(conn, stmt, {"t": moment})).scalar_one()
    assert got == moment and got.utcoffset() == UTC.utcoffset(None)

