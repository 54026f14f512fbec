"""Who may do what on a case: ONE table for every desk front-end.

A row reads: for this action, a caller of this role (counsellor, supervisor), who does or does
not hold the case, on a case in these statuses and of this risk, is allowed (`OK`) or refused
with this error. The first matching row decides; no row: refused as `NOT_YOURS`.

Rules a help line needs, and why:
- Take: anyone, while the case waits. Capacity never stops a critical take (`Desk`).
- Replying, releasing, closing: the holder, or a supervisor, while the case is held.
- Risk: raising is open to whoever may see the case (the holder, a supervisor, anyone while it
  waits): safety first, a higher risk only brings the case forward. Lowering is for the holder
  or a supervisor; lowering a critical case for a supervisor only (and with a real reason).
- Block (and unblock): supervisors only; it really blocks the user, with an expiry.
- Notes, category: whoever may see the case (the holder also after closing it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from dialogs.desk.commands import ChangeRisk, DeskCommand
from dialogs.desk.results import DeskError
from dialogs.ports import CaseFacts, CaseStatus, Staff
from dialogs.taxonomy import Risk

SUPERVISOR = "supervisor"
COUNSELLOR = "counsellor"
OK = None

WAITING = frozenset({CaseStatus.WAITING.value})
HELD = frozenset({CaseStatus.ACTIVE.value, CaseStatus.LEFT.value})
ACTIVE = frozenset({CaseStatus.ACTIVE.value})
CLOSED = frozenset({CaseStatus.CLOSED.value})


@dataclass(frozen=True, slots=True)
class Rule:
    """One row: None in a column matches anything."""

    action: str
    verdict: DeskError | None
    role: str | None = None
    holder: bool | None = None
    statuses: frozenset[str] | None = None
    critical: bool | None = None

    def matches(self, action: str, role: str, holder: bool, status: str, critical: bool) -> bool:
        return (
            self.action == action
            and self.role in (None, role)
            and self.holder in (None, holder)
            and (self.statuses is None or status in self.statuses)
            and self.critical in (None, critical)
        )


def _held_by_holder_or_supervisor(action: str) -> tuple[Rule, ...]:
    return (
        Rule(action, DeskError.CLOSED, statuses=CLOSED),
        Rule(action, OK, holder=True, statuses=HELD),
        Rule(action, OK, role=SUPERVISOR, statuses=HELD),
        Rule(action, DeskError.NOT_YOURS),
    )


def _seen(action: str) -> tuple[Rule, ...]:
    """Whoever may see the case: its holder (also closed), a supervisor, anyone while waiting."""
    return (
        Rule(action, OK, holder=True),
        Rule(action, OK, role=SUPERVISOR),
        Rule(action, OK, statuses=WAITING),
        Rule(action, DeskError.NOT_YOURS),
    )


TABLE: tuple[Rule, ...] = (
    Rule("take", DeskError.CLOSED, statuses=CLOSED),
    Rule("take", OK, statuses=WAITING),
    Rule("take", DeskError.TAKEN),
    *_held_by_holder_or_supervisor("reply"),
    *_held_by_holder_or_supervisor("release"),
    *_held_by_holder_or_supervisor("close"),
    Rule("transfer", DeskError.CLOSED, statuses=CLOSED),
    Rule("transfer", OK, role=SUPERVISOR),
    Rule("transfer", OK, holder=True, statuses=ACTIVE),
    Rule("transfer", DeskError.NOT_YOURS),
    Rule("risk.raise", DeskError.CLOSED, statuses=CLOSED),
    *_seen("risk.raise"),
    Rule("risk.lower", DeskError.CLOSED, statuses=CLOSED),
    Rule("risk.lower", DeskError.SUPERVISOR_ONLY, role=COUNSELLOR, critical=True),
    Rule("risk.lower", OK, holder=True),
    Rule("risk.lower", OK, role=SUPERVISOR),
    Rule("risk.lower", DeskError.NOT_YOURS),
    Rule("block", OK, role=SUPERVISOR),
    Rule("block", DeskError.SUPERVISOR_ONLY),
    Rule("unblock", OK, role=SUPERVISOR),
    Rule("unblock", DeskError.SUPERVISOR_ONLY),
    *_seen("note"),
    *_seen("category"),
    *_seen("view"),
)


def action_of(command: DeskCommand, case: CaseFacts) -> str:
    """The table's action for a command on this case (a risk change raises or lowers)."""
    if isinstance(command, ChangeRisk):
        lowering = command.risk in Risk._value2member_map_ and (
            Risk(command.risk).rank > case.risk_rank
        )
        return "risk.lower" if lowering else "risk.raise"
    return command.action


def verdict(
    action: str, counsellor: Staff, case: CaseFacts, table: Iterable[Rule] = TABLE
) -> DeskError | None:
    """None when the counsellor may do `action` on the case, else the refusal."""
    role = SUPERVISOR if counsellor.role == SUPERVISOR else COUNSELLOR
    holder = case.owner_id == counsellor.id
    critical = case.risk == Risk.CRITICAL.value
    for rule in table:
        if rule.matches(action, role, holder, case.status, critical):
            return rule.verdict
    return DeskError.NOT_YOURS


def permit(counsellor: Staff, command: DeskCommand, case: CaseFacts) -> DeskError | None:
    """The one permission check of every desk command."""
    return verdict(action_of(command, case), counsellor, case)


# A real reason for lowering a critical case: enough letters for a colleague to follow.
MIN_REASON_LETTERS = 10


def real_reason(text: str) -> bool:
    return sum(ch.isalpha() for ch in text) >= MIN_REASON_LETTERS


__all__ = ["MIN_REASON_LETTERS", "TABLE", "Rule", "action_of", "permit", "real_reason", "verdict"]
