"""The conversation's own machine: which flow a conversation is in, and the moves between flows.

Each flow (`dialogs.flows`) is a state machine of its steps. Above them, this machine has one
state per flow and declares every move from one flow to another; nothing else writes a
conversation's flow:

- ``enter_<flow>``: a flow hands over to another (its transition's ``exit``), a command or a
  button goes to the menu, a long silence restarts. Answers are dropped on a change of flow,
  except what belongs to the conversation (`PERSISTENT_KEYS`).
- ``hand_over``: to a person (the counsellor queue, or the chat when the case is held). After
  the chat the child is asked to rate it and then finds the menu: a form left for a person is
  not resumed (a closed case is over; "continue where we stopped" would reopen an old form).
- ``closed_away``: the case was closed while the child was elsewhere: the rating is asked.
- ``blocked``: blocked for abuse: out of the chat, the menu when the block ends.

The desk reaches a conversation only through the engine's `desk_trigger` port, which fires
these moves (or the counselling flow's own ``taken`` / ``released`` / ``closed``).
"""

from __future__ import annotations

from typing import Any

from transitions import Machine

from dialogs.flows import FLOWS
from dialogs.flows.names import Chat, Flow, Start
from dialogs.ports import CaseStatus, ConversationRecord

# Keys of conversation data that survive a change of flow (the check-in's half hour and what
# triage already acted on belong to the conversation, not to one flow).
PERSISTENT_KEYS = frozenset({"role", "triage_category", "check_in_at", "triage_acted_on"})


def _moves() -> list[dict[str, Any]]:
    enter = [
        {"trigger": f"enter_{flow}", "source": "*", "dest": str(flow), "after": "arrive"}
        for flow in Flow
        if flow is not Flow.COUNSELLING
    ]
    return [
        *enter,
        {"trigger": "hand_over", "source": "*", "dest": str(Flow.COUNSELLING),
         "after": "queued"},
        {"trigger": "closed_away", "source": "*", "dest": str(Flow.COUNSELLING),
         "after": "to_rating"},
        {"trigger": "blocked", "source": str(Flow.COUNSELLING), "dest": str(Flow.START),
         "after": "out_of_chat"},
    ]


MOVES: tuple[dict[str, Any], ...] = tuple(_moves())


class ConversationModel:
    """Drives one conversation record through `MOVES` for the length of one move. Its state
    is the record's flow; the callbacks set the step within the flow and the answers kept."""

    def __init__(self, conv: ConversationRecord, data: dict[str, Any]) -> None:
        self.conv = conv
        self.data = data  # the turn's answers (the TurnContext's data), changed in place

    @property
    def flow(self) -> str:
        return str(self.conv.flow)

    @flow.setter
    def flow(self, value: str) -> None:
        self.conv.flow = value

    # ---------------------------------------------------------------- enter_<flow>
    def arrive(self, event: Any) -> None:
        source, dest = event.transition.source, event.transition.dest
        state = event.kwargs.get("state")
        if source != dest and dest != Flow.COUNSELLING and not event.kwargs.get("keep_data"):
            on_behalf = self.data.get("on_behalf") and dest == Flow.CHILD_REPORT
            kept = {k: v for k, v in self.data.items() if k in PERSISTENT_KEYS}
            self.data.clear()
            self.data.update(kept)
            if on_behalf:
                self.data["on_behalf"] = True
        if dest == Flow.START and state in (None, Start.ROLE):
            self.data.pop("role", None)
        self.conv.state = state or FLOWS[dest].initial

    # ---------------------------------------------------------------- hand_over
    def queued(self, event: Any) -> None:
        case = event.kwargs["case"]
        self.conv.state = Chat.CONNECTED if case.status == CaseStatus.ACTIVE else Chat.WAITING
        self.conv.case_id = case.id

    # ---------------------------------------------------------------- closed_away, blocked
    def to_rating(self, event: Any) -> None:
        self.conv.state = Chat.RATING
        self.conv.case_id = event.kwargs["case"].id

    def out_of_chat(self, event: Any) -> None:
        conv = self.conv
        conv.state, conv.case_id = Start.MENU, None
        conv.resume_flow = conv.resume_state = None


def build_conversation_machine() -> Machine:
    return Machine(
        model=None,
        states=[str(flow) for flow in Flow],
        transitions=list(MOVES),
        initial=str(Flow.START),
        auto_transitions=False,
        send_event=True,
        model_attribute="flow",
    )


class Conversation:
    """The moves between flows, fired on a conversation record (one shared machine)."""

    def __init__(self) -> None:
        self.machine = build_conversation_machine()

    def move(self, conv: ConversationRecord, data: dict[str, Any], trigger: str,
             **kwargs: Any) -> None:
        """Fire a move; a move not declared from the conversation's flow is a bug (raises)."""
        model = ConversationModel(conv, data)
        self.machine.add_model(model, initial=str(conv.flow))
        try:
            if not model.trigger(trigger, **kwargs):  # type: ignore[attr-defined]
                raise RuntimeError(f"move {trigger} refused from {conv.flow}")
        finally:
            self.machine.remove_model(model)

    def enter(self, conv: ConversationRecord, data: dict[str, Any], flow: str,
              state: str | None = None, *, keep_data: bool = False) -> None:
        self.move(conv, data, f"enter_{flow}", state=state, keep_data=keep_data)


__all__ = ["MOVES", "PERSISTENT_KEYS", "Conversation"]
