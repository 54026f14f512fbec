"""SQLite for the async engine without a thread hop per call.

aiosqlite runs every driver call (open a cursor, execute, fetch, close the cursor, commit) on a
thread of its own and wakes the event loop when it is done: about a hundred round trips per
update, each costing more than the SQLite work it carries (bench/pipeline.py measured 113
thread hops and 24 ms of CPU per update). SQLite itself answers our statements in microseconds
(an index lookup, a row written to the WAL; `synchronous=NORMAL` syncs only at checkpoints), so
this driver makes the same `sqlite3` calls right on the event loop's thread, behind the async
interface SQLAlchemy's aiosqlite dialect expects: every awaitable here completes at once.

What it costs: while a statement runs, the loop waits for it. Our own transactions are already
one at a time (`storage.db.Database` holds the writer lock around each), so that is only the
statement's own time, except when another process (the `helpline` CLI, a separate web console)
holds SQLite's write lock: then `busy_timeout` waits on this thread. Keep long jobs short-lived
on SQLite, or use PostgreSQL (which production does).

`Database` uses it for every SQLite URL: `sqlite+aiosqlite:///path` keeps working as written.
"""

from __future__ import annotations

import sqlite3
import types
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_dbapi,
    SQLiteDialect_aiosqlite,
)

DRIVER = "helpline_inline"


class InlineCursor:
    """An aiosqlite-shaped cursor over a `sqlite3` cursor; each call runs at once."""

    __slots__ = ("_cursor",)

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Any = ()) -> InlineCursor:
        self._cursor.execute(sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> InlineCursor:
        self._cursor.executemany(sql, parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(self._cursor.arraysize if size is None else size)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    async def setinputsizes(self, *sizes: Any) -> None:
        return None

    async def nextset(self) -> None:
        raise sqlite3.NotSupportedError("sqlite3 has no nextset")


class InlineConnection:
    """An aiosqlite-shaped connection over a `sqlite3` connection."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._conn = connection
        # SQLAlchemy's adapter checks `_connection` before commit and rollback (aiosqlite sets
        # it to None once closed).
        self._connection: sqlite3.Connection | None = connection

    def cursor(self) -> InlineCursor:
        if self._connection is None:
            raise ValueError("no active connection")
        return InlineCursor(self._connection.cursor())

    async def commit(self) -> None:
        if self._connection is not None:
            self._connection.commit()

    async def rollback(self) -> None:
        if self._connection is not None:
            self._connection.rollback()

    async def close(self) -> None:
        self.stop()

    def stop(self) -> None:
        """Close at once (SQLAlchemy's terminate)."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        self._conn.isolation_level = value  # type: ignore[assignment]


def _connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
    # Pooled connections may be closed by the garbage collector on another thread.
    kwargs.setdefault("check_same_thread", False)
    connection: sqlite3.Connection = sqlite3.connect(*args, **kwargs)
    return connection


# What SQLAlchemy's aiosqlite dialect reads from the aiosqlite module: the exceptions (those of
# sqlite3, as aiosqlite re-exports them), the connection class and the version.
_MODULE = types.SimpleNamespace(
    Connection=InlineConnection,
    __version__="1.0",
    sqlite_version=sqlite3.sqlite_version,
    sqlite_version_info=sqlite3.sqlite_version_info,
    **{
        name: getattr(sqlite3, name)
        for name in ("DatabaseError", "Error", "IntegrityError", "NotSupportedError",
                     "OperationalError", "ProgrammingError")
    },
)


class _AdaptedConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()

    @property
    def isolation_level(self) -> str | None:
        return self._connection.isolation_level  # type: ignore[no-any-return]

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        self._connection.isolation_level = value


class _Dbapi(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *args: Any, **kwargs: Any) -> _AdaptedConnection:
        kwargs.pop("async_creator_fn", None)
        try:
            connection = _connect(*args, **kwargs)
        except Exception as error:
            _AdaptedConnection._handle_exception_no_connection(self, error)
        return _AdaptedConnection(self, InlineConnection(connection))  # type: ignore[arg-type]


class InlineSQLiteDialect(SQLiteDialect_aiosqlite):
    """`sqlite+helpline_inline://`: the aiosqlite dialect over `InlineConnection`."""

    driver = DRIVER
    supports_statement_cache = True

    @classmethod
    def import_dbapi(cls) -> _Dbapi:
        return _Dbapi(_MODULE, sqlite3)  # type: ignore[arg-type]


registry.register(f"sqlite.{DRIVER}", __name__, "InlineSQLiteDialect")


def inline_url(url: Any) -> Any:
    """The same SQLite URL, on this driver (any other URL unchanged)."""
    if url.get_backend_name() == "sqlite" and url.get_driver_name() != DRIVER:
        return url.set(drivername=f"sqlite+{DRIVER}")
    return url


__all__: Sequence[str] = ["DRIVER", "InlineSQLiteDialect", "inline_url"]
