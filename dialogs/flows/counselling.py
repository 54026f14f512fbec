"""Counselling: waiting in the queue, talking with a counsellor, then rating the help.

`taken`, `released` and `closed` are fired by the desk, not by the child. While the case waits or
is held, whatever the child writes goes to the counsellor, not to menus.
"""

from __future__ import annotations

from typing import Any

from dialogs.flows.base import FlowModel, FlowSpec, Option, Step

RATINGS = tuple(Option(str(n), f"rate.{n}") for n in range(1, 6))


class CounsellingModel(FlowModel):
    async def relay(self, event: Any) -> None:
        await self.ctx.services.relay_to_desk(self.ctx, str(event.kwargs.get("text") or ""))
        self.ctx.prompted = True

    async def relay_files(self, event: Any) -> None:
        await self.ctx.services.keep_evidence(self.ctx, event.kwargs["attachments"])
        self.ctx.prompted = True

    def remember_state(self, event: Any) -> None:
        self.ctx.data["before_end"] = event.transition.source

    def was_connected(self, event: Any) -> bool:
        return bool(self.ctx.data.get("before_end") == "connected")

    def on_stay(self, event: Any) -> None:
        self.ctx.data.pop("before_end", None)
        self.ctx.say(self.ctx.t("counselling.end.stay"))
        self.ctx.prompted = True

    async def relay_back(self, event: Any) -> None:
        self.ctx.data.pop("before_end", None)
        await self.relay(event)

    async def leave(self, event: Any) -> None:
        self.ctx.data.pop("before_end", None)
        await self.ctx.services.child_left(self.ctx)
        self.ctx.say(self.ctx.t("counselling.left"))
        self.ctx.go("start", "menu")

    def on_taken(self, event: Any) -> None:
        self.ctx.say(self.ctx.t("counselling.connected"))
        self.ctx.prompted = True

    def on_released(self, event: Any) -> None:
        self.ctx.say(self.ctx.t("counselling.released"))
        self.ctx.prompted = True

    def keep_rating(self, event: Any) -> None:
        self.ctx.data["rating"] = int(event.kwargs["value"])

    async def finish(self, event: Any) -> None:
        comment = event.kwargs.get("text")
        rating = self.ctx.data.pop("rating", None)
        await self.ctx.services.rate(self.ctx, rating, str(comment)[:1000] if comment else None)
        self.ctx.say(self.ctx.t("rate.thanks"))


FLOW = FlowSpec(
    name="counselling",
    code="cs",
    initial="waiting",
    model=CounsellingModel,
    steps=(
        Step(
            "waiting",
            free_text=True,
            attachments=True,
            options=(Option("end", "counselling.end", trigger="end"),),
        ),
        Step(
            "connected",
            free_text=True,
            attachments=True,
            options=(Option("end", "counselling.end", trigger="end"),),
        ),
        Step(
            "ending",
            prompt="counselling.end.ask",
            free_text=True,
            options=(
                Option("yes", "counselling.end.yes", trigger="confirm"),
                Option("no", "counselling.end.no", trigger="stay"),
            ),
            columns=2,
        ),
        Step("rating", prompt="counselling.closed", options=RATINGS, columns=5),
        Step(
            "comment",
            prompt="rate.why",
            free_text=True,
            options=(Option("skip", "rate.skip", trigger="skip"),),
        ),
        Step(
            "finished",
            options=(
                Option("menu", "menu.back", trigger="menu"),
                Option("person", "menu.person", trigger="person"),
            ),
        ),
    ),
    transitions=(
        {"trigger": "text", "source": ["waiting", "connected"], "dest": None, "after": "relay"},
        {
            "trigger": "evidence",
            "source": ["waiting", "connected"],
            "dest": None,
            "after": "relay_files",
        },
        {
            "trigger": "taken",
            "source": ["waiting", "connected", "ending"],
            "dest": "connected",
            "after": "on_taken",
        },
        {
            "trigger": "released",
            "source": ["waiting", "connected", "ending"],
            "dest": "waiting",
            "after": "on_released",
        },
        {"trigger": "closed", "source": ["waiting", "connected", "ending"], "dest": "rating"},
        # Ending a chat is one press away from losing the counsellor: it asks first.
        {
            "trigger": "end",
            "source": ["waiting", "connected"],
            "dest": "ending",
            "before": "remember_state",
        },
        {
            "trigger": "confirm",
            "source": "ending",
            "dest": None,
            "after": "leave",
            "exit": "start.menu",
        },
        {
            "trigger": "stay",
            "source": "ending",
            "dest": "connected",
            "conditions": "was_connected",
            "after": "on_stay",
        },
        {"trigger": "stay", "source": "ending", "dest": "waiting", "after": "on_stay"},
        {
            "trigger": "text",
            "source": "ending",
            "dest": "connected",
            "conditions": "was_connected",
            "after": "relay_back",
        },
        {"trigger": "text", "source": "ending", "dest": "waiting", "after": "relay_back"},
        {"trigger": "answer", "source": "rating", "dest": "comment", "after": "keep_rating"},
        {"trigger": "text", "source": "comment", "dest": "finished", "before": "finish"},
        {"trigger": "skip", "source": "comment", "dest": "finished", "before": "finish"},
        {
            "trigger": "menu",
            "source": "finished",
            "dest": None,
            "after": "to_menu",
            "exit": "start.menu",
        },
        {
            "trigger": "person",
            "source": "finished",
            "dest": None,
            "after": "to_person",
            "exit": "counselling",
        },
    ),
)
