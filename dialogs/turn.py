"""One update's handling: the records it works on and what it has found and said so far.

A `Turn` is what every stage of the pipeline (`dialogs.stages`) reads and writes: the stores
of the unit of work, the user and their conversation, the flow's `TurnContext` (what is said),
triage's verdict on the text and the desk notices the turn produced.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dialogs.flows.base import TurnContext
from dialogs.messages import Inbound, Outbound
from dialogs.ports import (
    AssessmentLike,
    CaseRecord,
    ConversationRecord,
    MessageRecord,
    Stores,
    UserRecord,
)


@dataclass
class Turn:
    """Mutable state of one update's handling."""

    repos: Stores
    user: UserRecord
    conv: ConversationRecord
    ctx: TurnContext
    inbound: Inbound | None = None
    assessment: AssessmentLike | None = None
    text: str = ""  # the inbound text as stored (the whole of it is triaged)
    case_for_chat: CaseRecord | None = None  # the case the safety policy opened or raised
    message: MessageRecord | None = None  # the transcript line of this update's text
    extra: list[Outbound] = field(default_factory=list)  # desk notices
    danger: bool = False  # the safety policy acted on danger in this turn

    async def acted_on(self) -> None:
        """Mark the texts so far as acted on: triage's context starts after them."""
        if self.message is not None:
            await self.repos.flush()
            self.ctx.data["triage_acted_on"] = int(self.message.id)

    def notice_once(self) -> bool:
        """The privacy notice, on first contact; True if it was shown now."""
        if self.user.notice_shown:
            return False
        self.user.notice_shown = True
        self.ctx.say(self.ctx.t("privacy.notice"))
        return True
