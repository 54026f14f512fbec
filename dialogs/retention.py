"""Retention: transcripts and evidence are deleted a set time after their case closes."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from dialogs.clock import utcnow
from dialogs.ports import UnitOfWork


async def purge(db: UnitOfWork, *, days: int) -> dict[str, int]:
    """Delete transcripts and evidence of cases closed more than `days` ago, and chatter that
    never became a case; keep the anonymous case rows for reports."""
    cutoff = utcnow() - timedelta(days=days)
    async with db.unit() as repos:
        files = await repos.attachments.stale_files(cutoff)
        removed_messages = await repos.messages.purge_closed_before(cutoff)
        removed_messages += await repos.messages.purge_loose_before(cutoff)
        removed_files = await repos.attachments.purge_closed_before(cutoff)
        removed_updates = await repos.updates.purge_before(utcnow() - timedelta(days=7))
        removed_updates += await repos.inbox.purge_processed_before(utcnow() - timedelta(days=7))
        removed_outbox = await repos.outbox.purge_done_before(utcnow() - timedelta(days=7))
        await repos.cases.strip_closed_before(cutoff)
    await asyncio.to_thread(_unlink_all, files)
    return {
        "messages": removed_messages,
        "evidence": removed_files,
        "update ids": removed_updates,
        "sent messages": removed_outbox,
    }


def _unlink_all(paths: list[str]) -> None:
    for path in paths:
        Path(path).unlink(missing_ok=True)
