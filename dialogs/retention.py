"""Retention: every copy of what a child wrote or sent goes a set time after it stops being
needed; anonymous case rows and the bare audit trail (who, when, what) stay for reports.

* transcripts, evidence (rows and stored files) and case answers: `days` after the case closed;
  chatter and photos that never became part of a case: `days` after they were sent;
* conversations (their data holds typed links and captions): `days` after their last turn,
  unless the user has a case not yet closed;
* people (their platform address, which would name the account behind an anonymous case):
  `days` after they were last seen, once nothing else of theirs is kept;
* audit events: their free text (notes, reasons) after `days`, or when their case closed
  `days` ago;
* blocks (a reason, the keyed identity of the account): `days` after they ended;
* the inbound journal and the sent outbox (bodies hold names, platform ids, texts):
  `journal_days` and `outbox_days`, never longer than `days`; update ids (dedupe, no content)
  after `journal_days`.

`days=0` purges everything closed and everything outside a case.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path

from dialogs.clock import utcnow
from dialogs.ports import Stores, UnitOfWork

JOURNAL_DAYS = 7
OUTBOX_DAYS = 7


async def purge(
    db: UnitOfWork,
    *,
    days: int,
    journal_days: int = JOURNAL_DAYS,
    outbox_days: int = OUTBOX_DAYS,
) -> dict[str, int]:
    """Delete what is past its retention (see the module's docstring); returns the counts."""
    now = utcnow()
    cutoff = now - timedelta(days=days)
    async with db.unit() as repos:
        files = await repos.attachments.stale_files(cutoff)
        counts = await _purge_content(repos, cutoff)
        counts["update ids"] = await _purge_journal(repos, now, journal_days, days)
        sent_cutoff = now - timedelta(days=min(outbox_days, days))
        counts["sent messages"] = await repos.outbox.purge_done_before(sent_cutoff)
    await asyncio.to_thread(_unlink_all, files)
    return counts


async def _purge_content(repos: Stores, cutoff: datetime) -> dict[str, int]:
    """Transcripts, evidence, case answers, idle conversations, the people of whom nothing
    is left and audit free text past `cutoff`."""
    messages = await repos.messages.purge_closed_before(cutoff)
    messages += await repos.messages.purge_loose_before(cutoff)
    evidence = await repos.attachments.purge_closed_before(cutoff)
    evidence += await repos.attachments.purge_loose_before(cutoff)
    await repos.cases.strip_closed_before(cutoff)
    bare = await repos.audit.strip_detail_before(cutoff)
    idle = await repos.conversations.purge_idle_before(cutoff)
    people = await repos.users.purge_idle_before(cutoff)  # last: once nothing else is kept
    blocks = await repos.blocks.purge_ended_before(cutoff)
    return {
        "ended blocks": blocks,
        "messages": messages,
        "evidence": evidence,
        "conversations": idle,
        "people": people,
        "audit events without detail": bare,
    }


async def _purge_journal(repos: Stores, now: datetime, journal_days: int, days: int) -> int:
    """Update ids (no content) after `journal_days`; handled journal rows (their bodies hold
    the update) after `journal_days` or `days`, whichever is sooner."""
    removed = await repos.updates.purge_before(now - timedelta(days=journal_days))
    body_cutoff = now - timedelta(days=min(journal_days, days))
    return removed + await repos.inbox.purge_processed_before(body_cutoff)


def _unlink_all(paths: list[str]) -> None:
    for path in paths:
        Path(path).unlink(missing_ok=True)
