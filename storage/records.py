"""The dialogs' unit of work over SQLAlchemy: its stores hand out detached domain records.

``dialogs/`` sees the stores of ``dialogs.ports`` and their records, plain dataclasses
(``CaseRecord``, ``UserRecord``, ...), never an ORM row. The repositories in ``storage/repos/``
still work with rows; ``Records`` stands between them for one unit of work:

- every row a repository returns becomes a record, one record per row for the whole unit
  (reading the same case twice gives the same record);
- a record handed back to a repository (``cases.position(case)``) is given as its row;
- what the dialogs change on a record is written to its row before the next repository call,
  before a flush and before the unit commits, so a query never reads behind the dialogs'
  changes and a change is saved exactly as it was when the rows were the records;
- after a repository call, a flush or a refresh, a record is read again from its row (ids,
  defaults and atomic updates made in SQL show).
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Coroutine
from dataclasses import fields
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, bindparam, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import InstanceState
from sqlalchemy.orm.attributes import instance_state
from sqlalchemy.orm.base import NO_VALUE
from sqlalchemy.orm.exc import StaleDataError

from dialogs.ports import (
    AttachmentRecord,
    AttachmentStore,
    AuditRecord,
    AuditStore,
    BlockRecord,
    BlockStore,
    CaseRecord,
    CaseStore,
    ConversationRecord,
    ConversationStore,
    CounsellorRecord,
    CounsellorStore,
    DeskStore,
    InboxStore,
    MessageRecord,
    MessageStore,
    OutboxStore,
    UpdateStore,
    UserRecord,
    UserStore,
)
from storage import driver, models
from storage.repos.base import connection

if TYPE_CHECKING:
    from storage.repositories import Repos

# Which record each kind of row becomes, and the record's fields (read from the row by name).
RECORD_OF: dict[type[models.Base], type] = {
    models.User: UserRecord,
    models.Conversation: ConversationRecord,
    models.Message: MessageRecord,
    models.Case: CaseRecord,
    models.Attachment: AttachmentRecord,
    models.Counsellor: CounsellorRecord,
    models.AuditEvent: AuditRecord,
    models.Block: BlockRecord,
}
_RECORD_TYPES = frozenset(RECORD_OF.values())
_FIELDS: dict[type, tuple[str, ...]] = {
    kind: tuple(f.name for f in fields(kind)) for kind in RECORD_OF.values()
}


# Records the dialogs change (the rest are frozen: storage alone fills them in, after a flush).
_CHANGED_BY_DIALOGS = frozenset({UserRecord, ConversationRecord, CaseRecord})


def _copy(value: Any) -> Any:
    """A snapshot of a field: dicts and lists are copied, so a change made in place shows."""
    return copy.deepcopy(value) if isinstance(value, dict | list) else value


def record_of(row: models.Base) -> Any:
    """A record of `row` that nothing tracks (for a front-end handing the desk a row it read)."""
    kind = RECORD_OF[type(row)]
    return kind(**{name: _copy(getattr(row, name)) for name in _FIELDS[kind]})


class _Tracked:
    __slots__ = ("names", "record", "row", "snapshot")

    def __init__(self, record: Any, row: models.Base) -> None:
        self.record = record
        self.row = row
        self.names = _FIELDS[type(record)]
        self.snapshot: list[Any] = []


class Records:
    """The records of one unit of work, each tied to its row."""

    def __init__(self) -> None:
        self._by_row: dict[int, _Tracked] = {}
        self._by_record: dict[int, _Tracked] = {}
        self._changeable: list[_Tracked] = []

    def record(self, value: Any) -> Any:
        """What a repository returned, with every row in it turned into its record."""
        if isinstance(value, models.Base):
            return self._record_for(value) if type(value) in RECORD_OF else value
        if isinstance(value, list):
            return [self.record(item) for item in value]
        if isinstance(value, tuple):
            return tuple(self.record(item) for item in value)
        return value

    def row(self, value: Any) -> Any:
        """An argument for a repository: a record of this unit becomes its row."""
        tracked = self._by_record.get(id(value))
        return value if tracked is None else tracked.row

    def write(self) -> None:
        """Write what the dialogs changed on their records to the rows."""
        for tracked in self._changeable:
            record, row, snapshot = tracked.record, tracked.row, tracked.snapshot
            for i, name in enumerate(tracked.names):
                now = getattr(record, name)
                if now != snapshot[i] or type(now) is not type(snapshot[i]):
                    copied = copy.deepcopy(now) if isinstance(now, dict | list) else now
                    setattr(row, name, copied)
                    snapshot[i] = copy.deepcopy(now) if isinstance(now, dict | list) else now

    def read(self, record: Any = None) -> None:
        """Read a record (or all) again from its row."""
        if record is None:
            for each in self._by_row.values():
                self._read(each)
        elif (tracked := self._by_record.get(id(record))) is not None:
            self._read(tracked)

    def changed_rows(self) -> list[models.Base]:
        """The rows of records the dialogs may change, those the ORM holds as modified."""
        return [t.row for t in self._changeable if instance_state(t.row).modified]

    def row_of(self, record: Any) -> models.Base | None:
        tracked = self._by_record.get(id(record))
        return tracked.row if tracked else None

    def _record_for(self, row: models.Base) -> Any:
        tracked = self._by_row.get(id(row))
        if tracked is not None:
            self._read(tracked)
            return tracked.record
        tracked = _Tracked(record_of(row), row)
        tracked.snapshot = [_copy(getattr(tracked.record, name)) for name in tracked.names]
        self._by_row[id(row)] = tracked
        self._by_record[id(tracked.record)] = tracked
        if type(tracked.record) in _CHANGED_BY_DIALOGS:
            self._changeable.append(tracked)
        return tracked.record

    @staticmethod
    def _read(tracked: _Tracked) -> None:
        record, row, snapshot = tracked.record, tracked.row, tracked.snapshot
        for i, name in enumerate(tracked.names):
            value = getattr(row, name)
            if isinstance(value, dict | list):
                snapshot[i] = copy.deepcopy(value)
                value = copy.deepcopy(value)
            else:
                snapshot[i] = value
            object.__setattr__(record, name, value)  # frozen records too: storage fills them


class _Plan:
    """How `RecordStores.save` writes a kind of row: its single-column attributes and one
    UPDATE by primary key per set of changed columns (built once each)."""

    def __init__(self, model: type[models.Base]) -> None:
        mapper = sa_inspect(model)
        self.table: Table = cast(Table, mapper.local_table)
        [self.pk] = mapper.primary_key
        self.columns: dict[str, Any] = {
            prop.key: prop.columns[0]
            for prop in mapper.column_attrs
            if len(prop.columns) == 1 and prop.columns[0].table is self.table
            and not prop.columns[0].primary_key
        }
        self.impl = {key: mapper.class_manager[key].impl for key in self.columns}
        self._updates: dict[frozenset[str], Any] = {}
        # What only the ORM's flush does for a row (a version counter, update events): such
        # a kind of row is left to it.
        dispatch = mapper.dispatch
        self.covered = mapper.version_id_col is None and not (
            dispatch.before_update or dispatch.after_update
        )

    def changes(self, state: InstanceState[Any]) -> dict[str, Any] | None:
        """The changed columns of a modified row and their values (as the ORM's flush would
        find them), or None when the flush must write it (a change this plan does not
        cover)."""
        if not self.covered:
            return None
        values: dict[str, Any] = {}
        for key, before in state.committed_state.items():
            impl = self.impl.get(key)
            now = state.dict.get(key, NO_VALUE)
            if impl is None or now is NO_VALUE:
                return None
            if before is NO_VALUE or not impl.is_equal(now, before):
                values[key] = now
        return values

    def update(self, keys: frozenset[str]) -> Any:
        stmt = self._updates.get(keys)
        if stmt is None:
            stmt = (
                update(self.table)
                .where(self.pk == bindparam("k_id"))
                .values({
                    self.columns[key]: bindparam(f"v_{key}", type_=self.columns[key].type)
                    for key in sorted(keys)
                })
            )
            self._updates[keys] = stmt
        return stmt


_PLANS: dict[type, _Plan] = {}


def _plan(model: type[models.Base]) -> _Plan:
    plan = _PLANS.get(model)
    if plan is None:
        plan = _PLANS[model] = _Plan(model)
    return plan


class _RecordsRepo:
    """A repository whose calls take and give records: changes are written before each call
    (a query must see them), rows are turned into records after it."""

    def __init__(self, repo: object, records: Records) -> None:
        self._repo = repo
        self._records = records

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._repo, name)
        if not inspect.iscoroutinefunction(attr):
            return attr
        call = self._wrap(attr)
        setattr(self, name, call)  # built once per repository and unit
        return call

    def _wrap(
        self, method: Callable[..., Coroutine[Any, Any, Any]]
    ) -> Callable[..., Coroutine[Any, Any, Any]]:
        records = self._records

        async def call(*args: Any, **kwargs: Any) -> Any:
            records.write()
            for arg in args:
                if type(arg) in _RECORD_TYPES:  # a record handed back: give its row
                    args = tuple(records.row(arg) for arg in args)
                    break
            if kwargs and any(type(value) in _RECORD_TYPES for value in kwargs.values()):
                kwargs = {key: records.row(value) for key, value in kwargs.items()}
            result = await method(*args, **kwargs)
            if isinstance(result, models.Base | list | tuple):
                result = records.record(result)
            return result

        return call


class RecordStores:
    """``dialogs.ports.Stores`` over the repositories of one session."""

    def __init__(self, repos: Repos) -> None:
        self.repos = repos
        self.records = Records()

        def wrap(repo: object) -> Any:
            return _RecordsRepo(repo, self.records)

        self.users = cast(UserStore, wrap(repos.users))
        self.conversations = cast(ConversationStore, wrap(repos.conversations))
        self.messages = cast(MessageStore, wrap(repos.messages))
        self.cases = cast(CaseStore, wrap(repos.cases))
        self.attachments = cast(AttachmentStore, wrap(repos.attachments))
        self.counsellors = cast(CounsellorStore, wrap(repos.counsellors))
        self.audit = cast(AuditStore, wrap(repos.audit))
        self.updates = cast(UpdateStore, wrap(repos.updates))
        self.inbox = cast(InboxStore, wrap(repos.inbox))
        self.outbox = cast(OutboxStore, wrap(repos.outbox))
        self.desk = cast(DeskStore, wrap(repos.desk))
        self.blocks = cast(BlockStore, wrap(repos.blocks))

    async def flush(self) -> None:
        self.records.write()
        await self.repos.session.flush()
        self.records.read()

    async def refresh(self, record: object) -> None:
        self.records.write()
        row = self.records.row_of(record)
        if row is None:
            raise ValueError(f"{type(record).__name__} is not a record of this unit")
        await self.repos.session.refresh(row)
        self.records.read(record)

    async def save(self) -> None:
        """Before the unit commits: the records' last changes go to their rows, and each row
        the dialogs changed (a turn's conversation, mostly) is written by one Core UPDATE of
        its changed columns instead of by the ORM's flush at commit, whose unit of work cost
        more than the rest of the turn's statements. The row is then clean, as after that
        flush. Left to the flush: new rows, deleted or expired ones, and a change to anything
        but a plain column."""
        self.records.write()
        session = self.repos.session
        for row in self.records.changed_rows():
            state = instance_state(row)
            if not state.persistent or state.expired:
                continue
            plan = _plan(type(row))
            values = plan.changes(state)
            if values is None:
                continue
            if values:
                params = {f"v_{key}": value for key, value in values.items()}
                assert state.identity is not None  # persistent
                params["k_id"] = state.identity[0]
                conn = await connection(session)
                result = await driver.execute(conn, plan.update(frozenset(values)), params)
                if result.rowcount != 1:  # as the ORM's flush would say
                    raise StaleDataError(
                        f"UPDATE statement on table '{plan.table.name}' expected to update "
                        f"1 row(s); {result.rowcount} were matched."
                    )
            # The ORM's own step after it writes a row (no public equivalent): committed
            # values are these, the row is no longer modified, the flush passes it by.
            state._commit_all(state.dict, session.sync_session.identity_map)


__all__ = ["RECORD_OF", "RecordStores", "Records", "record_of"]
