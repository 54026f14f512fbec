"""The desk core's vocabulary: commands as data, the permission table, the result and the case
card every desk front-end renders, and desk times. The service itself is
`dialogs.escalation.Desk` (`Desk.execute(counsellor, command)`)."""

from dialogs.desk.commands import (
    Block,
    ChangeRisk,
    Close,
    DeskCommand,
    Note,
    Release,
    Reply,
    ReplyCanned,
    SetCategory,
    Take,
    Transfer,
    Unblock,
)
from dialogs.desk.results import CaseCard, CaseSummary, DeskError, DeskResult
from dialogs.desk.times import desk_datetime, desk_time

__all__ = [
    "Block",
    "CaseCard",
    "CaseSummary",
    "ChangeRisk",
    "Close",
    "DeskCommand",
    "DeskError",
    "DeskResult",
    "Note",
    "Release",
    "Reply",
    "ReplyCanned",
    "SetCategory",
    "Take",
    "Transfer",
    "Unblock",
    "desk_datetime",
    "desk_time",
]
