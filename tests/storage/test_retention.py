"""The retention purge: old transcripts, journal and sent messages go; anonymous counts stay."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from dialogs.escalation import Desk
from dialogs.retention import purge
from storage.db import Database
from storage.models import Counsellor, utcnow
from storage.repositories import Repos
from tests.conftest import Chat


async def test_purge_removes_old_transcripts_and_keeps_counts(
    db: Database, chat_factory: Callable[..., Chat], desk: Desk, counsellor: Counsellor
) -> None:
    chat = chat_factory()
    await chat.start_as_child()
    await chat.press("человеком")
    await chat.say("меня травят")
    [case] = await desk.queue()
    await desk.take(counsellor, case.id)
    await desk.close(counsellor, case.id, "advice-given")
    long_ago = utcnow() - timedelta(days=40)
    async with db.session() as s:
        repos = Repos(s)
        row = await repos.cases.get(case.id)
        assert row is not None
        row.closed_at = long_ago
        for message in await repos.messages.for_case(case.id):
            message.created_at = long_ago
        for sent in await repos.outbox.pending("console"):
            sent.created_at = long_ago
            sent.delivered_at = long_ago
    counts = await purge(db, days=30)
    assert counts["messages"] >= 2 and counts["sent messages"] >= 1
    async with db.session() as s:
        repos = Repos(s)
        assert list(await repos.messages.for_case(case.id)) == []
        kept = await repos.cases.get(case.id)
        assert kept is not None and kept.category and kept.outcome == "advice-given"
        assert kept.answers == {}
