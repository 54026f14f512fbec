"""Chat claims across worker processes on PostgreSQL: session-level advisory locks held on one
connection per process (see `bot.locks` and `bot.mailbox`). A process that dies, even by
SIGKILL, loses its connection and with it every claim at once."""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
from collections.abc import Awaitable, Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

from sqlalchemy import Select, TextClause, column, select, table, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from storage import driver
from storage.lane import LaneLock
from storage.repos.desk import desk_claims_given_back
from storage.repos.outbox import claims_given_back

log = logging.getLogger(__name__)

ChatKey = tuple[str, str]  # (channel, the keyed hash of the chat id)
# The first half of every chat claim's two-part advisory lock key ("MB", mailbox), so our
# claims cannot meet another advisory lock user's.
ADVISORY_NAMESPACE = 0x4D42
_TRY_LOCK = text("SELECT pg_try_advisory_lock(:ns, :chat)")
_UNLOCK = text("SELECT pg_advisory_unlock(:ns, :chat)")


# Every worker process holds this key shared for as long as it runs (`Presence`); a starting
# worker that can take it exclusively knows no other worker is alive.
WORKERS_KEY = -1
_TRY_ALONE = text("SELECT pg_try_advisory_lock(:ns, :key)")
_PRESENT = text("SELECT pg_advisory_lock_shared(:ns, :key)")
_NOT_ALONE = text("SELECT pg_advisory_unlock(:ns, :key)")
_BACKEND = text("SELECT pg_backend_pid()")
# The live workers: the backend pids holding `WORKERS_KEY` (a two-part key: `classid` the
# namespace, `objid` the key as an oid). A claim names its worker by that pid
# (`outbox.claimed_by`, `cases.desk_*_claimed_by`).
_LIVE: Select[Any] = (
    select(column("pid"))
    .select_from(table("pg_locks"))
    .where(text(
        f"locktype = 'advisory' AND classid = {ADVISORY_NAMESPACE}"
        f" AND objid = {WORKERS_KEY & 0xFFFFFFFF} AND objsubid = 2 AND granted"
        " AND pid IS NOT NULL"
    ))
)
# What the workers that are gone held: undelivered replies (not those given up on), and the
# desk's claims on cases (made stale: `GIVEN_BACK`). Each names the live workers at the moment
# it runs.
_RELEASE_DEAD = (claims_given_back(_LIVE), *desk_claims_given_back(_LIVE))
# Between the passes that find a worker gone, the claims are looked at anyway every so many
# passes: a worker that joined and died between two passes was never seen leaving.
_SWEEP_EVERY = 30


def advisory_key(key: ChatKey) -> int:
    """A chat's half of the advisory lock key: 32 bits of a hash (two chats that share one only
    take turns, which is harmless)."""
    digest = hashlib.sha256(f"{key[0]}:{key[1]}".encode()).digest()
    return int.from_bytes(digest[:4], "big", signed=True)


class Presence:
    """This worker's presence on PostgreSQL: a shared advisory lock (`WORKERS_KEY`) held on a
    connection of its own for as long as the process runs, dropped with the connection when
    the process dies (even by SIGKILL). `join` tells whether the process started alone: no
    other worker holds the lock, so every claim in the database is a dead process's."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._conn: AsyncConnection | None = None
        # This worker's id while it is present: its presence connection's backend pid, which
        # its claims carry (`outbox.claimed_by`, the desk's on cases).
        self.worker: int | None = None
        # The live workers at the last pass of `release_dead`, and the passes since a sweep
        # (None: none yet, the first pass sweeps).
        self._seen: set[int] = set()
        self._passes: int | None = None

    async def _connect(self) -> AsyncConnection:
        conn = await self.engine.connect()
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        self._conn = conn
        return conn

    async def join(self, take_over: Callable[[], Awaitable[object]]) -> bool:
        """Join the workers; when no other is alive, `take_over` runs first, while no other
        worker can join (the lock is held exclusively until it ends). True when it ran."""
        conn = await self._connect()
        params = {"ns": ADVISORY_NAMESPACE, "key": WORKERS_KEY}
        alone = bool((await conn.execute(_TRY_ALONE, params)).scalar())
        try:
            if alone:
                await take_over()
        finally:
            # A session's own locks do not conflict: shared is taken while exclusive is held,
            # so no other worker finds the key free in between.
            await self._hold_shared(conn)
            if alone:
                await conn.execute(_NOT_ALONE, params)
        return alone

    async def release_dead(self) -> int:
        """Give back the claims of workers that are gone (killed, or cut off from the
        database: their lock went with their connection), so what they had not sent (a
        child's emergency numbers, the counsellors' alert) goes out now, not when its lease
        runs out (20 s; a desk claim goes stale in 60 s). One look at the live workers per
        call; the claims are looked at when one has gone since the last call (and every
        `_SWEEP_EVERY` calls). Runs on the presence connection itself: if that broke, this
        worker's lock is gone too, and it joins again first (with a new id: the claims it took
        under the old one are given back like a dead worker's, and may be sent twice).
        Returns how many claims were given back."""
        if self._conn is None or self._conn.closed:
            await self._rejoin()
        assert self._conn is not None
        conn = self._conn
        try:
            live = set((await conn.execute(_LIVE)).scalars())
            gone = self._seen - live
            self._seen = live
            if self._passes is not None and not gone and self._passes < _SWEEP_EVERY:
                self._passes += 1
                return 0
            self._passes = 0
            released = 0
            for statement in _RELEASE_DEAD:
                released += int((await conn.execute(statement)).rowcount or 0)
            return released
        except (SQLAlchemyError, OSError) as exc:
            log.warning("the presence connection broke (%s): joining again", type(exc).__name__)
            await self._drop()
            await self._rejoin()
            return 0

    async def _rejoin(self) -> None:
        await self._hold_shared(await self._connect())

    async def _hold_shared(self, conn: AsyncConnection) -> None:
        """Hold the workers' key shared on `conn` (this worker is present) and take its
        backend pid as this worker's id."""
        await conn.execute(_PRESENT, {"ns": ADVISORY_NAMESPACE, "key": WORKERS_KEY})
        self.worker = int((await conn.execute(_BACKEND)).scalar_one())

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with suppress(SQLAlchemyError, OSError):
                await conn.invalidate()
                await conn.close()

    async def close(self) -> None:
        self.worker = None
        await self._drop()  # not back to the pool: closing drops the lock


class FilePresence:
    """`Presence` for SQLite, whose file several processes may use at once (`helpline run`, a
    terminal `helpline chat` or `helpline desk`): a shared `flock` on a file beside the
    database, held for as long as the process runs and dropped by the system when it dies
    (even by SIGKILL). `path` None (a database in memory): always alone."""

    # SQLite's claims name no worker: a dead process's are given back at the next start
    # (`join`) or when their lease runs out.
    worker: int | None = None

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._fd: int | None = None

    async def release_dead(self) -> int:
        return 0

    async def join(self, take_over: Callable[[], Awaitable[object]]) -> bool:
        if self.path is None:
            await take_over()
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        self._fd = fd
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            alone = False
        else:
            alone = True
        try:
            if alone:
                await take_over()
        finally:
            # Exclusive to shared: another process starting in that instant may find itself
            # alone too; both give back claims nobody has used yet.
            fcntl.flock(fd, fcntl.LOCK_SH)
        return alone

    async def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # the lock goes with the descriptor


class AdvisoryClaims:
    """PostgreSQL advisory locks (`pg_try_advisory_lock`) on one autocommit connection of this
    process, which holds every chat the process has claimed (and goes back to the pool while it
    holds none). If that connection breaks, its
    locks are gone: they are forgotten here too (`holds` turns False), so a drainer stops after
    the update in hand instead of racing the worker that took the chat over."""

    shared = True

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._conn: AsyncConnection | None = None
        # One query at a time on the connection; a drainer with danger waiting asks first.
        self._lock = LaneLock()
        self._held: set[ChatKey] = set()

    async def _connection(self) -> AsyncConnection:
        if self._conn is None or self._conn.closed:
            conn = await self.engine.connect()
            self._conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        return self._conn

    async def _ask(self, sql: TextClause, key: ChatKey) -> bool:
        async with self._lock.hold():
            try:
                conn = await self._connection()
                params = {"ns": ADVISORY_NAMESPACE, "chat": advisory_key(key)}
                # asyncpg's prepared statement, past SQLAlchemy (`storage.driver`)
                return bool((await driver.execute(conn, sql, params)).scalar())
            except (SQLAlchemyError, OSError):
                await self._lost()
                raise

    async def _lost(self) -> None:
        if self._held:
            log.warning("the chat claim connection broke: %d claims lost", len(self._held))
        self._held.clear()
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.invalidate()
                await conn.close()
            except (SQLAlchemyError, OSError):
                pass  # already gone

    async def try_claim(self, key: ChatKey) -> bool:
        if key in self._held:
            return False  # held by another task of this process
        self._held.add(key)
        try:
            taken = await self._ask(_TRY_LOCK, key)
        except BaseException:
            self._held.discard(key)
            raise
        if not taken:
            self._held.discard(key)
            await self._idle()
        return taken

    async def release(self, key: ChatKey) -> None:
        if key not in self._held:
            return  # lost with the connection: nothing to give back
        try:
            await self._ask(_UNLOCK, key)
        except (SQLAlchemyError, OSError) as exc:
            log.warning("could not release a chat claim (%s)", type(exc).__name__)
        finally:
            self._held.discard(key)
        await self._idle()

    async def _idle(self) -> None:
        """With no claim held, the connection goes back to the pool (it holds no lock)."""
        async with self._lock.hold():
            if self._held or self._conn is None:
                return
            conn, self._conn = self._conn, None
            with suppress(SQLAlchemyError, OSError):
                await conn.close()

    def holds(self, key: ChatKey) -> bool:
        return key in self._held

    async def close(self) -> None:
        async with self._lock.hold():
            conn, self._conn = self._conn, None
            self._held.clear()
            if conn is not None:
                try:
                    # Not back to the pool: closing the session is what drops its locks.
                    await conn.invalidate()
                    await conn.close()
                except (SQLAlchemyError, OSError):
                    pass
