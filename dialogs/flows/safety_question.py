"""Safety question: free text answered from the knowledge base, with a way to a person."""

from __future__ import annotations

from typing import Any

from dialogs.flows.base import FlowModel, FlowSpec, Option, Step


class SafetyQuestionModel(FlowModel):
    async def found(self, event: Any) -> bool:
        """Guard: search the knowledge base; True (and the answer shown) if something fits."""
        return await self.ctx.services.answer_question(self.ctx, str(event.kwargs["text"]))

    def not_found(self, event: Any) -> None:
        self.ctx.say(self.ctx.t("question.none"))

    async def show_others(self, event: Any) -> None:
        await self.ctx.services.other_answers(self.ctx)
        self.ctx.prompted = True

    def on_helped(self, event: Any) -> None:
        self.ctx.data["feedback"] = "helped"
        self.ctx.say(self.ctx.t("question.helped.reply"))
        self.ctx.go("start", "menu")

    def on_not_helped(self, event: Any) -> None:
        self.ctx.data["feedback"] = "not_helped"
        self.ctx.say(self.ctx.t("question.not_helped.reply"))


AFTER_ANSWER = (
    Option("others", "question.others", trigger="others"),
    Option("helped", "question.helped", trigger="helped"),
    Option("not_helped", "question.not_helped", trigger="not_helped"),
    Option("person", "menu.person", trigger="person"),
)
NOT_FOUND = (
    Option("again", "question.again", trigger="again"),
    Option("person", "menu.person", trigger="person"),
)

FLOW = FlowSpec(
    name="safety_question",
    code="sq",
    initial="ask",
    model=SafetyQuestionModel,
    steps=(
        Step("ask", prompt="question.ask", free_text=True),
        # The answer itself is the prompt of "answered", sent by the guard that found it.
        Step("answered", options=AFTER_ANSWER, free_text=True),
        Step("not_found", options=NOT_FOUND, free_text=True),
    ),
    transitions=(
        {
            "trigger": "text",
            "source": ["ask", "answered", "not_found"],
            "dest": "answered",
            "conditions": "found",
        },
        {
            "trigger": "text",
            "source": ["ask", "answered", "not_found"],
            "dest": "not_found",
            "after": "not_found",
        },
        {"trigger": "others", "source": "answered", "dest": None, "after": "show_others"},
        {
            "trigger": "helped",
            "source": "answered",
            "dest": None,
            "after": "on_helped",
            "exit": "start.menu",
        },
        {
            "trigger": "not_helped",
            "source": "answered",
            "dest": "not_found",
            "after": "on_not_helped",
        },
        {"trigger": "again", "source": "not_found", "dest": "ask"},
        {
            "trigger": "person",
            "source": ["answered", "not_found"],
            "dest": None,
            "after": "to_person",
            "exit": "counselling",
        },
    ),
)
