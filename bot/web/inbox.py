"""A counsellor's inbox: the conversations they hold, each with the child's unread lines and
a preview of its newest line, and how many they hold against the limit ("you hold 2 of 3").

Unread means: lines the child wrote after the counsellor's read mark (`storage.repos.reads`).
Opening a case marks what the page shows as read; the page's script marks new lines as read
while the counsellor is looking at it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from bot.app import App
from bot.web.state import Texts
from storage.repos.reads import HeldCase, ReadRepo
from storage.repositories import Repos

PREVIEW_CHARS = 80


@dataclass(frozen=True, slots=True)
class Author:
    """Who may have written a line: a counsellor's name and role."""

    name: str
    role: str


@dataclass(frozen=True, slots=True)
class InboxItem:
    id: int
    status: str
    risk: str
    category: str
    channel: str
    created_at: datetime
    unread: int
    preview_who: str
    preview: str
    last_at: datetime | None


@dataclass(frozen=True, slots=True)
class Inbox:
    items: tuple[InboxItem, ...]
    held: int  # cases that count against the limit (the child has not left)
    capacity: int

    @property
    def over(self) -> bool:
        return self.held > self.capacity

    @property
    def full(self) -> bool:
        return self.held >= self.capacity

    @property
    def unread(self) -> int:
        return sum(i.unread for i in self.items)


def author_label(
    t: Texts, sender: str, counsellor_id: int | None, authors: Mapping[int, Author]
) -> str:
    """Who wrote a line, as a counsellor reads it: the child, the bot, a counsellor by name,
    a supervisor as such (never just "Counsellor" for a supervisor's words)."""
    author = authors.get(counsellor_id) if counsellor_id is not None else None
    if sender in ("counsellor", "note") and author is not None:
        key = "supervisor" if author.role == "supervisor" else "named"
        return t(f"sender.{sender}.{key}", name=author.name)
    key = f"sender.{sender}"
    return t(key) if t.has(key) else sender


def preview(text: str, limit: int = PREVIEW_CHARS) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def item_of(held: HeldCase, t: Texts, authors: Mapping[int, Author]) -> InboxItem:
    last = held.last
    return InboxItem(
        id=held.id,
        status=held.status,
        risk=held.risk,
        category=held.category,
        channel=held.channel,
        created_at=held.created_at,
        unread=held.unread,
        preview_who=author_label(t, last.sender, last.counsellor_id, authors) if last else "",
        preview=preview(last.text) if last else "",
        last_at=last.at if last else None,
    )


async def authors_of(app: App) -> dict[int, Author]:
    async with app.db.session() as s:
        return {c.id: Author(c.name, c.role) for c in await Repos(s).counsellors.all()}


async def read_inbox(app: App, counsellor_id: int, t: Texts) -> Inbox:
    """The counsellor's conversations, highest risk first."""
    authors = await authors_of(app)
    async with app.db.session() as s:
        held = await ReadRepo(s).held(counsellor_id)
    items = tuple(item_of(h, t, authors) for h in held)
    return Inbox(
        items=items,
        held=sum(1 for h in held if h.status == "active"),
        capacity=app.desk.config.capacity,
    )


async def mark_seen(app: App, counsellor_id: int, case_id: int, upto: int) -> int:
    async with app.db.session() as s:
        return await ReadRepo(s).mark_seen(counsellor_id, case_id, upto)
