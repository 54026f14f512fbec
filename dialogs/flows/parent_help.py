"""Parent help: a worried parent gets parent articles, can report on the child's behalf or ask
for a counsellor."""

from __future__ import annotations

from typing import Any

from dialogs.flows.base import FlowModel, FlowSpec, Option, Step

TOPICS: dict[str, tuple[str, ...]] = {
    "worried": ("parent-warning-signs", "parent-conversation"),
    "bullied": ("cyberbullying", "parent-conversation"),
    "settings": ("parental-controls", "account-security"),
}


class ParentHelpModel(FlowModel):
    async def show_articles(self, event: Any) -> None:
        self.store(event)
        self.ctx.say(self.ctx.t("parent.answer.intro"))
        await self.ctx.services.advice(self.ctx, list(TOPICS[str(event.kwargs["value"])]))

    def on_behalf(self, event: Any) -> None:
        self.ctx.data["on_behalf"] = True
        self.ctx.go("child_report")


FLOW = FlowSpec(
    name="parent_help",
    code="ph",
    initial="topic",
    model=ParentHelpModel,
    steps=(
        Step(
            "topic", prompt="parent.ask", options=tuple(Option(v, f"parent.{v}") for v in TOPICS)
        ),
        Step(
            "answer",
            prompt="report.offer",
            options=(
                Option("report", "parent.report", trigger="report"),
                Option("person", "menu.person", trigger="person"),
            ),
        ),
    ),
    transitions=(
        {"trigger": "answer", "source": "topic", "dest": "answer", "before": "show_articles"},
        {
            "trigger": "report",
            "source": "answer",
            "dest": None,
            "after": "on_behalf",
            "exit": "child_report",
        },
        {
            "trigger": "person",
            "source": "answer",
            "dest": None,
            "after": "to_person",
            "exit": "counselling",
        },
    ),
)
