"""The database: engine, sessions and the one-writer rule for SQLite."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InvalidatePoolError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.util.concurrency import greenlet_spawn

from dialogs.ports import StoreConflict, StoreUnavailable, UnitOfWork
from storage import driver
from storage.lane import LaneGate, LaneLock
from storage.models import Base
from storage.records import RecordStores
from storage.repos.base import WORKER, connection
from storage.repositories import Repos
from storage.sqlite_inline import inline_url

DEFAULT_URL = "sqlite+aiosqlite:///var/helpline.db"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def _private_file(path: Path) -> None:
    """The SQLite file, and the WAL and shared-memory files SQLite makes beside it with the same
    mode, readable by the service's user only (0600), in a folder only it can list."""
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if file.exists() and file.stat().st_mode & 0o077:
            file.chmod(0o600)


# PostgreSQL: a pooled connection idle longer than this is pinged before use (a round trip of
# BEGIN, an empty query and ROLLBACK: SQLAlchemy's `pool_pre_ping` did that on every checkout,
# about three times per update, a third of the hot path's round trips). One in steady use is
# only checked for a socket the server has already closed (a restart or a terminated backend),
# which costs nothing; a connection that dies silently while busy fails its statement, and the
# turn is retried from the journal like any other database outage.
PING_AFTER_IDLE_S = 2.0


def _mark_idle(_dbapi_conn: Any, record: Any) -> None:
    """On connect and on checkin: a fresh connection needs no ping either."""
    record.info["idle_since"] = time.monotonic()


def _check_on_checkout(dialect: Any) -> Any:
    def check(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        driver = getattr(dbapi_conn, "driver_connection", None)
        if driver is not None and driver.is_closed():
            # The server closed it (a restart or a terminated backend): the others went too.
            raise InvalidatePoolError("the server closed the connection")
        since = record.info.get("idle_since")
        if since is not None and time.monotonic() - since <= PING_AFTER_IDLE_S:
            return
        try:
            dialect.do_ping(dbapi_conn)
        except dialect.loaded_dbapi.Error as exc:
            if dialect.is_disconnect(exc, dbapi_conn, None):
                raise InvalidatePoolError("the connection did not answer a ping") from exc
            raise

    return check


# PostgreSQL: how many transactions run at once, and the pool that serves them. The pool keeps
# a connection for each of them and four more (the chat claims' connection and the worker's
# presence, `storage.advisory`, and health checks) open: with fewer, the connections over the
# pool's size were opened and closed again around each transaction under load (174 connects
# for 1,800 updates in `bench/pipeline.py`, each a TLS attempt, a login and the driver's type
# setup). Three workers on one server stay under PostgreSQL's default of 100 connections.
TRANSACTIONS = 16
POOL_SIZE = TRANSACTIONS + 4
POOL_OVERFLOW = 10


class Database:
    """One per process. `unit()` is a transaction; on SQLite only one writes at a time."""

    def __init__(self, url: str = DEFAULT_URL, *, echo: bool = False) -> None:
        self.url = url
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        # SQLite: the file whose lock says which processes use the database now
        # (`storage.advisory.FilePresence`); None for a database in memory.
        self.presence_file: Path | None = None
        # SQL parameters are children's words and ids: never in a log line, DEBUG included.
        kwargs: dict[str, Any] = {"echo": echo, "hide_parameters": True}
        if self.is_sqlite:
            database = parsed.database
            if database and database != ":memory:":
                _private_file(Path(database))
                self.presence_file = Path(database).with_name(Path(database).name + "-workers")
        else:
            kwargs.update(pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW)
        # SQLite runs on the loop's thread (storage.sqlite_inline): a thread hop per driver
        # call cost more than the SQLite work itself.
        self.engine: AsyncEngine = create_async_engine(inline_url(parsed), **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        else:
            pool = self.engine.sync_engine.pool
            event.listen(pool, "connect", _mark_idle)
            event.listen(pool, "checkin", _mark_idle)
            event.listen(pool, "checkout", _check_on_checkout(self.engine.dialect))
        # What every session of this process knows (`Session.info`, copied into each new
        # session): the worker id its claims are written with (`worker`).
        self._info: dict[str, Any] = {WORKER: None}
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False, info=self._info)
        # PostgreSQL: sessions for one statement each, with no transaction around it (`single`).
        self._single = None if self.is_sqlite else async_sessionmaker(
            self.engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False,
            info=self._info)
        # SQLite allows one writer; serialising our own transactions avoids "database is locked"
        # (an upgrade from a read to a write lock fails at once instead of waiting).
        # Work in the danger lane (storage.lane) takes the writer's turn before ordinary work.
        # On PostgreSQL the pool's connections are what transactions wait for: the same lanes
        # hand them out (`TRANSACTIONS` at once, the rest of the pool left to the chat claims'
        # connection and health checks), so a danger turn, an update's journal write and a
        # counsellor's action do not queue behind thirty ordinary turns for a connection.
        self._writer: LaneGate = (
            LaneLock() if self.is_sqlite else LaneGate(TRANSACTIONS, reentrant=True)
        )

    @property
    def worker(self) -> int | None:
        """This process's worker id, written on each outbox claim it takes (`claimed_by`):
        on PostgreSQL the backend pid of its presence connection (`storage.advisory.Presence`),
        so that a live worker can tell a dead one's claims; None until it joins the workers
        (and on SQLite)."""
        return self._info[WORKER]  # type: ignore[no-any-return]

    @worker.setter
    def worker(self, value: int | None) -> None:
        self._info[WORKER] = value

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A transaction that commits on success and rolls back on error."""
        async with self._writer.hold(), self._sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def single(self) -> AsyncIterator[AsyncSession]:
        """For one statement, or reads only (a journal entry, a batch of delivered marks, a
        compare-and-set, a case's card read: reads see each statement's own snapshot in a
        transaction too, under PostgreSQL's READ COMMITTED). On PostgreSQL each statement
        commits on its own, without the BEGIN and the COMMIT that a transaction costs (two
        round trips of three); on SQLite it is a transaction as `session()`. Statements run
        here are not atomic together: each commits as it runs."""
        if self._single is None:
            async with self.session() as session:
                yield session
            return
        async with self._writer.hold(), self._single() as session, session.begin():
            yield session  # the ORM's pending rows are flushed at the end, as in `session()`

    @asynccontextmanager
    async def lone(self) -> AsyncIterator[driver.Lone]:
        """For statements built once that each commit alone and need no ORM (the journal entry
        of one update, the mailbox's look at a chat, a batch of delivered marks): a pooled
        connection and the driver itself (asyncpg's prepared statements; SQLite's `sqlite3`
        connection), with no session and no SQLAlchemy connection around them (a third to a
        quarter of `single()`'s cost). On PostgreSQL each statement commits as it runs; on
        SQLite they commit together at the end, as in `single()`. Waits for its turn as
        `single()` does."""
        dialect = self.engine.dialect
        if dialect.driver not in driver.DRIVERS:
            async with self.single() as s:
                yield driver.Lone(dialect, self.engine.sync_engine, conn=await connection(s))
            return
        async with self._writer.hold():
            fairy = await self.engine.raw_connection()
            lone = driver.Lone(dialect, self.engine.sync_engine, adapted=fairy.dbapi_connection)
            try:
                try:
                    yield lone
                except BaseException as exc:
                    if not isinstance(exc, Exception):
                        # Cancelled (a stop) perhaps mid-statement: the connection's state is
                        # unknown, so it is closed rather than handed to the next user.
                        lone.broken = True
                    lone.finish(ok=False)
                    raise
                lone.finish(ok=True)
            finally:
                # Back to the pool (or closed: an overflow connection, one the server dropped).
                await greenlet_spawn(fairy.invalidate if lone.broken else fairy.close)

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[RecordStores]:
        """The dialogs' unit of work (``dialogs.ports.UnitOfWork``): every store over one
        transaction, handing out detached records whose changes are saved when it commits
        (``storage.records``); a database failure surfaces as ``StoreUnavailable``."""
        try:
            async with self.session() as session:
                stores = RecordStores(Repos(session))
                yield stores
                await stores.save()
        except DBAPIError as exc:
            if _sqlstate(exc) in _CONFLICTS:
                raise StoreConflict(f"{type(exc).__name__} (deadlock or conflict)") from exc
            raise StoreUnavailable(type(exc).__name__) from exc

    async def create_all(self) -> None:
        """Create the schema directly (tests); production uses Alembic migrations."""
        async with self.engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)

    async def drop_all(self) -> None:
        async with self.engine.begin() as conn:
            await conn.run_sync(Base.metadata.drop_all)

    async def dispose(self) -> None:
        await self.engine.dispose()


# SQLSTATEs after which PostgreSQL rolled the transaction back and a retry is safe: deadlock
# detected, serialisation failure.
_CONFLICTS = frozenset({"40P01", "40001"})


def _sqlstate(exc: DBAPIError) -> str | None:
    """The SQLSTATE of a driver error (asyncpg's, through SQLAlchemy's adapter), if any."""
    for err in (exc.orig, getattr(exc.orig, "__cause__", None)):
        code = getattr(err, "pgcode", None) or getattr(err, "sqlstate", None)
        if code:
            return str(code)
    return None


def _contract(db: Database) -> UnitOfWork:
    """Never called: mypy checks here that Database keeps the dialogs' store contract."""
    return db
