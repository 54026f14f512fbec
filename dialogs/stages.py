"""The stages of one update, in order. Each has one job and is built from only what it needs,
so each can be tried alone; the first stage that uses the update up ends it.

Before the turn (`DialogEngine.handle`): the flood limit (`Flood`: no lock, no database; danger
always gets through; with a journal it is taken at intake, `DialogEngine.admit`), then, in the
turn's transaction, the journal claim (`Repeat`: a repeated update is used up silently).

The turn: block → unsupported content → triage (read) → danger (to the safety policy) → first
contact → check-in → commands → buttons → attachments → long silence → the flow's machine.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Protocol

from dialogs.catalogue import Catalogue, normalise_locale
from dialogs.flows.base import Option
from dialogs.flows.names import Flow, Start
from dialogs.messages import COMMAND, Address, ContentKind, Inbound, Outbound
from dialogs.moves import FlowMoves, buttons
from dialogs.operations import DeskPolicy
from dialogs.ports import InboxStore, Triage
from dialogs.ratelimit import RateLimiter
from dialogs.safety import Danger, SafetyPolicy, Source, Where
from dialogs.turn import Turn

SUPPORTED = frozenset({ContentKind.TEXT, ContentKind.PHOTO, ContentKind.DOCUMENT})
# Flows a long silence interrupts; the menu and a chat with a person are never interrupted.
RESUMABLE_FLOWS = frozenset({Flow.CHILD_REPORT, Flow.SAFETY_QUESTION, Flow.PARENT_HELP})
# Triage's conversation context: this many earlier texts, written within this window.
CONTEXT_MESSAGES = 2
CONTEXT_WINDOW = timedelta(minutes=30)

Clock = Callable[[], datetime]
ReportDanger = Callable[[Turn, Danger], Awaitable[None]]


class Stage(Protocol):
    async def __call__(self, turn: Turn, inbound: Inbound) -> bool:
        """Do this stage's job; True when the update is used up (the turn ends)."""
        ...


# The flood's verdict on an update it refused whose text was only glanced at (a long one):
# journalled, read in full later, behind the other children's work (`DialogEngine.handle`),
# and handled only if that read finds danger.
READ = "read"


def _bucket(inbound: Inbound) -> str:
    """The flood limit's key for the user who sent `inbound`."""
    return f"{inbound.channel}:{inbound.user_id}"


class Flood:
    """One user's updates beyond the flood limit: one calm word per flood, then quiet. Danger
    (`urgent`: the words, or a button that means danger) always gets through and is not
    counted: the danger lane may handle it before the flooder's older messages, and were it
    the first refused, the flood's one "slow down" would be spent on it and never said.

    The limit is taken once per update, at intake when there is a journal (`admit`: what is
    refused beyond the one "slow down" is never journalled, so a flood costs no database work
    at all, and the others' turns do not queue behind it), else when the update is handled
    (`__call__`, which keeps a verdict taken at intake instead of counting the update twice).
    An update the platform offers again (the journal write failed, it comes back) gets the
    verdict it had: a child's message is not refused for the platform's retries.

    Reading a long text whole takes far longer than taking it in (about 1 ms per 100
    characters): a flood of long messages read whole at intake held every other child's
    update up behind it. So intake only glances (`glance`: the whole text when it is short,
    else its beginning). Danger seen gets through; a long text refused with no danger seen
    in its beginning is not dropped but stamped `READ`: journalled (a restart does not lose
    it), read whole later, when the other children's work lets it, and handled only if that
    read finds danger. The first refused of a flood (its one "slow down") is read whole at
    once: the word is not spent on a message that needs a person. One user has at most
    `UNREAD_MAX` such texts waiting (`read`: one was read): beyond, each is read whole at
    intake again, so that one flood cannot fill the process's backlog."""

    REMEMBERED = 10_000  # recent updates' verdicts, by platform id
    # A quarter of the mailbox's default backlog (2,000 updates), which texts waiting to be
    # read count towards: a flood of 500 long texts is read later, whole.
    UNREAD_MAX = 500

    def __init__(self, limiter: RateLimiter, urgent: Callable[[Inbound], bool],
                 catalogue: Catalogue, default_locale: str,
                 glance: Callable[[Inbound], bool | None] | None = None) -> None:
        self.limiter, self.urgent = limiter, urgent
        # True: danger seen; False: none, and the glance was a whole read; None: none seen
        # in what was read of a long text.
        self.glance: Callable[[Inbound], bool | None] = glance or urgent
        self.catalogue, self.default_locale = catalogue, default_locale
        self._verdicts: OrderedDict[tuple[str, str], str] = OrderedDict()
        # READ texts waiting, by user (another worker may read some: bounded all the same).
        self._unread: OrderedDict[str, int] = OrderedDict()

    def read(self, inbound: Inbound) -> None:
        """A text stamped `READ` was read (or is no longer waiting)."""
        bucket = _bucket(inbound)
        left = self._unread.get(bucket, 0) - 1
        if left > 0:
            self._unread[bucket] = left
        else:
            self._unread.pop(bucket, None)

    def verdict(self, inbound: Inbound) -> str:
        """"ok", "warn" (the first refused of a flood), "drop", or `READ` (refused, only glanced
        at: to be read whole before it is let go)."""
        if inbound.flood in ("ok", "warn", READ):
            return inbound.flood  # taken at intake
        seen = self.glance(inbound)
        if seen:
            return "ok"
        key = None if inbound.update_id is None else (str(inbound.channel), inbound.update_id)
        verdict = self._verdicts.get(key) if key is not None else None
        if verdict is not None:
            return verdict
        bucket = _bucket(inbound)
        verdict = self.limiter.check(bucket)
        if seen is None and verdict == "warn" and self.urgent(inbound):
            self.limiter.unwarn(bucket)  # the one "slow down" is still the flood's to say
            verdict = "ok"
        elif seen is None and verdict == "drop":
            # Read later only from a journal (not the console's updates, which have no id).
            if key is None or self._unread.get(bucket, 0) >= self.UNREAD_MAX:
                verdict = "ok" if self.urgent(inbound) else "drop"
            else:
                self._unread[bucket] = self._unread.get(bucket, 0) + 1
                while len(self._unread) > self.REMEMBERED:
                    self._unread.popitem(last=False)
                verdict = READ
        if key is not None:
            self._verdicts[key] = verdict
            while len(self._verdicts) > self.REMEMBERED:
                self._verdicts.popitem(last=False)
        return verdict

    def admit(self, inbound: Inbound) -> Inbound | None:
        """At intake: the update carrying its verdict, or None when it is refused beyond the
        flood's one "slow down" (not journalled, never handled)."""
        verdict = self.verdict(inbound)
        if verdict == "drop":
            return None
        return inbound if inbound.flood == verdict else replace(inbound, flood=verdict)

    def __call__(self, inbound: Inbound) -> list[Outbound] | None:
        """Before the user's lock and the database: the replies when the update is used up,
        None when it goes on. An update stamped `READ` is read whole here."""
        verdict = self.verdict(inbound)
        if verdict == READ:
            verdict = "ok" if self.urgent(inbound) else "drop"
        if verdict == "ok":
            return None
        if verdict == "drop":
            return []
        locale = normalise_locale(inbound.locale_hint, self.default_locale)
        address = Address(str(inbound.channel), inbound.chat_id)
        return [Outbound(to=address, text=self.catalogue.t("flood.wait", locale))]


class Repeat:
    """The journal's claim, first in the turn's transaction: an update the platform sent again
    (or another worker handles) is used up with no reply. Taking it closes its journal entry,
    so the claim commits or rolls back with the turn."""

    async def __call__(self, inbox: InboxStore, inbound: Inbound) -> bool:
        if inbound.update_id is None:
            return False  # nothing to dedupe by (the console)
        return not await inbox.take(str(inbound.channel), inbound.update_id)


class Blocked:
    """A blocked user: one neutral reply per block; danger (or a critical case) gets through."""

    def __init__(self, policy: DeskPolicy, is_danger: Callable[[Inbound], bool],
                 clock: Clock) -> None:
        self.policy, self.is_danger, self.clock = policy, is_danger, clock

    async def __call__(self, turn: Turn, inbound: Inbound) -> bool:
        return await self.policy.screen(
            turn.repos, turn.user, turn.ctx, inbound, self.is_danger, self.clock()
        )


class Unsupported:
    """A sticker, a voice note, ...: a kind word and the question again (not on first contact:
    the privacy notice and the first question come first)."""

    def __init__(self, moves: FlowMoves) -> None:
        self.moves = moves

    async def __call__(self, turn: Turn, inbound: Inbound) -> bool:
        if inbound.kind in SUPPORTED or not turn.user.notice_shown:
            return False
        turn.ctx.say(turn.ctx.t("unsupported.content"))
        self.moves.prompt(turn, reprompt=True)
        return True


class Triaged:
    """Triage reads the whole text (with the conversation's recent texts) before anything
    else; the transcript keeps what fits, and the child is told what was cut."""

    def __init__(self, triage: Triage, max_text: int, clock: Clock) -> None:
        self.triage, self.max_text, self.clock = triage, max_text, clock

    async def __call__(self, turn: Turn, inbound: Inbound) -> bool:
        full = (inbound.text or "").strip()
        if not full:
            return False
        text = full[: self.max_text]
        if len(full) > self.max_text:
            turn.ctx.say(turn.ctx.t("too.long", limit=self.max_text))
        turn.text = text
        now = self.clock()
        # What was already acted on (danger, a check-in) is not counted again.
        acted = int(turn.ctx.data.get("triage_acted_on") or 0)
        recent = await turn.repos.messages.recent_child_texts(
            turn.user.id, now - CONTEXT_WINDOW, CONTEXT_MESSAGES, after_id=acted
        )
        turn.assessment = verdict = self.triage(full, turn.ctx.locale, recent)
        case = await turn.repos.cases.open_for_user(turn.user.id)
        turn.message = await turn.repos.messages.add(
            turn.user.id, "child", text, case_id=case.id if case else None, created_at=now
        )
        if not verdict.danger and verdict.category not in ("other", ""):
            turn.ctx.data.setdefault("triage_category", verdict.category)
        return False


class DangerFound:
    """Triage found danger: the safety policy takes it, told how it came (typed, an edit, a
    photo's caption, from a blocked user)."""

    def __init__(self, report: ReportDanger, clock: Clock) -> None:
        self.report, self.clock = report, clock

    async def __call__(self, turn: Turn, inbound: Inbound) -> bool:
        verdict = turn.assessment
        if verdict is None or not verdict.danger:
            return False
        turn.notice_once()
        source = Source.TYPED
        if inbound.edited:
            source = Source.EDITED
        elif inbound.attachments:
            source = Source.CAPTION
        user = turn.user
        if await turn.repos.blocks.active_for(user.channel, user.external_id, self.clock()):
            source = Source.BLOCKED  # blocked for abuse, yet danger still reaches a person
        signals = tuple(str(s) for s in verdict.signals)
        await self.report(turn, Danger(source=source, category=verdict.category,
                                       risk=verdict.risk, signals=signals,
                                       about=verdict.about, text=turn.text))
        return True


class FirstContact:
    """The first message ever: the privacy notice, then who is writing."""

    def __init__(self, moves: FlowMoves) -> None:
        self.moves = moves

    async def __call__(self, turn: Turn, inbound: Inbound) -> bool:
        if not turn.notice_once():
            return False
        self.moves.enter(turn, Flow.START, Start.ROLE)
        return True


class CheckIn:
    """Not sure: ask directly, as counsellors do. With a counsellor (or waiting for one) the
    line reaches them flagged instead; at most one check-in per conversation per half hour."""

    ANSWERS = (("check_in.safe", "g|checkin=safe"), ("check_in.unsafe", "g|checkin=unsafe"),
               ("check_in.person", "g|checkin=person"))
    # The answers that take the danger path (`GlobalCommands.check_in_answer`).
    DANGER = frozenset({"g|checkin=unsafe", "g|checkin=person"})

    def __init__(self, safety: SafetyPolicy, flag: Callable[[Turn], Awaitable[bool]],
                 clock: Clock) -> None:
        self.safety, self.flag, self.clock = safety, flag, clock

    async def __call__(self, turn: Turn, inbound: Inbound) -> bool:
        verdict = turn.assessment
        if verdict is None or not verdict.check_in:
            return False
        if where(turn) in (Where.LIVE, Where.WAITING):
            return await self.flag(turn)
        now, ctx = self.clock(), turn.ctx
        if not self.safety.may_check_in(ctx.data, now):
            return False
        ctx.data["check_in_at"] = now.isoformat()
        await turn.acted_on()
        ctx.data["check_in_category"] = verdict.category
        ctx.data["check_in_about"] = verdict.about
        about = "other" if verdict.about == "other" and not ctx.is_parent else "self"
        key = f"check_in.ask.{about}"
        # A child asked about what they told: a photo sent, fear, home (one of their own).
        topic = f"check_in.topic.{verdict.category}"
        if about == "self" and not ctx.is_parent and ctx.catalogue.has(topic):
            key = topic
        ctx.say(ctx.t(key), buttons(ctx, self.ANSWERS))
        return True


class Command:
    """A typed command (/start, /menu, /help, /lang, /forget, anything else)."""

    def __init__(self, run: Callable[[Turn, str], Awaitable[None]]) -> None:
        self.run = run

    async def __call__(self, turn: Turn, inbound: Inbound) -> bool:
        command = COMMAND.match(turn.text) if turn.text else None
        if not command:
            return False
        await self.run(turn, command.group(1).lower())
        return True


class Pressed:
    """A button pressed (its payload, checked against the current step: a forged or old one
    is refused kindly)."""

    def __init__(self, run: Callable[[Turn, str], Awaitable[None]]) -> None:
        self.run = run

    async def __call__(self, turn: Turn, inbound: Inbound) -> bool:
        if not inbound.payload:
            return False
        await self.run(turn, inbound.payload)
        return True


class Attachments:
    """Photos and files: evidence for the step that asks for it, else kept for the case; over
    the size limit, nothing is stored and the child is told."""

    def __init__(self, moves: FlowMoves, max_bytes: int) -> None:
        self.moves, self.max_bytes = moves, max_bytes

    async def __call__(self, turn: Turn, inbound: Inbound) -> bool:
        ctx = turn.ctx
        kept = tuple(a for a in inbound.attachments if a.size is None or a.size <= self.max_bytes)
        if len(kept) < len(inbound.attachments):
            ctx.say(ctx.t("attachment.too_big", limit=self.max_bytes // (1024 * 1024) or 1))
            if not kept and not turn.text:
                self.moves.prompt(turn, reprompt=True)
                return True
        if kept:
            if self.moves.step(turn).attachments:
                await self.moves.trigger(turn, "evidence", attachments=kept)
            else:
                count = await ctx.services.keep_evidence(ctx, kept)
                ctx.say(ctx.t("report.evidence.got", count=count))
                self.moves.prompt(turn, reprompt=True)
        return not turn.text


class Silence:
    """Back after a long silence in the middle of a form: continue or start again?"""

    ANSWERS = (
        ("silence.continue", "g|silence=continue"),
        ("silence.restart", "g|silence=restart"),
    )

    def __init__(self, after: timedelta, clock: Clock) -> None:
        self.after, self.clock = after, clock

    async def __call__(self, turn: Turn, inbound: Inbound) -> bool:
        conv = turn.conv
        if conv.flow not in RESUMABLE_FLOWS or conv.updated_at is None:
            return False
        if self.clock() - conv.updated_at <= self.after:
            return False
        turn.ctx.data["silence_pending"] = True
        turn.ctx.say(turn.ctx.t("silence.ask"), buttons(turn.ctx, self.ANSWERS))
        return True


class FlowStep:
    """The current flow's machine: a button's word typed counts as pressing it; free text
    where the step takes it; else the knowledge base answers and the question is asked again."""

    def __init__(self, moves: FlowMoves,
                 choose: Callable[[Turn, Option], Awaitable[None]]) -> None:
        self.moves, self.choose = moves, choose

    async def __call__(self, turn: Turn, inbound: Inbound) -> bool:
        option = self.moves.option_for_text(turn, turn.text)
        if option is not None:
            await self.choose(turn, option)
        elif self.moves.step(turn).free_text:
            await self.moves.trigger(turn, "text", text=turn.text)
        else:
            await self.moves.fallback(turn, turn.text)
        return True


def where(turn: Turn) -> Where:
    """Where the conversation stands, for the safety policy and the check-in."""
    from dialogs.flows.names import Chat

    conv = turn.conv
    if conv.flow == Flow.COUNSELLING:
        state = conv.state
        if state == Chat.ENDING:
            state = str(turn.ctx.data.get("before_end") or Chat.WAITING)
        if state == Chat.CONNECTED:
            return Where.LIVE
        if state == Chat.WAITING:
            return Where.WAITING
    return Where.MENU if conv.flow == Flow.START else Where.FLOW
