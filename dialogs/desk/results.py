"""What the desk answers: one result type, its errors, and the one projection of a case that
every front-end renders (the terminal, the Telegram staff group, the web console)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from dialogs.messages import Outbound


class DeskError(StrEnum):
    NOT_STAFF = "not_staff"
    NO_CASE = "no_case"
    TAKEN = "taken"
    NOT_YOURS = "not_yours"
    BAD_OUTCOME = "bad_outcome"
    BAD_RISK = "bad_risk"
    CLOSED = "closed"
    CHILD_GONE = "child_gone"
    AT_CAPACITY = "at_capacity"
    NO_COUNSELLOR = "no_counsellor"
    BAD_TRANSFER = "bad_transfer"
    SUPERVISOR_ONLY = "supervisor_only"
    NO_CANNED = "no_canned"
    BAD_BLOCK = "bad_block"
    NOT_BLOCKED = "not_blocked"
    BAD_CATEGORY = "bad_category"
    CHILD_LEFT = "child_left"
    # Closing as "abusive contact" is a block: use Block (supervisors), which really blocks.
    USE_BLOCK = "use_block"
    # Lowering a critical case needs a reason a colleague can follow (not "x" or "ok").
    WEAK_REASON = "weak_reason"
    # The child of this case is the victim of abuse: blocking needs an explicit confirmation.
    CONFIRM_BLOCK = "confirm_block"


@dataclass(frozen=True, slots=True)
class DeskResult:
    """What a desk action did: an error (nothing changed), or the messages it produced.
    `over_capacity`: a critical case was taken (or handed) beyond the holder's limit, as
    "held/limit"; the desk notice about it is among `outbound`."""

    ok: bool
    error: DeskError | None = None
    outbound: tuple[Outbound, ...] = ()
    case_id: int | None = None
    detail: str = ""
    over_capacity: str = ""


@dataclass(frozen=True, slots=True)
class CaseCard:
    """A case as every desk front-end lists and heads it: never the child's account."""

    id: int
    category: str
    risk: str
    status: str
    channel: str
    created_at: datetime
    owner: str | None
    waiting_minutes: int
    chi_group: str = ""
    outcome: str | None = None
    last_announced_at: datetime | None = None


# The name the front-ends have used so far.
CaseSummary = CaseCard


def fail(error: DeskError, case_id: int | None = None, detail: str = "") -> DeskResult:
    return DeskResult(ok=False, error=error, case_id=case_id, detail=detail)
