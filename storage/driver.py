"""PostgreSQL: the hot path's Core statements sent as asyncpg prepared statements on the
session's own connection and transaction, past SQLAlchemy's execution machinery.

Every update runs a handful of statements built once at module level (the journal entry, its
closing, the outbox row, the delivered marks, the chat claims). Through `Connection.execute`
each pays SQLAlchemy's compiled-cache lookup, parameter processing, execution context and
result set-up and a greenlet hop, about three times what asyncpg itself spends on it
(`bench/statements.py`). Here a statement is compiled once per dialect into its SQL text, the
order of its parameters and their bind processors (the encrypted and UTC columns' own), and
then sent with the very prepared-statement cache that SQLAlchemy's adapter keeps on the
connection:

- on the transaction the session holds: the adapter begins it lazily, on its first statement,
  and so does `execute` (a statement run first in a unit rolls back with it); on an autocommit
  connection (`Database.single`, the chat claims) each statement commits alone, as through
  SQLAlchemy;
- a driver error is raised as SQLAlchemy raises it (`IntegrityError`, `DBAPIError`), so callers
  and `Database.unit` see what they saw;
- the engine's `before_cursor_execute` listeners are told of each statement (the tests and
  `bench/pipeline.py` count statements with them).

SQLite (`storage.sqlite_inline`, on the loop's thread) is sent the same way on its `sqlite3`
connection. Another driver, and anything not built once (a statement with expanding ``IN``
parameters), go through SQLAlchemy as before.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Executable

from storage.sqlite_inline import DRIVER as SQLITE_INLINE

_ROWCOUNT = re.compile(r"(?:SELECT|UPDATE|DELETE|INSERT \d+) (\d+)")


class Plan:
    """A statement compiled once: its SQL, its parameters in order with their processors, and
    its result columns' processors."""

    __slots__ = ("_defaults", "binds", "names", "results", "sql")

    def __init__(self, stmt: Executable, dialect: Dialect) -> None:
        compiled: Any = stmt.compile(dialect=dialect)  # type: ignore[attr-defined]
        if compiled.literal_execute_params or compiled.post_compile_params:
            raise ValueError("a statement with expanding parameters is compiled per call")
        self.sql: str = compiled.string
        self.names: tuple[str, ...] = tuple(compiled.positiontup or ())
        processors = compiled._bind_processors  # what SQLAlchemy applies (types' own)
        self.binds: tuple[Callable[[Any], Any] | None, ...] = tuple(
            processors.get(name) for name in self.names
        )
        self.results: tuple[Callable[[Any], Any] | None, ...] = tuple(
            column.type._cached_result_processor(dialect, None)
            for column in compiled._result_columns
        )
        binds = [bind for name, bind in compiled.binds.items() if name in self.names]
        if any(bind.callable is not None for bind in binds):
            raise ValueError("a parameter whose value is computed per call")
        # Values built into the statement (a LIMIT, a literal in a CASE): sent as parameters.
        self._defaults = {
            name: bind.value
            for name, bind in compiled.binds.items()
            if name in self.names and not bind.required
        }

    def arguments(self, params: dict[str, Any]) -> list[Any]:
        """The statement's positional arguments: each parameter processed once (SQLite's
        question marks repeat a name for each place it is used)."""
        done: dict[str, Any] = {}
        for name, process in zip(self.names, self.binds, strict=True):
            if name not in done:
                value = params[name] if name in params else self._defaults[name]
                done[name] = value if process is None or value is None else process(value)
        return [done[name] for name in self.names]

    def row(self, record: Any) -> tuple[Any, ...]:
        if not any(self.results):
            return tuple(record)
        return tuple(
            value if process is None else process(value)
            for value, process in zip(record, self.results, strict=True)
        )


_PLANS: dict[tuple[int, str], tuple[Executable, Plan | None]] = {}
# The hot path has a few dozen statements built once; the cache never grows past this.
_MOST_PLANS = 512


def plan(stmt: Executable, dialect: Dialect) -> Plan | None:
    """`stmt`'s plan for `dialect`, built on first use (the statement is kept beside it, so
    its id is not reused while the plan lives); None for one that is compiled per call (its
    expanding parameters)."""
    key = (id(stmt), dialect.name)
    found = _PLANS.get(key)
    if found is None:
        if len(_PLANS) >= _MOST_PLANS:  # statements built per call, passed here by mistake
            _PLANS.clear()
        try:
            found = (stmt, Plan(stmt, dialect))
        except ValueError:  # SQLAlchemy compiles it per call
            found = (stmt, None)
        _PLANS[key] = found
    return found[1]


class Result(Protocol):
    """What the repositories read of a statement's result: SQLAlchemy's, or `Rows`."""

    @property
    def rowcount(self) -> int: ...

    def all(self) -> Any: ...

    def first(self) -> Any: ...

    def one(self) -> Any: ...

    def scalar(self) -> Any: ...

    def scalar_one(self) -> Any: ...


class Rows:
    """The result of a statement sent by `execute`: its rows (processed) and row count, with the
    few reading methods the repositories use of SQLAlchemy's result."""

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: list[tuple[Any, ...]], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def all(self) -> Sequence[tuple[Any, ...]]:
        return self._rows

    def first(self) -> tuple[Any, ...] | None:
        return self._rows[0] if self._rows else None

    def one(self) -> tuple[Any, ...]:
        if not self._rows:
            raise sa_exc.NoResultFound("No row was found when one was required")
        if len(self._rows) > 1:
            raise sa_exc.MultipleResultsFound("Multiple rows were found when one was required")
        return self._rows[0]

    def scalar(self) -> Any:
        return self._rows[0][0] if self._rows else None

    def scalar_one(self) -> Any:
        return self.one()[0]


# The drivers `execute` sends on: asyncpg, and SQLite's on the loop's thread.
DRIVERS = frozenset({"asyncpg", SQLITE_INLINE})


def usable(conn: AsyncConnection) -> bool:
    """Can `execute` send on `conn`: PostgreSQL through asyncpg or SQLite through
    `storage.sqlite_inline`, the connection valid."""
    sync = conn.sync_connection
    return (
        sync is not None
        and conn.dialect.driver in DRIVERS
        and not sync.invalidated
        and not sync.closed
    )


async def execute(conn: AsyncConnection, stmt: Executable, params: dict[str, Any]) -> Result:
    """Send `stmt` with `params` on `conn`'s own driver connection, in `conn`'s transaction
    (begun here if this is its first statement); on a connection the driver path cannot use
    (`usable`), or for a statement not built once (`plan` is None), through SQLAlchemy."""
    if not usable(conn):
        return await conn.execute(stmt, params)
    sync = conn.sync_connection
    assert sync is not None
    the_plan = plan(stmt, conn.dialect)
    if the_plan is None:
        return await conn.execute(stmt, params)
    return await _send(sync.connection.dbapi_connection, conn.dialect,
                       sync.dispatch.before_cursor_execute, sync, the_plan, params)


async def _send(
    adapted: Any, dialect: Dialect, listeners: Any, conn: Any, the_plan: Plan,
    params: dict[str, Any], *, begin: bool = True,
) -> Rows:
    """The planned statement on SQLAlchemy's adapter `adapted` of the driver's connection.
    asyncpg: in its transaction (begun first when `begin` and there is none), else on its own
    (asyncpg commits it alone); SQLite: `_sqlite`. `listeners` (the `before_cursor_execute`
    ones) are told of it as SQLAlchemy tells them, `conn` theirs."""
    args = the_plan.arguments(params)
    if listeners:
        listeners(conn, None, the_plan.sql, args, None, False)
    if dialect.driver == SQLITE_INLINE:
        return _sqlite(adapted, dialect, the_plan, args)
    try:
        async with adapted._execute_mutex:
            if begin and adapted._transaction is None:
                await adapted._start_transaction()  # nothing on an autocommit connection
            prepared, _attributes = await adapted._prepare(
                the_plan.sql, dialect._invalidate_schema_cache_asof  # type: ignore[attr-defined]
            )
            records = await prepared.fetch(*args)
            status = prepared.get_statusmsg()
    except Exception as error:  # a driver error becomes SQLAlchemy's, as it raises it
        raise _translated(adapted, dialect, the_plan.sql, args, error) from error
    match = _ROWCOUNT.match(status or "")
    rowcount = int(match.group(1)) if match else -1
    return Rows([the_plan.row(record) for record in records], rowcount)


def _sqlite(adapted: Any, dialect: Dialect, the_plan: Plan, args: list[Any]) -> Rows:
    """SQLite (`storage.sqlite_inline`): the statement on the `sqlite3` connection itself, in
    the transaction the module keeps on it (begun before the first write, as for SQLAlchemy's
    statements on the same connection)."""
    connection: sqlite3.Connection = adapted._connection._connection
    try:
        cursor = connection.execute(the_plan.sql, args)
        try:
            records = cursor.fetchall()
            rowcount = cursor.rowcount
        finally:
            cursor.close()
    except sqlite3.Error as error:
        dbapi: Any = dialect.loaded_dbapi
        raise sa_exc.DBAPIError.instance(
            the_plan.sql, args, error, dbapi.Error, dialect=dialect
        ) from error
    return Rows([the_plan.row(record) for record in records], rowcount)


class Statements(Protocol):
    """Where the repositories' statements built once run: a repository's session, or `Lone`."""

    @property
    def dialect(self) -> str: ...

    async def run(self, stmt: Executable, params: dict[str, Any]) -> Result: ...


class Lone:
    """Statements that each commit alone, on a pooled connection held for them with no
    session, no SQLAlchemy connection and no transaction of SQLAlchemy's around them
    (`Database.lone`): the journal entry of one update, the mailbox's look at a chat, a batch
    of delivered marks. On PostgreSQL each commits as it runs; on SQLite they share the
    transaction the `sqlite3` module begins before the first write, committed by `finish`.
    With another driver they run on a session's connection (`conn`) instead."""

    def __init__(
        self, dialect: Dialect, events: Any, *, adapted: Any = None,
        conn: AsyncConnection | None = None,
    ) -> None:
        self._dialect = dialect
        self._events = events
        self._adapted = adapted
        self._conn = conn
        self.broken = False  # the server went away: the connection is not given back

    @property
    def dialect(self) -> str:
        return self._dialect.name

    async def run(self, stmt: Executable, params: dict[str, Any]) -> Result:
        if self._conn is not None:
            return await execute(self._conn, stmt, params)
        the_plan = plan(stmt, self._dialect)
        if the_plan is None:
            raise ValueError("a lone statement is built once (no expanding parameters)")
        try:
            return await _send(self._adapted, self._dialect,
                               self._events.dispatch.before_cursor_execute, None, the_plan,
                               params, begin=False)
        except sa_exc.DBAPIError as exc:
            self.broken = self.broken or exc.connection_invalidated
            raise

    def finish(self, ok: bool) -> None:
        """SQLite: commit what ran (`ok`) or roll it back; PostgreSQL committed each already."""
        if self._adapted is None or self._dialect.driver != SQLITE_INLINE:
            return
        connection: sqlite3.Connection = self._adapted._connection._connection
        try:
            connection.commit() if ok else connection.rollback()
        except sqlite3.Error as error:
            dbapi: Any = self._dialect.loaded_dbapi
            raise sa_exc.DBAPIError.instance(
                "COMMIT" if ok else "ROLLBACK", None, error, dbapi.Error, dialect=self._dialect
            ) from error


def _translated(
    adapted: Any, dialect: Dialect, sql: str, args: list[Any], error: Exception
) -> BaseException:
    dbapi: Any = dialect.loaded_dbapi
    try:
        adapted._handle_exception(error)  # raises the adapter's DBAPI error for it
    except dbapi.Error as dbapi_error:
        translated: BaseException = sa_exc.DBAPIError.instance(
            sql, args, dbapi_error, dbapi.Error, dialect=dialect,
            connection_invalidated=dialect.is_disconnect(dbapi_error, adapted, None),
        )
        return translated
    except Exception as other:  # not a driver error: raised as it is
        return other
    return error


__all__ = ["Lone", "Plan", "Result", "Rows", "Statements", "execute", "plan", "usable"]
