"""Read models and atomic claims the desks need (board, announcements, reports)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select, update

from dialogs.ports import ReportRow
from storage.models import (
    Case,
    Counsellor,
)
from storage.repos.base import OPEN_STATUSES, CaseStatus, _Repo

# A desk claim given back (its worker is gone) is made as old as a stale one, not cleared:
# every path that takes over a stale claim (a topic to make, a card, an alert to post or to
# pin) then takes it at once.
GIVEN_BACK = datetime(2000, 1, 1, tzinfo=UTC)

# The desk's claims on a case: (when taken, by which worker).
DESK_CLAIMS = (
    (Case.desk_topic_claimed_at, Case.desk_topic_claimed_by),
    (Case.desk_announcement_claimed_at, Case.desk_announcement_claimed_by),
)


def desk_claims_given_back(live: Any = None) -> list[Any]:
    """One statement per kind of desk claim, giving the cases' claims back (made stale:
    `GIVEN_BACK`). `live` (a query of worker ids): only the claims of workers not in it
    (`storage.advisory.Presence.release_dead`); None: all of them (`release_all_claims`)."""
    statements = []
    for claimed_at, claimed_by in DESK_CLAIMS:
        held = [] if live is None else [claimed_by.is_not(None), claimed_by.not_in(live)]
        statements.append(
            update(Case)
            .where(claimed_at > GIVEN_BACK, *held)
            .values({claimed_at: GIVEN_BACK, claimed_by: None})
        )
    return statements


def _topic_free(thread: int | None, stale_before: datetime) -> ColumnElement[bool]:
    """The case's topic is still `thread` and nobody holds a fresh claim on making it."""
    same = Case.desk_thread_id.is_(None) if thread is None else Case.desk_thread_id == thread
    free = Case.desk_topic_claimed_at.is_(None) | (Case.desk_topic_claimed_at <= stale_before)
    return same & free


class BoardRepo(_Repo):
    """Read-only views for the supervisors' board: who holds what, and the day's cases."""

    async def active(self) -> Sequence[Case]:
        stmt = (
            select(Case)
            .where(Case.status == CaseStatus.ACTIVE)
            .order_by(Case.owner_id, Case.risk_rank, Case.created_at, Case.id)
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def touched_since(self, moment: datetime) -> Sequence[Case]:
        """Cases opened, taken or closed since `moment`."""
        stmt = select(Case).where(
            (Case.created_at >= moment) | (Case.taken_at >= moment) | (Case.closed_at >= moment)
        )
        return (await self.session.execute(stmt.order_by(Case.id))).scalars().all()


class DeskRepo(_Repo):
    """Queries of the desk's operations: capacity, transfers, the minute sweep, wait estimates
    and reports."""

    async def held_count(self, counsellor_id: int) -> int:
        stmt = select(func.count(Case.id)).where(
            Case.status == CaseStatus.ACTIVE, Case.owner_id == counsellor_id
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def _lock_holder(self, counsellor_id: int) -> None:
        """Serialise one counsellor's takes (PostgreSQL): two concurrent UPDATEs of different
        cases would each count the cases held in their own snapshot and both pass the capacity
        check. In READ COMMITTED the next statement, once this lock is granted, sees what the
        other transaction committed. FOR NO KEY UPDATE: rows referencing the counsellor (audit,
        messages) are not blocked. SQLite writes one transaction at a time anyway."""
        if self.dialect == "postgresql":
            await self.session.execute(
                select(Counsellor.id)
                .where(Counsellor.id == counsellor_id)
                .with_for_update(key_share=True)
            )

    async def take_within(
        self, case_id: int, counsellor_id: int, capacity: int, now: datetime
    ) -> bool:
        """Atomically give a waiting case to a counsellor who holds fewer than `capacity`."""
        await self._lock_holder(counsellor_id)
        held = (
            select(func.count(Case.id))
            .where(Case.status == CaseStatus.ACTIVE, Case.owner_id == counsellor_id)
            .scalar_subquery()
        )
        result = await self.session.execute(
            update(Case)
            .where(Case.id == case_id, Case.status == CaseStatus.WAITING, held < capacity)
            .values(status=CaseStatus.ACTIVE, owner_id=counsellor_id, taken_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def assign(
        self,
        case_id: int,
        *,
        from_owner: int | None,
        to_owner: int,
        capacity: int,
        now: datetime,
    ) -> bool:
        """Move an open case from its current owner (None: the queue) to another counsellor,
        if nobody changed it meanwhile and the new owner has room."""
        await self._lock_holder(to_owner)
        held = (
            select(func.count(Case.id))
            .where(Case.status == CaseStatus.ACTIVE, Case.owner_id == to_owner)
            .scalar_subquery()
        )
        owner = Case.owner_id.is_(None) if from_owner is None else Case.owner_id == from_owner
        result = await self.session.execute(
            update(Case)
            .where(Case.id == case_id, Case.status.in_(OPEN_STATUSES), owner, held < capacity)
            .values(
                status=CaseStatus.ACTIVE,
                owner_id=to_owner,
                taken_at=func.coalesce(Case.taken_at, now),
                last_announced_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def open_cases(self, limit: int = 200) -> Sequence[Case]:
        """Every waiting and held case: highest risk first, then oldest."""
        stmt = (
            select(Case)
            .where(Case.status.in_(OPEN_STATUSES))
            .order_by(Case.risk_rank, Case.created_at, Case.id)
            .limit(limit)
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def recent_first_responses(self, since: datetime, limit: int = 50) -> list[float]:
        """Minutes from opening to the first counsellor reply, for the latest answered cases."""
        stmt = (
            select(Case.created_at, Case.first_response_at)
            .where(Case.first_response_at.is_not(None), Case.first_response_at >= since)
            .order_by(Case.first_response_at.desc())
            .limit(limit)
        )
        rows = (await self.session.execute(stmt)).all()
        return [
            max(0.0, (answered - created).total_seconds() / 60)
            for created, answered in rows
            if created is not None and answered is not None
        ]

    async def due_announcements(self, before: datetime) -> Sequence[Case]:
        """Cases nobody has answered since `before`: waiting ones, and held ones with no reply
        yet, whose last announcement (or start) is older than that."""
        waiting = (Case.status == CaseStatus.WAITING) & (
            func.coalesce(Case.last_announced_at, Case.created_at) <= before
        )
        silent = (
            (Case.status == CaseStatus.ACTIVE)
            & Case.first_response_at.is_(None)
            & (func.coalesce(Case.last_announced_at, Case.taken_at, Case.created_at) <= before)
        )
        stmt = select(Case).where(waiting | silent).order_by(Case.risk_rank, Case.created_at)
        return (await self.session.execute(stmt)).scalars().all()

    async def due_child_updates(self, before: datetime) -> Sequence[Case]:
        """Waiting cases whose child was last told their place (or joined) before `before`."""
        stmt = (
            select(Case)
            .where(
                Case.status == CaseStatus.WAITING,
                Case.user_id.is_not(None),
                func.coalesce(Case.child_updated_at, Case.created_at) <= before,
            )
            .order_by(Case.risk_rank, Case.created_at)
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def claim_announcement(self, case_id: int, now: datetime, before: datetime) -> bool:
        """Atomically mark a case announced at `now`, unless another worker just did."""
        result = await self.session.execute(
            update(Case)
            .where(
                Case.id == case_id,
                Case.last_announced_at.is_(None) | (Case.last_announced_at <= before),
            )
            .values(last_announced_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def claim_child_update(self, case_id: int, now: datetime, before: datetime) -> bool:
        result = await self.session.execute(
            update(Case)
            .where(
                Case.id == case_id,
                Case.child_updated_at.is_(None) | (Case.child_updated_at <= before),
            )
            .values(child_updated_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    # ------------------------------------------------------------------ the Telegram desk's state
    # Each claim is a compare-and-set on the case row: the claim's own timestamp is its token, so
    # only the worker that holds it can save the result, and a claim older than `stale_before`
    # (its worker died) can be taken over. See bot/telegram/desk.py for the whole scheme.

    async def _changed(self, case_id: int, where: ColumnElement[bool], **values: object) -> bool:
        result = await self.session.execute(
            update(Case)
            .where(Case.id == case_id, where)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def claim_topic(
        self,
        case_id: int,
        thread: int | None,
        now: datetime,
        stale_before: datetime,
        *,
        chat: int | None = None,
    ) -> bool:
        """Claim the making of a case's topic and its card, while its topic is still `thread`
        (None: it has none yet; a thread id: that topic was deleted) and nobody holds a fresh
        claim. `chat`: the staff group to make it in, stored with the claim unless the case
        already lives in another group (then nothing is claimed): a case is in one group, chosen
        once, whichever worker claims it."""
        free = _topic_free(thread, stale_before)
        if chat is None:
            return await self._changed(case_id, free, desk_topic_claimed_at=now,
                                       desk_topic_claimed_by=self.worker)
        placeable = Case.desk_chat_id.is_(None) | (Case.desk_chat_id == chat)
        return await self._changed(case_id, free & placeable, desk_topic_claimed_at=now,
                                   desk_topic_claimed_by=self.worker, desk_chat_id=chat)

    async def claim_card(
        self, case_id: int, thread: int, now: datetime, stale_before: datetime
    ) -> bool:
        """Claim posting the card of the topic `thread`, which has none (its maker died before
        posting it), under the same claim as the topic's."""
        free = _topic_free(thread, stale_before) & Case.desk_card_message_id.is_(None)
        return await self._changed(case_id, free, desk_topic_claimed_at=now,
                                   desk_topic_claimed_by=self.worker)

    async def save_topic(self, case_id: int, claim: datetime, thread: int) -> bool:
        """The topic made under `claim`; False if the claim was lost (taken over as stale)."""
        return await self._changed(
            case_id, Case.desk_topic_claimed_at == claim,
            desk_thread_id=thread, desk_card_message_id=None,
        )

    async def save_card(self, case_id: int, claim: datetime, message_id: int) -> bool:
        """The card posted under `claim`, which ends it."""
        return await self._changed(
            case_id, Case.desk_topic_claimed_at == claim,
            desk_card_message_id=message_id, desk_topic_claimed_at=None,
        )

    async def release_topic(self, case_id: int, claim: datetime) -> None:
        """Give a topic claim back (the Bot API call failed): the next try need not wait."""
        await self._changed(case_id, Case.desk_topic_claimed_at == claim,
                            desk_topic_claimed_at=None)

    async def replace_card(self, case_id: int, old: int | None, new: int) -> bool:
        """A card posted again (the old one could not be edited), unless another worker
        replaced it first."""
        same = Case.desk_card_message_id.is_(None) if old is None else (
            Case.desk_card_message_id == old)
        return await self._changed(case_id, same, desk_card_message_id=new)

    async def claim_critical_announcement(
        self, case_id: int, now: datetime, stale_before: datetime
    ) -> bool:
        """Claim announcing a waiting critical case in General: only if it has no announcement
        and nobody holds a fresh claim."""
        free = Case.desk_announcement_message_id.is_(None) & (
            Case.desk_announcement_claimed_at.is_(None)
            | (Case.desk_announcement_claimed_at <= stale_before)
        )
        due = (Case.status == CaseStatus.WAITING) & (Case.risk == "critical")
        return await self._changed(case_id, free & due, desk_announcement_claimed_at=now,
                                   desk_announcement_claimed_by=self.worker)

    async def save_announcement(self, case_id: int, claim: datetime, message_id: int) -> bool:
        """The announcement posted under `claim`; False if the claim was lost."""
        return await self._changed(
            case_id, Case.desk_announcement_claimed_at == claim,
            desk_announcement_message_id=message_id, desk_announcement_pinned_at=None,
        )

    async def release_all_claims(self) -> int:
        """Give back every case's topic, card and announcement claim: at the start of the only
        process (`bot.app.App.take_over`) each is a dead one's, which would otherwise hold the
        case's desk work (a danger case's topic and alert among it) until it went stale. Each
        is made stale (`GIVEN_BACK`), not cleared, so an alert posted and not yet pinned is
        pinned. Returns how many claims."""
        released = 0
        for statement in desk_claims_given_back():
            result = await self.session.execute(
                statement.execution_options(synchronize_session=False))
            released += int(getattr(result, "rowcount", 0) or 0)
        return released

    async def release_announcement(self, case_id: int, claim: datetime) -> None:
        await self._changed(case_id, Case.desk_announcement_claimed_at == claim,
                            desk_announcement_claimed_at=None)

    async def claim_pin(
        self, case_id: int, message_id: int, now: datetime, stale_before: datetime
    ) -> bool:
        """Claim pinning the announcement `message_id`, posted and never pinned by a worker
        whose claim is stale (it died in between)."""
        due = (
            (Case.desk_announcement_message_id == message_id)
            & Case.desk_announcement_pinned_at.is_(None)
            & (Case.desk_announcement_claimed_at <= stale_before)
        )
        return await self._changed(case_id, due, desk_announcement_claimed_at=now,
                                   desk_announcement_claimed_by=self.worker)

    async def mark_pinned(self, case_id: int, message_id: int, now: datetime) -> bool:
        """The announcement `message_id` is pinned (False: it is no longer the case's)."""
        return await self._changed(
            case_id, Case.desk_announcement_message_id == message_id,
            desk_announcement_pinned_at=now,
        )

    async def clear_announcement(self, case_id: int, message_id: int) -> bool:
        """Take the announcement `message_id` off the case, to unpin it: True for exactly one
        caller, so it is unpinned and marked taken once."""
        return await self._changed(
            case_id, Case.desk_announcement_message_id == message_id,
            desk_announcement_message_id=None, desk_announcement_claimed_at=None,
            desk_announcement_pinned_at=None,
        )

    async def open_cases_per_group(self) -> dict[int | None, int]:
        """Open cases (waiting or held) per staff group they live in, to place a new one in the
        emptiest. Counted: cases with a stored group (a topic there, or being made there), and
        under None those with a topic and no stored group (they live in the first group). Also
        shows the groups no longer configured that still hold open cases."""
        placed = Case.desk_chat_id.is_not(None) | Case.desk_thread_id.is_not(None)
        stmt = (
            select(Case.desk_chat_id, func.count(Case.id))
            .where(Case.status.in_(OPEN_STATUSES), placed)
            .group_by(Case.desk_chat_id)
        )
        return {chat: int(count) for chat, count in (await self.session.execute(stmt)).all()}

    async def desk_places(
        self, case_ids: Sequence[int]
    ) -> dict[int, tuple[int | None, int | None]]:
        """(staff group, topic) of each case, as stored: for a desk listing of several cases."""
        if not case_ids:
            return {}
        stmt = select(Case.id, Case.desk_chat_id, Case.desk_thread_id).where(
            Case.id.in_(case_ids))
        return {case_id: (chat, thread)
                for case_id, chat, thread in (await self.session.execute(stmt)).all()}

    async def created_between(self, start: datetime, end: datetime) -> Sequence[Case]:
        """Cases opened in [start, end): the rows a report counts."""
        stmt = select(Case).where(Case.created_at >= start, Case.created_at < end)
        return (await self.session.execute(stmt.order_by(Case.id))).scalars().all()

    async def report_rows(self, start: datetime, end: datetime) -> list[ReportRow]:
        """The plain facts of the cases opened in [start, end): no answers, no transcripts."""
        stmt = (
            select(
                Case.category,
                Case.channel,
                Case.risk,
                Case.status,
                Case.outcome,
                Case.rating,
                Case.created_at,
                Case.taken_at,
                Case.first_response_at,
            )
            .where(Case.created_at >= start, Case.created_at < end)
            .order_by(Case.id)
        )
        return [ReportRow(*row) for row in (await self.session.execute(stmt)).all()]

    async def supervisors(self) -> Sequence[Counsellor]:
        stmt = select(Counsellor).where(
            Counsellor.role == "supervisor", Counsellor.active.is_(True)
        )
        return (await self.session.execute(stmt.order_by(Counsellor.id))).scalars().all()
