"""The retention purge forgets a person (their platform address) once nothing else of theirs is
kept, and never before: not while a case of theirs is open or inside the retention period."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from dialogs.retention import purge
from storage.db import Database
from storage.models import Case, User, utcnow
from storage.repositories import Repos


async def _person(repos: Repos, n: int, *, seen_days_ago: int, case: str | None,
                  closed_days_ago: int = 0) -> tuple[int, int | None]:
    """A person last seen `seen_days_ago`, with no case, an open one, or one closed
    `closed_days_ago`: (user id, case id)."""
    user, _ = await repos.users.get_or_create("telegram", str(n), str(n), "ru")
    user.last_seen_at = utcnow() - timedelta(days=seen_days_ago)
    if case is None:
        return user.id, None
    opened = await repos.cases.open(user_id=user.id, channel="telegram", category="bullying",
                                    risk="medium", risk_rank=2, answers={}, signals={})
    if case == "closed":
        opened.status, opened.outcome = "closed", "advice-given"
        opened.closed_at = utcnow() - timedelta(days=closed_days_ago)
    return user.id, opened.id


async def test_people_go_only_when_nothing_of_theirs_is_kept(db: Database) -> None:
    async with db.session() as s:
        repos = Repos(s)
        idle, _ = await _person(repos, 1, seen_days_ago=40, case=None)
        waiting, _ = await _person(repos, 2, seen_days_ago=40, case="open")
        recent, _ = await _person(repos, 3, seen_days_ago=40, case="closed", closed_days_ago=10)
        old, old_case = await _person(repos, 4, seen_days_ago=40, case="closed",
                                      closed_days_ago=35)
        active, _ = await _person(repos, 5, seen_days_ago=1, case=None)
    counts = await purge(db, days=30)
    assert counts["people"] == 2
    async with db.session() as s:
        left = set((await s.execute(select(User.id))).scalars())
        case = await s.get(Case, old_case)
    assert left == {waiting, recent, active}
    assert idle not in left and old not in left
    assert case is not None and case.user_id is None, "the closed case stays, anonymous"
    assert (case.category, case.risk, case.outcome) == ("bullying", "medium", "advice-given")


async def test_a_block_goes_with_its_reason_once_it_ended_past_retention(db: Database) -> None:
    from storage.models import Block

    now = utcnow()

    async def block(n: int, *, until_days: int, lifted_days_ago: int | None = None) -> int:
        async with db.session() as s:
            row = await Repos(s).blocks.add(
                channel="telegram", external_id=f"h{n}", user_id=None, case_id=None,
                counsellor_id=1, reason=f"угрозы консультанту {n}",
                until=now + timedelta(days=until_days))
            if lifted_days_ago is not None:
                row.lifted_at = now - timedelta(days=lifted_days_ago)
            return row.id

    in_force = await block(1, until_days=10)
    ran_out_long_ago = await block(2, until_days=-40)
    ran_out_lately = await block(3, until_days=-5)
    lifted_long_ago = await block(4, until_days=30, lifted_days_ago=35)
    counts = await purge(db, days=30)
    assert counts["ended blocks"] == 2
    async with db.session() as s:
        kept = {b.id: b.reason for b in (await s.execute(select(Block))).scalars()}
    assert set(kept) == {in_force, ran_out_lately}
    assert ran_out_long_ago not in kept and lifted_long_ago not in kept
    assert kept[in_force] == "угрозы консультанту 1"
    # The block in force still blocks.
    async with db.session() as s:
        assert await Repos(s).blocks.active_for("telegram", "h1", now) is not None
