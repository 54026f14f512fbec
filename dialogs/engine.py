"""The dialog engine: one inbound message in, the replies out, the conversation kept in storage.

Order of work for every update, inside one transaction:
1. the update id is recorded (a repeat is ignored),
2. triage reads the text before anything else: a danger signal interrupts any state,
3. global commands and buttons, then the current flow's state machine.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

from dialogs.catalogue import Catalogue, default_catalogue, normalise_locale
from dialogs.clock import utcnow
from dialogs.flows import BY_CODE, FLOWS
from dialogs.flows.base import FlowModel, FlowSpec, Option, Step, TurnContext, build_machine
from dialogs.flows.names import IN_CHAT, Chat, Flow, Start
from dialogs.messages import (
    DESK,
    Address,
    Attachment,
    Button,
    ContentKind,
    DeskEvent,
    Inbound,
    Outbound,
    outbound_to_dict,
)
from dialogs.operations import DeskPolicy
from dialogs.ports import (
    AssessmentLike,
    CaseRecord,
    CaseStatus,
    ConversationRecord,
    KnowledgeSource,
    MessageRecord,
    Stores,
    StoreUnavailable,
    Triage,
    UnitOfWork,
    UserRecord,
)
from dialogs.ratelimit import RateLimiter
from dialogs.render import article_text
from dialogs.safety import Danger, Decision, SafetyPolicy, Source, Where
from dialogs.taxonomy import Risk

log = logging.getLogger(__name__)

SUPPORTED = {ContentKind.TEXT, ContentKind.PHOTO, ContentKind.DOCUMENT}
COMMAND = re.compile(r"^/([a-zA-Z_]+)(?:@\S+)?(?:\s|$)")
# Keys of conversation data that survive a change of flow (the check-in's half hour and what
# triage already acted on belong to the conversation, not to one flow).
PERSISTENT_KEYS = {"role", "triage_category", "check_in_at", "triage_acted_on"}
# Flows a long silence interrupts; the menu and a chat with a person are never interrupted.
RESUMABLE_FLOWS = {Flow.CHILD_REPORT, Flow.SAFETY_QUESTION, Flow.PARENT_HELP}
# ConversationRecord data that is bookkeeping, not the child's answers: never copied into a case.
NOT_ANSWERS = frozenset(
    {
        "silence_pending",
        "forget_pending",
        "triage_category",
        "rating",
        "check_in_at",
        "check_in_category",
        "check_in_about",
        "triage_acted_on",
        "before_end",
    }
)
# Triage's conversation context: this many earlier texts, written within this window.
CONTEXT_MESSAGES = 2
CONTEXT_WINDOW = timedelta(minutes=30)


@dataclass(frozen=True)
class EngineConfig:
    default_locale: str = "ru"
    max_text: int = 4000
    max_attachment_bytes: int = 20 * 1024 * 1024
    silence_after: timedelta = timedelta(hours=6)
    minutes_per_case: int = 10
    article_chars: int = 1500
    db_retries: int = 3
    flood_burst: int = 20
    flood_per_second: float = 1.0
    region: str = "ru"  # whose emergency contacts are shown (dialogs/data/contacts.yaml)


def _default_triage() -> Triage:
    from dialogs.triage import assess

    return assess


@dataclass
class _Turn:
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
    extra: list[Outbound] = field(default_factory=list)


class DialogEngine:
    """`handle(inbound) -> list[Outbound]`; the desk drives cases through `dialogs.escalation`."""

    def __init__(
        self,
        db: UnitOfWork,
        *,
        kb: KnowledgeSource,
        triage: Triage | None = None,
        catalogue: Catalogue | None = None,
        config: EngineConfig | None = None,
        clock: Callable[[], datetime] = utcnow,
        policy: DeskPolicy | None = None,
    ) -> None:
        self.db = db
        # The desk's rules (hours, waits, blocks); unconfigured: always open, nobody blocked.
        self.policy = policy or DeskPolicy()
        self.kb = kb
        self.triage: Triage = triage or _default_triage()
        self.catalogue = catalogue or default_catalogue()
        self.config = config or EngineConfig()
        self.clock = clock
        self.machines = {name: build_machine(spec) for name, spec in FLOWS.items()}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self.limiter = RateLimiter(self.config.flood_burst, self.config.flood_per_second)
        self.safety = SafetyPolicy(
            region=self.config.region, hours=lambda: self.policy.config.hours
        )

    # ------------------------------------------------------------------ entry point
    async def handle(self, inbound: Inbound) -> list[Outbound]:
        """Handle one update. Never raises for bad input; a database outage gets a kind reply."""
        key = (str(inbound.channel), inbound.user_id)
        verdict = self.limiter.check(f"{key[0]}:{key[1]}")
        if verdict != "ok" and not self._is_danger(inbound):
            # A flood: one calm word, then quiet. Danger always gets through.
            if verdict == "warn":
                locale = normalise_locale(inbound.locale_hint, self.config.default_locale)
                address = Address(str(inbound.channel), inbound.chat_id)
                return [Outbound(to=address, text=self.catalogue.t("flood.wait", locale))]
            return []
        lock = self._locks.setdefault(key, asyncio.Lock())
        try:
            async with lock:
                return await self._handle_with_retries(inbound)
        finally:
            if not lock.locked() and self._locks.get(key) is lock:
                del self._locks[key]

    def _is_danger(self, inbound: Inbound) -> bool:
        text = (inbound.text or "").strip()
        if not text:
            return False
        locale = normalise_locale(inbound.locale_hint, self.config.default_locale)
        return bool(self.triage(text, locale).danger)

    async def _handle_with_retries(self, inbound: Inbound) -> list[Outbound]:
        locale = normalise_locale(inbound.locale_hint, self.config.default_locale)
        delay = 0.2
        for attempt in range(self.config.db_retries):
            try:
                async with self.db.unit() as repos:
                    return await self._handle(repos, inbound)
            except StoreUnavailable:
                log.warning("database error handling an update (attempt %d)", attempt + 1)
                await asyncio.sleep(delay)
                delay *= 2.5
        # The database stayed away. Safety first: a child in danger still gets the contacts.
        address = Address(str(inbound.channel), inbound.chat_id)
        replies = [Outbound(to=address, text=self.catalogue.t("error.retry", locale))]
        return [*self.contacts_from_memory(inbound), *replies]

    def contacts_from_memory(self, inbound: Inbound) -> list[Outbound]:
        """What can be said with no database at all: the emergency contacts, when the text
        reads as danger (else nothing)."""
        text = (inbound.text or "").strip()
        if not text:
            return []
        locale = normalise_locale(inbound.locale_hint, self.config.default_locale)
        if not self.triage(text, locale).danger:
            return []
        words = self.catalogue.t("safety.open.self", locale)
        contacts = self.safety.contacts(locale)
        address = Address(str(inbound.channel), inbound.chat_id)
        return [Outbound(to=address, text=f"{words}\n{contacts}")]

    async def _handle(self, repos: Stores, inbound: Inbound) -> list[Outbound]:
        if inbound.update_id is not None:
            if not await repos.updates.claim(str(inbound.channel), inbound.update_id):
                return []
            # The channel's journal entry is closed in the transaction that handles it.
            await repos.inbox.mark_handled(str(inbound.channel), inbound.update_id)
        locale = normalise_locale(inbound.locale_hint, self.config.default_locale)
        user, _created = await repos.users.get_or_create(
            str(inbound.channel), inbound.user_id, inbound.chat_id, locale
        )
        if not user.locale_fixed and inbound.locale_hint:
            user.locale = locale
        user.last_seen_at = self.clock()
        user.unreachable = False
        conv = await repos.conversations.for_user(user.id)
        if conv is None:
            conv = await repos.conversations.create(user.id, Flow.START, Start.ROLE)
        turn = self._turn(repos, user, conv)
        turn.inbound = inbound
        await self._run(turn, inbound)
        if user.id is not None and await repos.users.get(user.id) is not None:
            self._save(turn)
            await self._transcribe_bot(turn)
        return await self._persist(repos, turn.ctx.out + turn.extra)

    async def _transcribe_bot(self, turn: _Turn) -> None:
        """What the bot told a child whose case is open (the numbers, the waiting notices)
        goes into the transcript, so the counsellor reads what the child read."""
        conv = turn.conv
        if conv.flow != Flow.COUNSELLING or conv.case_id is None:
            return
        for message in turn.ctx.out:
            if message.to == turn.ctx.address and message.text:
                await turn.repos.messages.add(
                    turn.user.id,
                    "bot",
                    message.text,
                    case_id=conv.case_id,
                    created_at=self.clock(),
                )

    async def _persist(self, repos: Stores, messages: list[Outbound]) -> list[Outbound]:
        """Write every reply to the outbox in the same transaction as the state change, so a
        crash after commit loses no reply and a restart sends each one once."""
        kept = []
        for message in messages:
            row = await repos.outbox.add(
                message.to.channel,
                message.to.chat_id,
                outbound_to_dict(message),
                message.case_id,
            )
            kept.append(replace(message, meta={**message.meta, "outbox_id": str(row.id)}))
        return kept

    def _turn(self, repos: Stores, user: UserRecord, conv: ConversationRecord) -> _Turn:
        data = dict(conv.data or {})
        ctx = TurnContext(
            address=Address(user.channel, user.address),
            locale=user.locale,
            role=str(data.get("role") or user.role or "child"),
            data=data,
            catalogue=self.catalogue,
            services=_Services(self),
            user_id=user.id,
        )
        turn = _Turn(repos=repos, user=user, conv=conv, ctx=ctx)
        ctx.services = _Services(self, turn)
        return turn

    def _save(self, turn: _Turn) -> None:
        conv = turn.conv
        conv.data = dict(turn.ctx.data)
        conv.version = (conv.version or 0) + 1
        conv.updated_at = self.clock()
        if turn.ctx.data.get("role"):
            turn.user.role = str(turn.ctx.data["role"])

    # ------------------------------------------------------------------ one turn
    async def _run(self, turn: _Turn, inbound: Inbound) -> None:
        """The turn's stages, in order; the first that uses the update up ends the turn."""
        stages = (
            self._stage_block,
            self._stage_unsupported,
            self._stage_triage,
            self._stage_danger,
            self._stage_first_contact,
            self._stage_check_in,
            self._stage_command,
            self._stage_payload,
            self._stage_attachments,
            self._stage_silence,
            self._stage_flow,
        )
        for stage in stages:
            if await stage(turn, inbound):
                return

    async def _stage_block(self, turn: _Turn, inbound: Inbound) -> bool:
        """A blocked user: one neutral reply per block; danger still gets through."""
        return await self.policy.screen(
            turn.repos, turn.user, turn.ctx, inbound, self._is_danger, self.clock()
        )

    async def _stage_unsupported(self, turn: _Turn, inbound: Inbound) -> bool:
        if inbound.kind in SUPPORTED or not turn.user.notice_shown:
            return False
        turn.ctx.say(turn.ctx.t("unsupported.content"))
        self._prompt(turn, reprompt=True)
        return True

    async def _stage_triage(self, turn: _Turn, inbound: Inbound) -> bool:
        """Triage reads the whole text (with the conversation's recent texts) before anything
        else; the transcript keeps what fits."""
        full = (inbound.text or "").strip()
        if not full:
            return False
        text = full
        if len(full) > self.config.max_text:
            text = full[: self.config.max_text]
            turn.ctx.say(turn.ctx.t("too.long", limit=self.config.max_text))
        turn.text = text
        now = self.clock()
        # What was already acted on (danger, a check-in) is not counted again.
        acted = int(turn.ctx.data.get("triage_acted_on") or 0)
        recent = await turn.repos.messages.recent_child_texts(
            turn.user.id, now - CONTEXT_WINDOW, CONTEXT_MESSAGES, after_id=acted
        )
        turn.assessment = self.triage(full, turn.ctx.locale, recent)
        case = await turn.repos.cases.open_for_user(turn.user.id)
        turn.message = await turn.repos.messages.add(
            turn.user.id,
            "child",
            text,
            case_id=case.id if case is not None else None,
            created_at=now,
        )
        verdict = turn.assessment
        if not verdict.danger and verdict.category not in ("other", ""):
            turn.ctx.data.setdefault("triage_category", verdict.category)
        return False

    async def _stage_danger(self, turn: _Turn, inbound: Inbound) -> bool:
        verdict = turn.assessment
        if verdict is None or not verdict.danger:
            return False
        self._notice_once(turn)
        source = Source.TYPED
        if inbound.edited:
            source = Source.EDITED
        elif inbound.attachments:
            source = Source.CAPTION
        user = turn.user
        if await turn.repos.blocks.active_for(user.channel, user.external_id, self.clock()):
            source = Source.BLOCKED  # blocked for abuse, yet danger still reaches a person
        await self._danger(
            turn,
            Danger(
                source=source,
                category=verdict.category,
                risk=verdict.risk,
                signals=tuple(str(s) for s in verdict.signals),
                about=verdict.about,
                text=turn.text,
            ),
        )
        return True

    def _notice_once(self, turn: _Turn) -> bool:
        """The privacy notice, on first contact; True if it was shown now."""
        if turn.user.notice_shown:
            return False
        turn.user.notice_shown = True
        turn.ctx.say(turn.ctx.t("privacy.notice"))
        return True

    async def _stage_first_contact(self, turn: _Turn, inbound: Inbound) -> bool:
        if not self._notice_once(turn):
            return False
        await self._enter(turn, Flow.START, Start.ROLE)
        return True

    async def _stage_check_in(self, turn: _Turn, inbound: Inbound) -> bool:
        """Not sure: ask directly, as counsellors do. In a live chat the counsellor is shown a
        flag instead; at most one check-in per conversation per half hour."""
        verdict = turn.assessment
        if verdict is None or not verdict.check_in:
            return False
        where = self._where(turn)
        now = self.clock()
        if where in (Where.LIVE, Where.WAITING):
            return await self._flag_for_counsellor(turn)
        if not self.safety.may_check_in(turn.ctx.data, now):
            return False
        ctx = turn.ctx
        ctx.data["check_in_at"] = now.isoformat()
        await self._acted_on(turn)
        ctx.data["check_in_category"] = verdict.category
        ctx.data["check_in_about"] = verdict.about
        about = "other" if ctx.data["check_in_about"] == "other" and not ctx.is_parent else "self"
        ctx.say(
            ctx.t(f"check_in.ask.{about}"),
            self._buttons(
                ctx,
                [
                    ("check_in.safe", "g|checkin=safe"),
                    ("check_in.unsafe", "g|checkin=unsafe"),
                    ("check_in.person", "g|checkin=person"),
                ],
            ),
        )
        return True

    async def _flag_for_counsellor(self, turn: _Turn) -> bool:
        """A counsellor has (or is about to have) the chat: the line reaches them flagged,
        instead of a check-in from the bot."""
        case = await turn.repos.cases.open_for_user(turn.user.id)
        if case is None:
            return False
        turn.extra.append(
            self._desk_notice(case, DeskEvent.CHILD_MESSAGE, turn.text, flags={"check_in": "1"})
        )
        turn.ctx.prompted = True
        await self._acted_on(turn)  # the counsellor has seen it
        return True

    async def _stage_command(self, turn: _Turn, inbound: Inbound) -> bool:
        command = COMMAND.match(turn.text) if turn.text else None
        if not command:
            return False
        await self._command(turn, command.group(1).lower())
        return True

    async def _stage_payload(self, turn: _Turn, inbound: Inbound) -> bool:
        if not inbound.payload:
            return False
        await self._payload(turn, inbound.payload)
        return True

    async def _stage_attachments(self, turn: _Turn, inbound: Inbound) -> bool:
        ctx = turn.ctx
        step = FLOWS[turn.conv.flow].step(turn.conv.state)
        attachments = tuple(
            a
            for a in inbound.attachments
            if a.size is None or a.size <= self.config.max_attachment_bytes
        )
        if len(attachments) < len(inbound.attachments):
            # Over the limit: not stored at all, and the child is told plainly.
            limit_mb = self.config.max_attachment_bytes // (1024 * 1024) or 1
            ctx.say(ctx.t("attachment.too_big", limit=limit_mb))
            if not attachments and not turn.text:
                self._prompt(turn, reprompt=True)
                return True
        if attachments:
            if step.attachments:
                await self._trigger(turn, "evidence", attachments=attachments)
            else:
                count = await ctx.services.keep_evidence(ctx, attachments)
                ctx.say(ctx.t("report.evidence.got", count=count))
                self._prompt(turn, reprompt=True)
        return not turn.text

    async def _stage_silence(self, turn: _Turn, inbound: Inbound) -> bool:
        if not self._silent_too_long(turn.conv):
            return False
        ctx = turn.ctx
        ctx.data["silence_pending"] = True
        ctx.say(
            ctx.t("silence.ask"),
            self._buttons(
                ctx,
                [
                    ("silence.continue", "g|silence=continue"),
                    ("silence.restart", "g|silence=restart"),
                ],
            ),
        )
        return True

    async def _stage_flow(self, turn: _Turn, inbound: Inbound) -> bool:
        conv, text = turn.conv, turn.text
        spec, step = FLOWS[conv.flow], FLOWS[conv.flow].step(conv.state)
        option = self._option_for_text(turn, spec, step, text)
        if option is not None:
            await self._choose(turn, spec, step, option)
        elif step.free_text:
            await self._trigger(turn, "text", text=text)
        else:
            await self._fallback(turn, text)
        return True

    async def _choose(self, turn: _Turn, spec: FlowSpec, step: Step, option: Option) -> None:
        """A button pressed (or its word typed). An answer the flow declares as danger goes
        to the safety policy, with the answer kept for the case."""
        if option.danger is None:
            await self._trigger(turn, option.trigger, value=option.value)
            return
        turn.ctx.data[step.name] = option.value
        category = option.category
        if category is None:
            category = spec.danger_category(turn.ctx.data) if spec.danger_category else "other"
        about = "other" if turn.ctx.data.get("on_behalf") else "self"
        await self._danger(
            turn, Danger(source=Source(option.danger), category=category, about=about)
        )

    def _silent_too_long(self, conv: ConversationRecord) -> bool:
        if conv.flow not in RESUMABLE_FLOWS or conv.updated_at is None:
            return False
        return self.clock() - conv.updated_at > self.config.silence_after

    def _option_for_text(
        self, turn: _Turn, spec: FlowSpec, step: Step, text: str
    ) -> Option | None:
        """A typed label or option number counts as pressing that button."""
        options = self._visible(turn, spec, step)
        folded = text.casefold().strip(" .!")
        for opt in options:
            if turn.ctx.t(opt.label).casefold() == folded:
                return opt
        if folded.isdecimal() and not step.free_text and 1 <= int(folded) <= len(options):
            return options[int(folded) - 1]
        return None

    # ------------------------------------------------------------------ danger
    async def _open_or_reopen(self, turn: _Turn) -> CaseRecord | None:
        """The user's open case; or the one they ended a chat on, back in the queue."""
        case = await turn.repos.cases.open_for_user(turn.user.id)
        if case is not None:
            return case
        case = await turn.repos.cases.reopen_left(turn.user.id)
        if case is not None:
            await turn.repos.audit.record(
                "child_returned", counsellor_id=None, case_id=case.id, detail=""
            )
            back = self.catalogue.t("desk.child_back", self.policy.config.staff_locale)
            turn.extra.append(self._desk_notice(case, DeskEvent.CASE_UPDATED, back))
        return case

    async def _acted_on(self, turn: _Turn) -> None:
        """Mark the texts so far as acted on: triage's context starts after them."""
        if turn.message is not None:
            await turn.repos.flush()
            turn.ctx.data["triage_acted_on"] = int(turn.message.id)

    def _where(self, turn: _Turn) -> Where:
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

    async def _danger(self, turn: _Turn, danger: Danger) -> None:
        """Every danger, from every source, goes to the one safety policy."""
        await self._acted_on(turn)
        await self.safety.act(turn.ctx, _SafetyActions(self, turn), danger, self.clock())

    async def _open_or_raise(
        self, turn: _Turn, danger: Danger, decision: Decision
    ) -> tuple[int, int]:
        """The safety policy's case move: open a case at the danger's risk, or raise the open
        one, and alert the desk with the line flagged."""
        flags = decision.flags
        case = await self._open_or_reopen(turn)
        if case is None:
            case = await self._open_case(
                turn,
                category=danger.category,
                risk=decision.risk,
                signals=list(danger.signals),
                flags=flags,
                text=danger.text,
            )
        else:
            raised = case.risk_rank > decision.risk.rank
            known = list(case.signals.get("signals", []))
            case.signals = {"signals": sorted(set(known) | set(danger.signals))}
            if raised:
                case.risk, case.risk_rank = decision.risk.value, decision.risk.rank
            await turn.repos.audit.record(
                "risk_raised" if raised else "danger_again",
                counsellor_id=None,
                case_id=case.id,
                detail=f"{danger.source.value}: {', '.join(danger.signals) or danger.category}",
            )
            event = DeskEvent.CASE_RAISED if raised else DeskEvent.CHILD_MESSAGE
            turn.extra.append(
                self._desk_notice(case, event, danger.text, critical=True, flags=flags)
            )
        waiting = case.status == CaseStatus.WAITING
        position = await turn.repos.cases.position(case) if waiting else 0
        turn.case_for_chat = case
        return int(case.id), int(position)

    # ------------------------------------------------------------------ commands and buttons
    async def _command(self, turn: _Turn, name: str) -> None:
        ctx, conv = turn.ctx, turn.conv
        in_chat = conv.flow == Flow.COUNSELLING and conv.state in IN_CHAT
        if name in ("start", "menu"):
            if in_chat:
                ctx.say(
                    ctx.t("counselling.busy"),
                    self._buttons(ctx, [("counselling.end", f"cs|{conv.state}|end")]),
                )
                return
            await self._enter(
                turn, "start", "role" if name == "start" or not ctx.data.get("role") else "menu"
            )
        elif name == "help":
            ctx.say(ctx.t("help"))
            self._prompt(turn, reprompt=True)
        elif name == "lang":
            ctx.say(
                ctx.t("lang.ask"),
                self._buttons(
                    ctx, [("lang.ru", "g|lang=ru"), ("lang.en", "g|lang=en")], columns=2
                ),
            )
        elif name == "forget":
            ctx.data["forget_pending"] = True
            ctx.say(
                ctx.t("forget.ask"),
                self._buttons(
                    ctx, [("forget.yes", "g|forget=yes"), ("forget.no", "g|forget=no")], columns=2
                ),
            )
        else:
            ctx.say(ctx.t("unknown.command"))
            self._prompt(turn, reprompt=True)

    async def _payload(self, turn: _Turn, payload: str) -> None:
        _ctx, conv = turn.ctx, turn.conv
        if payload.startswith("g|"):
            await self._global(turn, payload[2:])
            return
        parts = payload.split("|")
        spec = BY_CODE.get(parts[0]) if len(parts) == 3 else None
        if spec is None or spec.name != conv.flow or parts[1] != conv.state:
            await self._stale(turn)
            return
        step = spec.step(conv.state)
        option = next((o for o in self._visible(turn, spec, step) if o.value == parts[2]), None)
        if option is None:
            await self._stale(turn)
            return
        await self._choose(turn, spec, step, option)

    async def _stale(self, turn: _Turn) -> None:
        turn.ctx.say(turn.ctx.t("stale.button"))
        self._prompt(turn, reprompt=True)

    async def _global(self, turn: _Turn, action: str) -> None:
        ctx, conv = turn.ctx, turn.conv
        name, _, value = action.partition("=")
        if name == "menu":
            if conv.flow == Flow.COUNSELLING and conv.state in IN_CHAT:
                ctx.say(ctx.t("counselling.busy"))
                self._prompt(turn, reprompt=True)
                return
            await self._enter(turn, "start", "menu" if ctx.data.get("role") else "role")
        elif name == "person":
            await ctx.services.escalate(ctx)
        elif name == "lang" and value in ("ru", "en"):
            turn.user.locale, turn.user.locale_fixed = value, True
            ctx.locale = value
            ctx.say(ctx.t("lang.set"))
            self._prompt(turn, reprompt=True)
        elif name == "forget" and ctx.data.pop("forget_pending", False):
            if value == "yes":
                await self._forget(turn)
            else:
                ctx.say(ctx.t("forget.kept"))
                self._prompt(turn, reprompt=True)
        elif name == "checkin" and ctx.data.get("check_in_at"):
            await self._check_in_answer(turn, value)
        elif name == "silence" and ctx.data.pop("silence_pending", False):
            if value == "restart":
                await self._enter(turn, "start", "menu" if ctx.data.get("role") else "role")
            else:
                self._prompt(turn, reprompt=True)
        else:
            await self._stale(turn)

    async def _check_in_answer(self, turn: _Turn, value: str) -> None:
        """The answer to "are you safe right now?": safe goes back where the child was; not
        safe, or asking for a person, takes the danger path."""
        ctx = turn.ctx
        category = str(ctx.data.pop("check_in_category", "") or "other")
        about = str(ctx.data.pop("check_in_about", "self"))
        if value == "safe":
            ctx.say(ctx.t("check_in.thanks"))
            self._prompt(turn, reprompt=True)
            return
        if value not in ("unsafe", "person"):
            await self._stale(turn)
            return
        if category in ("other", "", "wellbeing"):
            category = "suicide" if value == "unsafe" else "wellbeing"
        risk = Risk.CRITICAL if value == "unsafe" else Risk.HIGH
        await self._danger(
            turn, Danger(source=Source.CHECK_IN, category=category, risk=risk, about=about)
        )

    async def _forget(self, turn: _Turn) -> None:
        case = await turn.repos.cases.open_for_user(turn.user.id)
        if case is not None:
            turn.extra.append(self._desk_notice(case, DeskEvent.CHILD_LEFT, "/forget"))
            # The case is closed as "the child erased their data"; the trail says only that.
            await turn.repos.audit.record(
                "child_erased", counsellor_id=None, case_id=case.id, detail=""
            )
        files = await turn.repos.users.erase(turn.user.id)
        await asyncio.to_thread(_unlink_all, files)
        turn.ctx.say(turn.ctx.t("forget.done"))

    # ------------------------------------------------------------------ the flow machine
    async def _trigger(self, turn: _Turn, trigger: str, **kwargs: Any) -> bool:
        """Fire `trigger` on the conversation's flow; switch flows and prompt as needed."""
        conv, ctx = turn.conv, turn.ctx
        spec = FLOWS[conv.flow]
        machine = self.machines[conv.flow]
        if trigger not in machine.get_triggers(conv.state):
            if trigger == "text":
                await self._fallback(turn, str(kwargs.get("text", "")))
            else:
                await self._stale(turn)
            return False
        model = spec.model(ctx)
        machine.add_model(model, initial=conv.state)
        before = conv.state
        try:
            done = bool(await cast(Any, model).trigger(trigger, **kwargs))
            after = model.state
        finally:
            machine.remove_model(model)
        if await turn.repos.users.get(turn.user.id) is None:
            return done
        if ctx.switch is not None:
            flow, state = ctx.switch
            ctx.switch = None
            if flow == Flow.COUNSELLING:
                return done  # escalate() has moved the conversation already
            keep = False
            if flow == "resume":
                # Back to where the child was before the counsellor, with their answers.
                flow, state = conv.resume_flow or Flow.START, conv.resume_state or Start.MENU
                conv.resume_flow = conv.resume_state = None
                keep = True
            await self._enter(turn, flow, state, keep_data=keep)
            return done
        conv.state = after
        if after != before or not ctx.prompted:
            self._prompt(turn, reprompt=after == before and not ctx.prompted)
        else:
            self._attach_buttons(turn)
        return done

    async def _enter(
        self, turn: _Turn, flow: str, state: str | None = None, *, keep_data: bool = False
    ) -> None:
        """Move the conversation to `flow` at `state` (its start by default) and ask its prompt."""
        conv, ctx = turn.conv, turn.ctx
        spec = FLOWS[flow]
        if flow != conv.flow and flow != Flow.COUNSELLING and not keep_data:
            on_behalf = ctx.data.get("on_behalf") and flow == Flow.CHILD_REPORT
            ctx.data = {k: v for k, v in ctx.data.items() if k in PERSISTENT_KEYS}
            if on_behalf:
                ctx.data["on_behalf"] = True
        if flow == Flow.START and state in (None, Start.ROLE):
            ctx.data.pop("role", None)
        conv.flow, conv.state = flow, state or spec.initial
        ctx.prompted = False
        self._prompt(turn)

    def _visible(self, turn: _Turn, spec: FlowSpec, step: Step) -> list[Option]:
        role = turn.ctx.role if turn.ctx.data.get("role") else "child"
        return [o for o in step.options if role in o.roles]

    def _step_buttons(self, turn: _Turn) -> tuple[tuple[Button, ...], ...]:
        conv, ctx = turn.conv, turn.ctx
        spec = FLOWS[conv.flow]
        step = spec.step(conv.state)
        options = self._visible(turn, spec, step)
        buttons = [Button(ctx.t(o.label), f"{spec.code}|{step.name}|{o.value}") for o in options]
        cols = max(step.columns, 1)
        rows = [tuple(buttons[i : i + cols]) for i in range(0, len(buttons), cols)]
        triggers = {o.trigger for o in options}
        in_chat = spec.name == Flow.COUNSELLING and step.name in IN_CHAT
        # "Talk to a person" on every step, once; "back to the menu" outside the menu and chat.
        if spec.name != Flow.COUNSELLING and "person" not in triggers:
            rows.append((Button(ctx.t("menu.person"), "g|person"),))
        if spec.name != Flow.START and not in_chat and "menu" not in triggers:
            rows.append((Button(ctx.t("menu.back"), "g|menu"),))
        return tuple(rows)

    def _prompt(self, turn: _Turn, *, reprompt: bool = False) -> None:
        """Ask the current step's question with its buttons."""
        conv, ctx = turn.conv, turn.ctx
        step = FLOWS[conv.flow].step(conv.state)
        buttons = self._step_buttons(turn)
        if step.prompt:
            ctx.say(ctx.t(step.prompt), buttons)
        elif buttons and not self._attach_buttons(turn):
            key = "fallback.continue" if reprompt else "menu.ask"
            ctx.say(ctx.t(key), buttons)
        ctx.prompted = True

    def _attach_buttons(self, turn: _Turn) -> bool:
        """Put the current step's buttons on the last message to the user, if it has none."""
        ctx = turn.ctx
        if not ctx.out or ctx.out[-1].buttons or ctx.out[-1].to != ctx.address:
            return False
        buttons = self._step_buttons(turn)
        if not buttons:
            return True
        last = ctx.out.pop()
        ctx.out.append(Outbound(to=last.to, text=last.text, buttons=buttons))
        return True

    def _buttons(
        self, ctx: TurnContext, items: Sequence[tuple[str, str]], columns: int = 1
    ) -> tuple[tuple[Button, ...], ...]:
        buttons = [Button(ctx.t(label), payload) for label, payload in items]
        return tuple(tuple(buttons[i : i + columns]) for i in range(0, len(buttons), columns))

    async def _fallback(self, turn: _Turn, text: str) -> None:
        """Free text where a button was expected: answer it from the knowledge base if we can."""
        ctx = turn.ctx
        audience = "parent" if ctx.is_parent else "child"
        hits = self.kb.search(text, ctx.locale, audience, 1) if text else []
        if hits:
            article = hits[0].article
            ctx.say(
                ctx.t(
                    "fallback.answer",
                    title=article.title,
                    body=article_text(article, self.config.article_chars),
                )
            )
        else:
            ctx.say(ctx.t("fallback.none"))
        step = FLOWS[turn.conv.flow].step(turn.conv.state)
        buttons = self._step_buttons(turn)
        text_key = step.prompt or "fallback.continue"
        ctx.say(ctx.t(text_key), buttons)
        ctx.prompted = True

    # ------------------------------------------------------------------ cases
    async def _open_case(
        self,
        turn: _Turn,
        *,
        category: str,
        risk: Risk,
        signals: list[str] | None = None,
        flags: dict[str, str] | None = None,
        text: str = "",
    ) -> CaseRecord:
        repos, user, ctx = turn.repos, turn.user, turn.ctx
        answers = {k: v for k, v in ctx.data.items() if k not in NOT_ANSWERS}
        answers["role"] = ctx.role
        answers["locale"] = ctx.locale
        case = await repos.cases.open(
            user_id=user.id,
            channel=user.channel,
            category=category,
            risk=risk.value,
            risk_rank=risk.rank,
            answers=answers,
            signals={"signals": signals or []},
        )
        await repos.messages.attach_recent_to_case(user.id, case.id)
        await repos.attachments.bind_pending(user.id, case.id)
        await repos.audit.record(
            "opened",
            counsellor_id=None,
            case_id=case.id,
            detail=f"{category} {risk.value}"
            + (f" signals={','.join(signals)}" if signals else ""),
        )
        turn.extra.append(
            self._desk_notice(
                case, DeskEvent.CASE_OPENED, text, critical=risk is Risk.CRITICAL, flags=flags
            )
        )
        return case

    def _enter_counselling(self, turn: _Turn, case: CaseRecord) -> None:
        """Move the conversation into the counsellor queue (or chat) for ``case``, keeping
        where the child was to come back to."""
        conv = turn.conv
        if conv.flow != Flow.COUNSELLING:
            conv.resume_flow, conv.resume_state = conv.flow, conv.state
            if conv.flow == Flow.START:
                conv.resume_flow = conv.resume_state = None
        conv.flow = Flow.COUNSELLING
        conv.state = Chat.CONNECTED if case.status == CaseStatus.ACTIVE else Chat.WAITING
        conv.case_id = case.id
        turn.ctx.prompted = True
        turn.ctx.switch = (Flow.COUNSELLING, conv.state)

    def _desk_notice(
        self,
        case: CaseRecord,
        event: DeskEvent,
        text: str,
        *,
        critical: bool = False,
        attachments: tuple[Attachment, ...] = (),
        flags: dict[str, str] | None = None,
    ) -> Outbound:
        """A notice for the desk; ``flags`` mark the line for the counsellor (``danger`` with
        its source, ``check_in``, ``about``)."""
        return Outbound(
            to=Address(DESK, str(case.id)),
            text=text,
            case_id=case.id,
            desk_event=event,
            critical=critical or case.risk == Risk.CRITICAL.value,
            attachments=attachments,
            meta={**self.policy.notice_meta(case, self.clock()), **(flags or {})},
        )

    async def escalate(
        self, turn: _Turn, *, category: str | None = None, risk: str | None = None
    ) -> None:
        from dialogs.flows.child_report import WHAT

        ctx = turn.ctx
        case = await self._open_or_reopen(turn)
        if case is not None:
            if risk == Risk.CRITICAL.value and case.risk != risk:
                case.risk, case.risk_rank = Risk.CRITICAL.value, Risk.CRITICAL.rank
                turn.extra.append(self._desk_notice(case, DeskEvent.CASE_RAISED, ""))
            self._enter_counselling(turn, case)
            if case.status == CaseStatus.WAITING:
                await self._say_waiting(turn, case, again=True)
            else:
                ctx.say(ctx.t("counselling.connected"))
            self._attach_buttons(turn)
            return
        what = ctx.data.get("what")
        picked = WHAT.get(str(what)) if what else None
        if category is None:
            if picked:
                category = picked[0]
            elif ctx.data.get("triage_category"):
                category = str(ctx.data["triage_category"])
            else:
                category = "parent-question" if ctx.is_parent else "information"
        level = Risk(risk) if risk else Risk(picked[1]) if picked else Risk.MEDIUM
        case = await self._open_case(turn, category=category, risk=level)
        self._enter_counselling(turn, case)
        await self._say_waiting(turn, case, again=False)
        self._attach_buttons(turn)

    async def _say_waiting(self, turn: _Turn, case: CaseRecord, *, again: bool) -> None:
        """Tell the child their place in the queue and an honest wait: from recent
        first-response times, or after hours, when counsellors are back."""
        position = await turn.repos.cases.position(case)
        turn.ctx.say(
            await self.policy.waiting_text(
                turn.repos,
                turn.ctx,
                case,
                position,
                self.clock(),
                fallback_minutes=self.config.minutes_per_case,
                again=again,
            )
        )

    async def desk_trigger(self, repos: Stores, case: CaseRecord, trigger: str) -> list[Outbound]:
        """The desk's port into the conversation: "taken", "released", "closed" or "blocked"
        moves the child's conversation (the desk never writes it); returns what they see."""
        turn = await self._case_turn(repos, case)
        if turn is None:
            return []
        conv = turn.conv
        if trigger == "blocked":
            # Blocked for abuse: out of the chat without a word; the menu when it ends.
            if conv.flow == Flow.COUNSELLING:
                conv.flow, conv.state, conv.case_id = Flow.START, Start.MENU, None
                conv.resume_flow = conv.resume_state = None
            return []
        if trigger == "closed":
            # A counsellor has heard all of it: triage's context starts afresh.
            turn.ctx.data["triage_acted_on"] = await repos.messages.last_id(turn.user.id)
        if conv.flow != Flow.COUNSELLING or conv.case_id != case.id:
            self._outside_chat(turn, case, trigger)
        else:
            turn.ctx.prompted = False
            if trigger in self.machines[Flow.COUNSELLING].get_triggers(conv.state):
                await self._trigger(turn, trigger)
        self._save(turn)
        return turn.ctx.out

    async def _case_turn(self, repos: Stores, case: CaseRecord) -> _Turn | None:
        """A turn on the conversation of the case's child (None: the child erased it)."""
        user = await repos.users.get(case.user_id) if case.user_id is not None else None
        if user is None:
            return None
        conv = await repos.conversations.for_case(case.id)
        if conv is None:
            conv = await repos.conversations.for_user(user.id)
        return self._turn(repos, user, conv) if conv is not None else None

    def _outside_chat(self, turn: _Turn, case: CaseRecord, trigger: str) -> None:
        """The desk acted on a case whose child is elsewhere (the menu, another flow)."""
        if trigger == "taken":
            self._enter_counselling(turn, case)
            turn.ctx.switch = None
            turn.ctx.say(turn.ctx.t("counselling.connected"))
            self._attach_buttons(turn)
        elif trigger == "closed":
            # The child left the chat earlier: still ask for a rating, gently.
            conv = turn.conv
            conv.flow, conv.state, conv.case_id = Flow.COUNSELLING, Chat.RATING, case.id
            self._prompt(turn)


class _SafetyActions:
    """The engine's side of the safety policy's port (`dialogs.safety.SafetyActions`)."""

    def __init__(self, engine: DialogEngine, turn: _Turn) -> None:
        self.engine = engine
        self.turn = turn

    async def open_or_raise(self, danger: Danger, decision: Decision) -> tuple[int, int]:
        return await self.engine._open_or_raise(self.turn, danger, decision)

    def where(self) -> Where:
        return self.engine._where(self.turn)

    def say(self, text: str) -> None:
        self.turn.ctx.say(text)

    def enter_chat(self) -> None:
        case = self.turn.case_for_chat
        if case is not None:
            self.engine._enter_counselling(self.turn, case)
            self.engine._attach_buttons(self.turn)


class _Services:
    """What flows may ask of the engine during a turn (the `Services` protocol)."""

    def __init__(self, engine: DialogEngine, turn: _Turn | None = None) -> None:
        self.engine = engine
        self._turn = turn

    @property
    def turn(self) -> _Turn:
        assert self._turn is not None
        return self._turn

    async def advice(self, ctx: TurnContext, topics: list[str]) -> None:
        audience = "parent" if ctx.is_parent else "child"
        shown: set[str] = set()
        for topic in topics:
            for article in self.engine.kb.by_topic(topic, ctx.locale, audience)[:1]:
                if article.id in shown:
                    continue
                shown.add(article.id)
                ctx.say(
                    f"{article.title}\n\n{article_text(article, self.engine.config.article_chars)}"
                )
        if not shown:
            ctx.say(ctx.t("report.advice.none"))

    async def answer_question(self, ctx: TurnContext, query: str) -> bool:
        audience = "parent" if ctx.is_parent else "child"
        hits = self.engine.kb.search(query, ctx.locale, audience, 3)
        if not hits:
            ctx.data["hits"] = []
            return False
        ctx.data["hits"] = [h.article.id for h in hits]
        top = hits[0].article
        ctx.say(
            ctx.t(
                "question.answer",
                title=top.title,
                body=article_text(top, self.engine.config.article_chars),
            )
        )
        return True

    async def other_answers(self, ctx: TurnContext) -> None:
        ids = list(ctx.data.get("hits", []))[1:]
        articles = [a for a in (self.engine.kb.get(i, ctx.locale) for i in ids) if a]
        if not articles:
            ctx.say(ctx.t("question.others.none"))
            self.engine._attach_buttons(self.turn)
            return
        ctx.say(ctx.t("question.others.list"))
        for article in articles:
            ctx.say(
                f"{article.title}\n\n{article_text(article, self.engine.config.article_chars)}"
            )
        self.engine._attach_buttons(self.turn)

    async def keep_evidence(self, ctx: TurnContext, attachments: tuple[Attachment, ...]) -> int:
        turn = self.turn
        case = await turn.repos.cases.open_for_user(turn.user.id)
        for att in attachments:
            await turn.repos.attachments.add(
                user_id=turn.user.id,
                channel=turn.user.channel,
                kind=str(att.kind),
                file_ref=att.file_ref,
                size=att.size,
                mime=att.mime,
                case_id=case.id if case else None,
            )
        if case is not None:
            turn.extra.append(
                self.engine._desk_notice(
                    case, DeskEvent.CHILD_MESSAGE, "", attachments=attachments
                )
            )
        stored = await turn.repos.attachments.for_user(turn.user.id)
        return len([a for a in stored if a.case_id == (case.id if case else None)])

    async def relay_to_desk(self, ctx: TurnContext, text: str) -> None:
        turn = self.turn
        case = await turn.repos.cases.open_for_user(turn.user.id)
        if case is None:
            return
        turn.extra.append(self.engine._desk_notice(case, DeskEvent.CHILD_MESSAGE, text))

    async def escalate(
        self, ctx: TurnContext, *, category: str | None = None, risk: str | None = None
    ) -> None:
        await self.engine.escalate(self.turn, category=category, risk=risk)

    async def child_left(self, ctx: TurnContext) -> None:
        """The child ended the chat: the counsellor is told at once; a held case says so
        (and frees the counsellor's place), a waiting one stays in the queue as promised."""
        turn = self.turn
        case = await turn.repos.cases.open_for_user(turn.user.id)
        if case is not None:
            if await turn.repos.cases.mark_left(case.id):
                case.status = CaseStatus.LEFT
            await turn.repos.audit.record(
                "child_left", counsellor_id=None, case_id=case.id, detail=case.status
            )
            turn.extra.append(self.engine._desk_notice(case, DeskEvent.CHILD_LEFT, ""))
        turn.conv.case_id = None

    async def rate(self, ctx: TurnContext, rating: int | None, comment: str | None) -> None:
        turn = self.turn
        if turn.conv.case_id is None:
            return
        case = await turn.repos.cases.get(turn.conv.case_id)
        if case is not None:
            case.rating = rating
            case.rating_comment = comment
        turn.conv.case_id = None


__all__ = ["DialogEngine", "EngineConfig", "FlowModel"]


def _unlink_all(paths: list[str]) -> None:
    """Delete erased evidence files (a missing one is already gone)."""
    for path in paths:
        Path(path).unlink(missing_ok=True)
