"""`Database.lone`: the hot path's statements that each commit alone (the journal entry of one
update, the mailbox's look at a chat, a batch of delivered marks), with no ORM session; on
PostgreSQL asyncpg's prepared statements on a pooled connection held for them."""

from __future__ import annotations

import pytest
from sqlalchemy import exc, select, text

from storage.db import Database
from storage.models import InboxUpdate, OutboxMessage
from storage.repositories import Repos, add_first, chat_waiting, mark_delivered_many


class Boom(Exception):
    pass


async def test_on_postgresql_each_lone_statement_commits_as_it_runs(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("SQLite's lone statements share one transaction (as `Database.single`)")
    with pytest.raises(Boom):
        async with db.lone() as on:
            await add_first(on, "telegram", "8", {}, "k8")
            raise Boom
    async with db.lone() as on:
        assert await chat_waiting(on, "telegram", "k8") is True


async def test_on_sqlite_lone_statements_commit_together(db: Database) -> None:
    if not db.is_sqlite:
        pytest.skip("PostgreSQL's commit as they run")
    with pytest.raises(Boom):
        async with db.lone() as on:
            await add_first(on, "telegram", "9", {}, "k9")
            raise Boom
    async with db.lone() as on:
        assert await chat_waiting(on, "telegram", "k9") is False  # rolled back
        await add_first(on, "telegram", "9", {}, "k9")
    async with db.session() as s:  # committed, and the writer's turn given back
        assert (await s.execute(select(InboxUpdate.update_id))).scalars().all() == ["9"]


async def test_lone_statements_commit_alone_and_keep_their_answers(db: Database) -> None:
    async with db.lone() as on:
        entry, first = await add_first(on, "telegram", "7", {"text": "привет"}, "k7")
        assert entry is not None and first is True
        assert await add_first(on, "telegram", "7", {}, "k7") == (None, False)  # a repeat
    async with db.lone() as on:
        assert await chat_waiting(on, "telegram", "k7") is True
        assert await chat_waiting(on, "telegram", "other") is False
    async with db.session() as s:
        row = await s.get(InboxUpdate, entry)
        assert row is not None and row.body == {"text": "привет"}
        ids = [await Repos(s).outbox.write("telegram", "c", {"n": i}) for i in range(3)]
    async with db.lone() as on:
        await mark_delivered_many(on, ids[1:])
    async with db.session() as s:
        assert (await s.execute(select(OutboxMessage.id))).scalars().all() == [ids[0]]


async def test_a_lone_connection_the_server_dropped_is_not_given_back(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("a server's connections: PostgreSQL's (make test-pg)")

    async with db.lone() as on:
        await chat_waiting(on, "telegram", "k")
    async with db.session() as s:  # the server ends every other backend (a restart, say)
        await s.execute(text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ))
    # The pool notices a closed socket at checkout; and a lone statement that does meet a
    # dead connection fails as a database error, and that connection is dropped.
    for _ in range(3):
        try:
            async with db.lone() as on:
                assert await chat_waiting(on, "telegram", "k") is False
            break
        except exc.DBAPIError:
            continue
    else:
        pytest.fail("lone statements kept failing after the server dropped its connections")


async def test_a_lone_statement_cancelled_midway_does_not_go_back_to_the_pool(
    db: Database,
) -> None:
    if db.is_sqlite:
        pytest.skip("SQLite's statements run at once on the loop's thread")
    import asyncio

    async def slow() -> None:
        async with db.lone() as on:
            await on.run(text("SELECT pg_sleep(5)"), {})

    task = asyncio.create_task(slow())
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The connection was closed, not handed back mid-statement: its backend is gone, and
    # the next statements find a usable connection.
    for _ in range(25):
        async with db.lone() as on:
            assert await chat_waiting(on, "telegram", "k") is False
    async with db.session() as s:
        running = await s.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(5)' "
            "AND state = 'active'"
        ))
        assert running.scalar_one() == 0
