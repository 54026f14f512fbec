"""The dialogs' stores hand out detached records, and save what the dialogs change on them.

`Database.unit()` is what the engine and the desk use: its reads give `dialogs.ports` dataclasses,
never ORM rows; a change to a record is seen by the unit's later queries and saved on commit; a
failed unit saves nothing.
"""

from __future__ import annotations

import dataclasses

import pytest

from dialogs.ports import (
    CaseRecord,
    CaseStatus,
    ConversationRecord,
    MessageRecord,
    UserRecord,
)
from storage import models
from storage.db import Database


async def _child_with_case(db: Database) -> tuple[int, int]:
    async with db.unit() as stores:
        user, _ = await stores.users.get_or_create("telegram", "42", "42", "ru")
        case = await stores.cases.open(
            user_id=user.id,
            channel="telegram",
            category="bullying",
            risk="high",
            risk_rank=1,
            answers={"what": "they laugh at me"},
            signals={},
        )
        return user.id, case.id


async def test_reads_give_dataclass_records_not_rows(db: Database) -> None:
    user_id, case_id = await _child_with_case(db)
    async with db.unit() as stores:
        case = await stores.cases.get(case_id)
        user = await stores.users.get(user_id)
        conv = await stores.conversations.create(user_id, "start", "menu")
        queue = await stores.cases.queue()
    assert isinstance(case, CaseRecord) and dataclasses.is_dataclass(case)
    assert isinstance(user, UserRecord) and isinstance(conv, ConversationRecord)
    assert all(isinstance(item, CaseRecord) for item in queue) and queue
    for record in (case, user, conv, *queue):
        assert not isinstance(record, models.Base)
    # Detached: reading it after the unit needs no database.
    assert case is not None and case.answers == {"what": "they laugh at me"}


async def test_one_record_per_row_within_a_unit(db: Database) -> None:
    user_id, case_id = await _child_with_case(db)
    async with db.unit() as stores:
        first = await stores.cases.get(case_id)
        again = await stores.cases.open_for_user(user_id)
        assert first is again


async def test_a_change_is_seen_by_later_queries_and_saved_on_commit(db: Database) -> None:
    user_id, case_id = await _child_with_case(db)
    async with db.unit() as stores:
        case = await stores.cases.get(case_id)
        assert case is not None
        case.status = CaseStatus.CLOSED
        case.outcome = "resolved"
        case.answers["later"] = "it stopped"  # changed in place
        # The unit's next query sees the closed case as closed.
        assert await stores.cases.open_for_user(user_id) is None
    async with db.session() as session:
        row = await session.get(models.Case, case_id)
        assert row is not None
        assert (row.status, row.outcome) == ("closed", "resolved")
        assert row.answers == {"what": "they laugh at me", "later": "it stopped"}


async def test_a_failed_unit_saves_nothing(db: Database) -> None:
    _, case_id = await _child_with_case(db)
    with pytest.raises(RuntimeError):
        async with db.unit() as stores:
            case = await stores.cases.get(case_id)
            assert case is not None
            case.risk, case.risk_rank = "critical", 0
            raise RuntimeError("the turn failed")
    async with db.unit() as stores:
        case = await stores.cases.get(case_id)
        assert case is not None and case.risk == "high"


async def test_flush_gives_a_new_record_its_id_and_refresh_reads_sql_updates(
    db: Database,
) -> None:
    user_id, case_id = await _child_with_case(db)
    async with db.unit() as stores:
        line = await stores.messages.add(user_id, "child", "hello", case_id=case_id)
        assert isinstance(line, MessageRecord)
        await stores.flush()
        assert line.id > 0 and line.created_at is not None
        case = await stores.cases.get(case_id)
        assert case is not None
        counsellor = await stores.counsellors.add("Anna", "telegram", "7", "counsellor")
        # An atomic take, made in SQL behind the record's back ...
        assert await stores.desk.take_within(case_id, counsellor.id, 3, line.created_at)
        await stores.refresh(case)
        # ... shows on the record after a refresh.
        assert case.status == CaseStatus.ACTIVE and case.owner_id == counsellor.id
        # A record handed back to a store is read as the case it is.
        assert await stores.cases.position(case) == 1

