"""Start: who is writing (child or parent), then the main menu."""

from __future__ import annotations

from typing import Any

from dialogs.flows.base import FlowModel, FlowSpec, Option, Step


class StartModel(FlowModel):
    def set_role(self, event: Any) -> None:
        self.ctx.role = str(event.kwargs["value"])
        self.ctx.data["role"] = self.ctx.role

    def to_report(self, event: Any) -> None:
        self.ctx.go("child_report")

    def to_question(self, event: Any) -> None:
        self.ctx.go("safety_question")

    def to_parent(self, event: Any) -> None:
        self.ctx.go("parent_help")


FLOW = FlowSpec(
    name="start",
    code="st",
    initial="role",
    model=StartModel,
    steps=(
        Step(
            "role",
            prompt="role.ask",
            options=(Option("child", "role.child"), Option("parent", "role.parent")),
        ),
        Step(
            "menu",
            prompt="menu.ask",
            options=(
                Option("report", "menu.report", trigger="report", roles=("child",)),
                Option("question", "menu.question", trigger="question"),
                Option("parent", "menu.parent", trigger="parent", roles=("parent",)),
                Option("person", "menu.person", trigger="person"),
            ),
        ),
    ),
    transitions=(
        {"trigger": "answer", "source": "role", "dest": "menu", "after": "set_role"},
        {
            "trigger": "report",
            "source": "menu",
            "dest": None,
            "after": "to_report",
            "exit": "child_report",
        },
        {
            "trigger": "question",
            "source": "menu",
            "dest": None,
            "after": "to_question",
            "exit": "safety_question",
        },
        {
            "trigger": "parent",
            "source": "menu",
            "dest": None,
            "after": "to_parent",
            "exit": "parent_help",
        },
        {
            "trigger": "person",
            "source": "menu",
            "dest": None,
            "after": "to_person",
            "exit": "counselling",
        },
    ),
)
