"""The texts the simulated people recognise, from the bot's own catalogues (the start of each
template, up to its first placeholder)."""

from __future__ import annotations

from typing import Any

from . import ROOT


class Texts:
    def __init__(self) -> None:
        from dialogs.catalogue import Catalogue, default_catalogue

        cat = default_catalogue()
        desk = Catalogue(ROOT / "bot" / "telegram" / "desk_texts.yaml")

        def p(*keys: str, catalogue: Any = cat) -> tuple[str, ...]:
            out = []
            for key in keys:
                text = catalogue._texts[key]["ru"]  # the raw template
                out.append(text.split("{")[0])
            return tuple(out)

        self.role = p("role.ask")
        self.menu = p("menu.ask", "menu.ask.parent")
        self.what = p("report.what.ask")
        self.where = p("report.where.ask")
        self.ongoing = p("report.ongoing.ask")
        self.safe = p("report.safe.ask")
        self.evidence = p("report.evidence.ask")
        self.adult = p("report.adult.ask")
        self.offer = p("report.offer")
        self.ask_question = p("question.ask")
        self.answer = p("question.answer")
        self.answer_or_none = p("question.answer", "question.none")
        self.waiting = p("counselling.waiting", "counselling.waiting.again",
                         "counselling.still_waiting", "counselling.after_hours")
        self.connected = p("counselling.connected")
        self.closed = p("counselling.closed")
        self.rate_why = p("rate.why")
        self.rate_thanks = p("rate.thanks")
        self.danger = p("safety.open.self")
        self.flood = p("flood.wait")
        self.card = p("desk.card.head", catalogue=desk)
        self.picker = p("desk.close.pick", catalogue=desk)
        self.relay = p("desk.child", catalogue=desk)
        self.taken_you = desk._texts["desk.taken.you"]["ru"]

