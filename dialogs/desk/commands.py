"""Desk commands as data: what a counsellor asks the desk to do, whichever front-end they use.

A front-end (terminal, Telegram staff group, web console) parses its input into one of these and
hands it to `Desk.execute(counsellor, command)`; the desk checks it against the one permission
table (`dialogs.desk.rules`) and answers with one `DeskResult`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from dialogs.messages import Attachment


@dataclass(frozen=True, slots=True)
class Take:
    """Take a waiting case (atomic: of two counsellors, one gets it)."""

    action: ClassVar[str] = "take"
    case_id: int


@dataclass(frozen=True, slots=True)
class Reply:
    """Words (and files) to the child, with no name or account attached."""

    action: ClassVar[str] = "reply"
    case_id: int
    text: str
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True, slots=True)
class ReplyCanned:
    """A reviewed canned reply, in the child's language."""

    action: ClassVar[str] = "reply"
    case_id: int
    key: str


@dataclass(frozen=True, slots=True)
class Note:
    """A private note on the case, never sent to the child."""

    action: ClassVar[str] = "note"
    case_id: int
    text: str


@dataclass(frozen=True, slots=True)
class ChangeRisk:
    """Raise or lower the risk; lowering needs a reason (a real one from critical)."""

    action: ClassVar[str] = "risk"
    case_id: int
    risk: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Transfer:
    """Hand the case to a named colleague, with a note for them."""

    action: ClassVar[str] = "transfer"
    case_id: int
    to: str
    note: str = ""


@dataclass(frozen=True, slots=True)
class Release:
    """Back to the queue, keeping its place, with a note for the next counsellor."""

    action: ClassVar[str] = "release"
    case_id: int
    note: str = ""


@dataclass(frozen=True, slots=True)
class Close:
    """Close with an outcome (never "abusive contact": that is `Block`)."""

    action: ClassVar[str] = "close"
    case_id: int
    outcome: str


@dataclass(frozen=True, slots=True)
class Block:
    """Block the user of a case for abuse of the line, until a moment; closes the case.
    On a case whose child is the victim of abuse it needs `confirmed`."""

    action: ClassVar[str] = "block"
    case_id: int
    reason: str
    until: datetime
    confirmed: bool = False


@dataclass(frozen=True, slots=True)
class Unblock:
    """Lift the block on the user of a case."""

    action: ClassVar[str] = "unblock"
    case_id: int


@dataclass(frozen=True, slots=True)
class SetCategory:
    """Correct the case's category (also after closing)."""

    action: ClassVar[str] = "category"
    case_id: int
    category: str


DeskCommand = (
    Take | Reply | ReplyCanned | Note | ChangeRisk | Transfer | Release | Close | Block
    | Unblock | SetCategory
)

__all__ = [
    "Block",
    "ChangeRisk",
    "Close",
    "DeskCommand",
    "Note",
    "Release",
    "Reply",
    "ReplyCanned",
    "SetCategory",
    "Take",
    "Transfer",
    "Unblock",
]
