"""Child report: "something happened to me online", step by step, then advice and a person."""

from __future__ import annotations

from typing import Any

from dialogs.flows.base import FlowModel, FlowSpec, Option, Step

# What the child picked -> the case category, its starting risk, and the knowledge-base topics
# whose articles are offered as advice.
WHAT: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "insults": ("cyberbullying", "medium", ("cyberbullying", "evidence")),
    "threats": ("threats", "high", ("threats", "evidence")),
    "excluded": ("exclusion", "low", ("exclusion",)),
    "fake_page": ("impersonation", "medium", ("impersonation",)),
    "photos_shared": ("intimate-images", "high", ("intimate-images",)),
    "stranger": ("grooming", "high", ("grooming",)),
    "demands": ("sextortion", "high", ("sextortion",)),
    "other": ("other", "medium", ("trusted-adults",)),
}

YES_NO = (Option("yes", "answer.yes"), Option("no", "answer.no"))
# Answers that mean danger whatever else the child says: the safety policy takes them.
DANGER_WHAT = {"stranger", "demands"}


def _category(data: dict[str, Any]) -> str:
    return WHAT.get(str(data.get("what")), WHAT["other"])[0]


class ChildReportModel(FlowModel):
    async def keep_evidence(self, event: Any) -> None:
        count = await self.ctx.services.keep_evidence(self.ctx, event.kwargs["attachments"])
        self.ctx.data["evidence_count"] = count
        self.ctx.say(self.ctx.t("report.evidence.got", count=count))
        self.ctx.prompted = True

    def keep_link(self, event: Any) -> None:
        notes = list(self.ctx.data.get("evidence_notes", []))
        notes.append(str(event.kwargs["text"])[:1000])
        self.ctx.data["evidence_notes"] = notes
        self.ctx.say(self.ctx.t("report.evidence.text"))
        self.ctx.prompted = True

    async def give_advice(self, event: Any) -> None:
        self.store(event)
        self.ctx.say(self.ctx.t("report.thanks"))
        topics = WHAT.get(str(self.ctx.data.get("what")), WHAT["other"])[2]
        await self.ctx.services.advice(self.ctx, list(topics))


FLOW = FlowSpec(
    name="child_report",
    code="cr",
    initial="what",
    model=ChildReportModel,
    danger_category=_category,
    steps=(
        Step(
            "what",
            prompt="report.what.ask",
            options=tuple(
                Option(
                    v,
                    f"report.what.{v}",
                    danger="flow-answer" if v in DANGER_WHAT else None,
                    category=WHAT[v][0] if v in DANGER_WHAT else None,
                )
                for v in WHAT
            ),
        ),
        Step(
            "where",
            prompt="report.where.ask",
            columns=2,
            options=tuple(
                Option(v, f"report.where.{v}")
                for v in ("vk", "telegram", "whatsapp", "tiktok", "youtube", "game", "other")
            ),
        ),
        Step(
            "ongoing",
            prompt="report.ongoing.ask",
            options=(*YES_NO, Option("unsure", "answer.unsure")),
            columns=3,
        ),
        Step(
            "safe_now",
            prompt="report.safe.ask",
            options=(Option("yes", "answer.yes"), Option("no", "answer.no", danger="not-safe")),
            columns=2,
        ),
        Step(
            "evidence",
            prompt="report.evidence.ask",
            free_text=True,
            attachments=True,
            options=(
                Option("done", "report.evidence.done"),
                Option("none", "report.evidence.none"),
            ),
        ),
        Step("adult", prompt="report.adult.ask", options=YES_NO, columns=2),
        Step(
            "advice",
            prompt="report.offer",
            options=(Option("person", "menu.person", trigger="person"),),
        ),
    ),
    transitions=(
        {"trigger": "answer", "source": "what", "dest": "where", "after": "store"},
        {"trigger": "answer", "source": "where", "dest": "ongoing", "after": "store"},
        {"trigger": "answer", "source": "ongoing", "dest": "safe_now", "after": "store"},
        {"trigger": "answer", "source": "safe_now", "dest": "evidence", "after": "store"},
        {"trigger": "evidence", "source": "evidence", "dest": None, "after": "keep_evidence"},
        {"trigger": "text", "source": "evidence", "dest": None, "after": "keep_link"},
        {"trigger": "answer", "source": "evidence", "dest": "adult", "after": "store"},
        {"trigger": "answer", "source": "adult", "dest": "advice", "before": "give_advice"},
        {
            "trigger": "person",
            "source": "advice",
            "dest": None,
            "after": "to_person",
            "exit": "counselling",
        },
    ),
)
