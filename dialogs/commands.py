"""Global commands and buttons, the same in every flow: /start, /menu, /help, /lang, /forget,
"talk to a person", the check-in's answers, "continue or start again" after a silence.

A button's payload is either global (``g|name=value``) or names the current flow's step and
option (``code|step|value``); anything else, or an option of another step, is refused kindly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from dialogs.flows.base import Option
from dialogs.flows.names import IN_CHAT, Flow, Start
from dialogs.messages import DeskEvent, Outbound
from dialogs.moves import FlowMoves, buttons
from dialogs.ports import CaseRecord
from dialogs.safety import Danger, Source
from dialogs.taxonomy import Risk
from dialogs.turn import Turn

ReportDanger = Callable[[Turn, Danger], Awaitable[None]]
Choose = Callable[[Turn, Option], Awaitable[None]]
Notice = Callable[[CaseRecord, DeskEvent, str], Outbound]


class GlobalCommands:
    def __init__(self, moves: FlowMoves, report: ReportDanger, choose: Choose,
                 notice: Notice, forget_texts: Callable[[], None]) -> None:
        self.moves, self.report, self.choose, self.notice = moves, report, choose, notice
        self.forget_texts = forget_texts

    # ---------------------------------------------------------------- typed commands
    async def command(self, turn: Turn, name: str) -> None:
        ctx, conv = turn.ctx, turn.conv
        if name in ("start", "menu"):
            if conv.flow == Flow.COUNSELLING and conv.state in IN_CHAT:
                ctx.say(ctx.t("counselling.busy"),
                        buttons(ctx, [("counselling.end", f"cs|{conv.state}|end")]))
                return
            first = name == "start" or not ctx.data.get("role")
            self.moves.enter(turn, Flow.START, Start.ROLE if first else Start.MENU)
        elif name == "help":
            ctx.say(ctx.t("help"))
            self.moves.prompt(turn, reprompt=True)
        elif name == "lang":
            ctx.say(ctx.t("lang.ask"),
                    buttons(ctx, [("lang.ru", "g|lang=ru"), ("lang.en", "g|lang=en")], 2))
        elif name == "forget":
            ctx.data["forget_pending"] = True
            ctx.say(ctx.t("forget.ask"),
                    buttons(ctx, [("forget.yes", "g|forget=yes"), ("forget.no", "g|forget=no")],
                            2))
        else:
            ctx.say(ctx.t("unknown.command"))
            self.moves.prompt(turn, reprompt=True)

    # ---------------------------------------------------------------- buttons
    async def payload(self, turn: Turn, payload: str) -> None:
        if payload.startswith("g|"):
            await self._global(turn, payload[2:])
            return
        found = self.moves.option_for_payload(turn, payload)
        if found is None:
            self.moves.stale(turn)
            return
        await self.choose(turn, found[1])

    async def _global(self, turn: Turn, action: str) -> None:
        ctx = turn.ctx
        name, _, value = action.partition("=")
        if name == "menu":
            self._to_menu(turn)
        elif name == "person":
            await ctx.services.escalate(ctx)
        elif name == "lang" and value in ("ru", "en"):
            turn.user.locale, turn.user.locale_fixed = value, True
            ctx.locale = value
            ctx.say(ctx.t("lang.set"))
            self.moves.prompt(turn, reprompt=True)
        elif name == "forget" and ctx.data.pop("forget_pending", False):
            await self._forget_answer(turn, value)
        elif name in ("more", "article") and self.moves.show_more(turn, value):
            self.moves.prompt(turn, reprompt=True)
        elif name == "checkin" and ctx.data.get("check_in_at"):
            await self.check_in_answer(turn, value)
        elif name == "silence" and ctx.data.pop("silence_pending", False):
            if value == "restart":
                self.moves.enter(turn, Flow.START, self._home(turn))
            else:
                self.moves.prompt(turn, reprompt=True)
        else:
            self.moves.stale(turn)

    def _home(self, turn: Turn) -> str:
        return Start.MENU if turn.ctx.data.get("role") else Start.ROLE

    def _to_menu(self, turn: Turn) -> None:
        conv = turn.conv
        if conv.flow == Flow.COUNSELLING and conv.state in IN_CHAT:
            turn.ctx.say(turn.ctx.t("counselling.busy"))
            self.moves.prompt(turn, reprompt=True)
            return
        self.moves.enter(turn, Flow.START, self._home(turn))

    async def check_in_answer(self, turn: Turn, value: str) -> None:
        """The answer to "are you safe right now?": safe goes back where the child was; not
        safe, or asking for a person, takes the danger path."""
        ctx = turn.ctx
        category = str(ctx.data.pop("check_in_category", "") or "other")
        about = str(ctx.data.pop("check_in_about", "self"))
        if value == "safe":
            ctx.say(ctx.t("check_in.thanks"))
            self.moves.prompt(turn, reprompt=True)
            return
        if value not in ("unsafe", "person"):
            self.moves.stale(turn)
            return
        if category in ("other", "", "wellbeing"):
            category = "suicide" if value == "unsafe" else "wellbeing"
        risk = Risk.CRITICAL if value == "unsafe" else Risk.HIGH
        await self.report(
            turn, Danger(source=Source.CHECK_IN, category=category, risk=risk, about=about)
        )

    # ---------------------------------------------------------------- /forget
    async def _forget_answer(self, turn: Turn, value: str) -> None:
        if value == "yes":
            await self.forget(turn)
        else:
            turn.ctx.say(turn.ctx.t("forget.kept"))
            self.moves.prompt(turn, reprompt=True)

    async def forget(self, turn: Turn) -> None:
        """Erase everything the user told us (every table, every copy: `UserStore.erase`) and
        the evidence files. An open case is closed as "the child erased their data" and its
        counsellor told at once; every desk copy of their words goes (each case with a staff
        topic is told, and the topic deleted); the trail says that an erasure happened, and
        nothing else."""
        case = await turn.repos.cases.open_for_user(turn.user.id)
        for told in await turn.repos.cases.for_user(turn.user.id):
            if told.desk_thread_id is not None or (case is not None and told.id == case.id):
                turn.extra.append(self.notice(told, DeskEvent.CHILD_LEFT, "/forget"))
        await turn.repos.audit.record(
            "child_erased", counsellor_id=None, case_id=case.id if case else None, detail=""
        )
        files = await turn.repos.users.erase(turn.user.id)
        await asyncio.to_thread(_unlink_all, files)
        self.forget_texts()
        turn.ctx.say(turn.ctx.t("forget.done"))


def _unlink_all(paths: list[str]) -> None:
    """Delete erased evidence files (a missing one is already gone)."""
    for path in paths:
        Path(path).unlink(missing_ok=True)
