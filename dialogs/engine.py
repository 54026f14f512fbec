"""The dialog engine: one inbound message in, the replies out, the conversation kept in storage.

`DialogEngine.handle` takes the flood limit (danger always gets through) and one unit of work
per update, retried while the database is briefly away; inside it the update id is recorded (a
repeat is ignored) and the turn goes through the pipeline of `dialogs.stages` (block → triage →
danger → check-in → commands → buttons → attachments → silence → the flow's machine). Danger
from any stage goes to the one safety policy (`dialogs.safety`); moves between flows are the
conversation machine's (`dialogs.conversation`), fired through `dialogs.moves.FlowMoves`; the
desk reaches a conversation only through `desk_trigger`. Every reply is written to the outbox
in the same transaction as the state change.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from dialogs import stages
from dialogs.catalogue import Catalogue, default_catalogue, normalise_locale
from dialogs.clock import utcnow
from dialogs.commands import GlobalCommands
from dialogs.flows import DANGER_PAYLOADS, FLOWS
from dialogs.flows.base import FlowModel, Option, TurnContext
from dialogs.flows.names import Flow, Start
from dialogs.messages import (
    DESK,
    Address,
    Attachment,
    DeskEvent,
    Inbound,
    Outbound,
    outbound_to_dict,
)
from dialogs.moves import FlowMoves
from dialogs.operations import DeskPolicy
from dialogs.ports import (
    CaseRecord,
    CaseStatus,
    ConversationRecord,
    KnowledgeSource,
    OutboxStore,
    SendsOnCommit,
    Stores,
    StoreUnavailable,
    Triage,
    UnitOfWork,
    UserRecord,
)
from dialogs.ratelimit import RateLimiter
from dialogs.safety import Danger, Decision, SafetyPolicy, Source, Where
from dialogs.stages import Stage
from dialogs.taxonomy import Risk
from dialogs.turn import Turn

log = logging.getLogger(__name__)

# What intake reads of a long text (characters, cut at a word) while deciding a flooder's
# update: about the model's first window (24 words). Triage takes about 1 ms per 100
# characters, and a flood's updates are taken in one after another, the other children's
# behind them; the rest is read later (`stages.READ`).
GLANCE_CHARS = 160
# The share of the loop's time the later reads of refused long texts may take while others'
# updates are waiting: after a read of d seconds, the next one starts no sooner than
# d / READ_SHARE - d later (at 0.25, three times as long). With nothing else waiting (`idle`)
# they go at once.
READ_SHARE = 0.25

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
        "console_options",  # the console channel's last shown buttons (bot/console.py)
    }
)
# Outbound.meta key of a reply said from memory while the database was away: the update was not
# handled (its journal entry stays open for recovery).
RETRY = "retry"
# `Outbound.meta` key of a reply written already claimed for this process's sender.
CLAIMED = "claimed"


async def write_outbox(
    outbox: OutboxStore, messages: Sequence[Outbound], sender: SendsOnCommit | None
) -> list[Outbound]:
    """Write replies to the outbox, in the caller's transaction (a turn's: a crash after commit
    loses no reply and a restart sends each one once), and return them with their `outbox_id`.
    A reply that `sender` will send at commit, to a chat with nothing older undelivered, is
    written claimed for it (`CLAIMED`): its turn has come, no second round trip asks."""
    until = utcnow() + sender.lease if sender is not None else None
    idle: dict[tuple[str, str], bool] = {}
    kept = []
    for message in messages:
        body = outbound_to_dict(message)
        chat = (message.to.channel, message.to.chat_id)
        live = until is not None and sender is not None and sender.live(chat[0])
        if live and until is not None and chat not in idle:
            # The chat's first reply of the turn learns whether the chat is idle as it is
            # written (one statement); the turn's later replies to it follow that answer.
            row_id, idle[chat] = await outbox.write_if_idle(
                *chat, body, message.case_id, claimed_until=until
            )
            claimed = until if idle[chat] else None
        else:
            claimed = until if live and idle[chat] else None
            row_id = await outbox.write(*chat, body, message.case_id, claimed_until=claimed)
        meta = {**message.meta, "outbox_id": str(row_id)}
        if claimed is not None:
            meta[CLAIMED] = "1"
        kept.append(replace(message, meta=meta))
    return kept


@dataclass(frozen=True)
class EngineConfig:
    default_locale: str = "ru"
    max_text: int = 4000
    max_attachment_bytes: int = 20 * 1024 * 1024
    silence_after: timedelta = timedelta(hours=6)
    minutes_per_case: int = 10
    article_chars: int = 1000  # one "read more" page of an article
    db_retries: int = 3
    flood_burst: int = 20
    flood_per_second: float = 1.0
    region: str = "ru"  # whose emergency contacts are shown (dialogs/data/contacts.yaml)


def _default_triage() -> Triage:
    from dialogs.triage import assess

    return assess


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
        # `urgent` at intake, by the flood stage and with no database: a text read once, kept
        # for the mailbox's backlog (2,000; 4,096 long texts as keys would hold about 33 MB).
        self._reads_as_danger = functools.lru_cache(maxsize=2048)(self._reads_as_danger_now)
        self.catalogue = catalogue or default_catalogue()
        self.config = config or EngineConfig()
        self.clock = clock
        self.moves = FlowMoves(kb, self.config.article_chars)
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._waiting: dict[tuple[str, str], int] = {}
        self.flood = stages.Flood(
            RateLimiter(self.config.flood_burst, self.config.flood_per_second),
            self.urgent, self.catalogue, self.config.default_locale, glance=self.glance,
        )
        # Later reads of refused long texts: one at a time, paced unless `idle` (the app's).
        self._reading, self._next_read = asyncio.Lock(), 0.0
        self.idle: Callable[[Inbound], bool] = lambda inbound: False
        # Work tried again, by kind ("database": an update; "deadlock": a desk action).
        self.retries: Counter[str] = Counter()
        self.safety = SafetyPolicy(
            region=self.config.region, hours=lambda: self.policy.config.hours
        )
        # Set by the app when its sender sends each turn's replies at commit (`_persist`).
        self.sends_on_commit: SendsOnCommit | None = None

    # ------------------------------------------------------------------ entry point
    async def handle(self, inbound: Inbound) -> list[Outbound]:
        """Handle one update. Never raises for bad input; a database outage gets a kind reply."""
        if inbound.flood == stages.READ:
            flood = await self._read_later(inbound)
        else:
            flood = self.flood(inbound)
        if flood is not None:
            return flood
        key = (str(inbound.channel), inbound.user_id)
        # One turn per user at a time in this process (the mailbox orders journalled updates;
        # this covers the rest). The lock is dropped only when nobody holds or waits for it.
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._waiting[key] = self._waiting.get(key, 0) + 1
        try:
            async with lock:
                return await self._handle_with_retries(inbound)
        finally:
            self._waiting[key] -= 1
            if not self._waiting[key]:
                del self._waiting[key]
                self._locks.pop(key, None)

    async def _handle_with_retries(self, inbound: Inbound) -> list[Outbound]:
        locale = normalise_locale(inbound.locale_hint, self.config.default_locale)
        delay = 0.2
        for attempt in range(self.config.db_retries):
            try:
                async with self.db.unit() as repos:
                    return await self._handle(repos, inbound)
            except StoreUnavailable:
                self.retries["database"] += 1
                log.warning("database error handling an update (attempt %d)", attempt + 1)
                await asyncio.sleep(delay)
                delay *= 2.5
        # The database stayed away. Safety first: a child in danger still gets the contacts.
        # Every reply is marked `retry`: the update was not handled, so its journal entry must
        # stay open and be handled again once the database is back.
        address = Address(str(inbound.channel), inbound.chat_id)
        replies = [Outbound(to=address, text=self.catalogue.t("error.retry", locale))]
        said = [*self.contacts_from_memory(inbound), *replies]
        return [replace(o, meta={**o.meta, RETRY: "1"}) for o in said]

    @property
    def limiter(self) -> RateLimiter:
        """The per-user token bucket of the flood limit."""
        return self.flood.limiter

    @limiter.setter
    def limiter(self, limiter: RateLimiter) -> None:
        self.flood.limiter = limiter

    def admit(self, inbound: Inbound) -> Inbound | None:
        """The flood limit at intake, before the journal: the update carrying its verdict, or
        None when it is refused beyond the flood's one "slow down" (the caller does not journal
        it; it would only be dropped when handled). Danger always gets through."""
        return self.flood.admit(inbound)

    def urgent(self, inbound: Inbound) -> bool:
        """Does this update go in the danger lane, ahead of ordinary work? Text that reads as
        danger on its own, or a button that means danger: an answer a flow declares as danger,
        or "not safe" / "talk to a person" after a check-in. Needs no database."""
        if inbound.payload is not None:
            return inbound.payload in DANGER_PAYLOADS or inbound.payload in stages.CheckIn.DANGER
        text = (inbound.text or "").strip()
        if not text:
            return False
        locale = normalise_locale(inbound.locale_hint, self.config.default_locale)
        return self._reads_as_danger(text, locale)

    def glance(self, inbound: Inbound) -> bool | None:
        """`urgent` at a glance, for the flood limit at intake: True when danger is seen, False
        when not and the whole text was read (a short one, a button), None when a long text's
        beginning (`GLANCE_CHARS`) shows none: only a whole read can tell."""
        text = (inbound.text or "").strip()
        if inbound.payload is not None or len(text) <= GLANCE_CHARS:
            return self.urgent(inbound)
        head = text[: GLANCE_CHARS + 1].rsplit(None, 1)[0]
        locale = normalise_locale(inbound.locale_hint, self.config.default_locale)
        return True if self._reads_as_danger(head, locale) else None

    async def _read_later(self, inbound: Inbound) -> list[Outbound] | None:
        """The flood's verdict on a refused long text stamped `stages.READ`: read whole now,
        one such read at a time and paced, so that the other children's turns are not held up
        by a flood of long texts; used up quietly unless the read finds danger."""
        loop = asyncio.get_running_loop()
        async with self._reading:
            wait = self._next_read - loop.time()
            if wait > 0 and not self.idle(inbound):
                await asyncio.sleep(wait)
            started = loop.time()
            try:
                flood = self.flood(inbound)
            finally:
                self.flood.read(inbound)
            took = loop.time() - started
            self._next_read = loop.time() + took * (1 - READ_SHARE) / READ_SHARE
        return flood

    def _forget_texts(self) -> None:
        """A user's /forget: the texts this process keeps in memory go too (the danger lane's
        and triage's; another worker's are evicted as new texts come)."""
        from dialogs.triage import forget

        self._reads_as_danger.cache_clear()
        forget()

    def _reads_as_danger_now(self, text: str, locale: str) -> bool:
        return bool(self.triage(text, locale).danger)

    def contacts_from_memory(self, inbound: Inbound) -> list[Outbound]:
        """What can be said with no database at all: the emergency contacts, when the update
        reads as danger (`urgent`: the words, or a button that means danger), else nothing."""
        if not self.urgent(inbound):
            return []
        locale = normalise_locale(inbound.locale_hint, self.config.default_locale)
        words = self.catalogue.t("safety.open.self", locale)
        contacts = self.safety.contacts(locale)
        address = Address(str(inbound.channel), inbound.chat_id)
        return [Outbound(to=address, text=f"{words}\n{contacts}")]

    async def _handle(self, repos: Stores, inbound: Inbound) -> list[Outbound]:
        if await stages.Repeat()(repos.inbox, inbound):
            return []
        locale = normalise_locale(inbound.locale_hint, self.config.default_locale)
        now = self.clock()
        user, conv = await repos.users.with_conversation(
            str(inbound.channel), inbound.user_id, inbound.chat_id, locale, now
        )
        if not user.locale_fixed and inbound.locale_hint:
            user.locale = locale
        seen = user.last_seen_at
        if seen is None or not now - timedelta(minutes=1) < seen <= now:
            user.last_seen_at = now  # to the minute: not one more write per message
        user.unreachable = False
        if conv is None:
            conv = await repos.conversations.for_user(user.id)
        if conv is None:
            conv = await repos.conversations.create(user.id, Flow.START, Start.ROLE)
        turn = self._turn(repos, user, conv)
        turn.inbound = inbound
        await self._run(turn, inbound)
        if user.id is not None and await repos.users.get(user.id) is not None:
            self._save(turn)
            await self._transcribe_bot(turn)
        out = turn.ctx.out
        if turn.danger:
            # Danger replies go ahead of every ordinary send (the pacer's urgent lane): all of
            # the turn's replies to the child (a first contact's privacy notice before the
            # contacts too), as a chat's replies go out in order.
            out = [replace(o, critical=True) if o.to == turn.ctx.address else o for o in out]
        return await write_outbox(repos.outbox, out + turn.extra, self.sends_on_commit)

    async def _transcribe_bot(self, turn: Turn, case_id: int | None = None) -> None:
        """What the bot told a child whose case is open (the numbers, the waiting notices,
        "a counsellor is here") goes into the transcript of that case (`case_id`, else the
        chat's), so the counsellor reads what the child read."""
        conv = turn.conv
        if case_id is None and conv.flow == Flow.COUNSELLING:
            case_id = conv.case_id
        if case_id is None:
            return
        for message in turn.ctx.out:
            if message.to == turn.ctx.address and message.text:
                await turn.repos.messages.add(
                    turn.user.id, "bot", message.text, case_id=case_id, created_at=self.clock()
                )

    def _turn(self, repos: Stores, user: UserRecord, conv: ConversationRecord) -> Turn:
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
        turn = Turn(repos=repos, user=user, conv=conv, ctx=ctx)
        ctx.services = _Services(self, turn)
        return turn

    def _save(self, turn: Turn) -> None:
        conv = turn.conv
        conv.data = dict(turn.ctx.data)
        conv.version = (conv.version or 0) + 1
        conv.updated_at = self.clock()
        if turn.ctx.data.get("role"):
            turn.user.role = str(turn.ctx.data["role"])

    # ------------------------------------------------------------------ one turn
    def stages(self) -> tuple[Stage, ...]:
        """The turn's pipeline (`dialogs.stages`), built from the engine's current parts."""
        moves, clock = self.moves, self.clock
        commands = GlobalCommands(
            moves, self._danger, self._choose, self._desk_notice, self._forget_texts)
        return (
            stages.Blocked(self.policy, self.urgent, clock),
            stages.Unsupported(moves),
            stages.Triaged(self.triage, self.config.max_text, clock),
            stages.DangerFound(self._danger, clock),
            stages.FirstContact(moves),
            stages.CheckIn(self.safety, self._flag_for_counsellor, clock),
            stages.Command(commands.command),
            stages.Pressed(commands.payload),
            stages.Attachments(moves, self.config.max_attachment_bytes),
            stages.Silence(self.config.silence_after, clock),
            stages.FlowStep(moves, self._choose),
        )

    async def _run(self, turn: Turn, inbound: Inbound) -> None:
        """The turn's stages, in order; the first that uses the update up ends the turn."""
        for stage in self.stages():
            if await stage(turn, inbound):
                return

    async def _flag_for_counsellor(self, turn: Turn) -> bool:
        """A counsellor has (or is about to have) the chat: the line reaches them flagged,
        instead of a check-in from the bot."""
        case = await turn.repos.cases.open_for_user(turn.user.id)
        if case is None:
            return False
        turn.extra.append(
            self._desk_notice(case, DeskEvent.CHILD_MESSAGE, turn.text, flags={"check_in": "1"})
        )
        turn.ctx.prompted = True
        await turn.acted_on()  # the counsellor has seen it
        return True

    async def _choose(self, turn: Turn, option: Option) -> None:
        """A button pressed (or its word typed). An answer the flow declares as danger goes
        to the safety policy, with the answer kept for the case."""
        if option.danger is None:
            await self.moves.trigger(turn, option.trigger, value=option.value)
            return
        spec, step = FLOWS[turn.conv.flow], self.moves.step(turn)
        turn.ctx.data[step.name] = option.value
        category = option.category
        if category is None:
            category = spec.danger_category(turn.ctx.data) if spec.danger_category else "other"
        about = "other" if turn.ctx.data.get("on_behalf") else "self"
        await self._danger(
            turn, Danger(source=Source(option.danger), category=category, about=about)
        )

    # ------------------------------------------------------------------ danger
    async def _open_or_reopen(self, turn: Turn) -> CaseRecord | None:
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

    async def _danger(self, turn: Turn, danger: Danger) -> None:
        """Every danger, from every source, goes to the one safety policy."""
        turn.danger = True
        await turn.acted_on()
        await self.safety.act(turn.ctx, _SafetyActions(self, turn), danger, self.clock())

    async def _open_or_raise(
        self, turn: Turn, danger: Danger, decision: Decision
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
            await self._raise(turn, case, danger, decision)
        waiting = case.status == CaseStatus.WAITING
        position = await turn.repos.cases.position(case) if waiting else 0
        turn.case_for_chat = case
        return int(case.id), int(position)

    async def _raise(
        self, turn: Turn, case: CaseRecord, danger: Danger, decision: Decision
    ) -> None:
        """Danger in a case already open: its risk raised (when higher), the danger's signals
        added, and the desk alerted with the line flagged."""
        raised = case.risk_rank > decision.risk.rank
        known = list(case.signals.get("signals", []))
        case.signals = {"signals": sorted(set(known) | set(danger.signals))}
        detail = f"{danger.source.value}: {', '.join(danger.signals) or danger.category}"
        if raised:
            case.risk, case.risk_rank = decision.risk.value, decision.risk.rank
            # The case is filed under what made it urgent (a question that turns into
            # self-harm is a self-harm case); the trail keeps what it was.
            if danger.category and danger.category != case.category:
                detail += f" (was {case.category})"
                case.category = danger.category
        await turn.repos.audit.record(
            "risk_raised" if raised else "danger_again",
            counsellor_id=None,
            case_id=case.id,
            detail=detail,
        )
        event = DeskEvent.CASE_RAISED if raised else DeskEvent.CHILD_MESSAGE
        turn.extra.append(
            self._desk_notice(case, event, danger.text, critical=True, flags=decision.flags))

    # ------------------------------------------------------------------ cases
    async def _open_case(
        self,
        turn: Turn,
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

    def _enter_counselling(self, turn: Turn, case: CaseRecord) -> None:
        """Into the counsellor queue (or chat) for ``case``: the conversation machine's
        hand-over, keeping where the child was to come back to."""
        self.moves.hand_over(turn, case)

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
        self, turn: Turn, *, category: str | None = None, risk: str | None = None
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
            self.moves.attach_buttons(turn)
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
        self.moves.attach_buttons(turn)

    async def _say_waiting(self, turn: Turn, case: CaseRecord, *, again: bool) -> None:
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
                self.moves.move(turn, "blocked")
            return []
        if trigger == "closed":
            # A counsellor has heard all of it: triage's context starts afresh.
            turn.ctx.data["triage_acted_on"] = await repos.messages.last_id(turn.user.id)
        if conv.flow != Flow.COUNSELLING or conv.case_id != case.id:
            self._outside_chat(turn, case, trigger)
        else:
            turn.ctx.prompted = False
            if trigger in self.moves.machines[Flow.COUNSELLING].get_triggers(conv.state):
                await self.moves.trigger(turn, trigger)
        await self._transcribe_bot(turn, case.id)
        self._save(turn)
        return turn.ctx.out

    async def _case_turn(self, repos: Stores, case: CaseRecord) -> Turn | None:
        """A turn on the conversation of the case's child (None: the child erased it)."""
        user = await repos.users.get(case.user_id) if case.user_id is not None else None
        if user is None:
            return None
        conv = await repos.conversations.for_case(case.id)
        if conv is None:
            conv = await repos.conversations.for_user(user.id)
        return self._turn(repos, user, conv) if conv is not None else None

    def _outside_chat(self, turn: Turn, case: CaseRecord, trigger: str) -> None:
        """The desk acted on a case whose child is elsewhere (the menu, another flow)."""
        if trigger == "taken":
            self._enter_counselling(turn, case)
            turn.ctx.switch = None
            turn.ctx.say(turn.ctx.t("counselling.connected"))
            self.moves.attach_buttons(turn)
        elif trigger == "closed":
            # The child left the chat earlier: still ask for a rating, gently.
            self.moves.move(turn, "closed_away", case=case)
            self.moves.prompt(turn)


class _SafetyActions:
    """The engine's side of the safety policy's port (`dialogs.safety.SafetyActions`)."""

    def __init__(self, engine: DialogEngine, turn: Turn) -> None:
        self.engine = engine
        self.turn = turn

    async def open_or_raise(self, danger: Danger, decision: Decision) -> tuple[int, int]:
        return await self.engine._open_or_raise(self.turn, danger, decision)

    def where(self) -> Where:
        return stages.where(self.turn)

    def say(self, text: str) -> None:
        self.turn.ctx.say(text)

    def enter_chat(self) -> None:
        case = self.turn.case_for_chat
        if case is not None:
            self.engine._enter_counselling(self.turn, case)
            self.engine.moves.attach_buttons(self.turn)


class _Services:
    """What flows may ask of the engine during a turn (the `Services` protocol)."""

    def __init__(self, engine: DialogEngine, turn: Turn | None = None) -> None:
        self.engine = engine
        self._turn = turn

    @property
    def turn(self) -> Turn:
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
                self.engine.moves.show_article(self.turn, article)
        if not shown:
            ctx.say(ctx.t("report.advice.none"))

    async def answer_question(self, ctx: TurnContext, query: str) -> bool:
        audience = "parent" if ctx.is_parent else "child"
        hits = self.engine.kb.search(query, ctx.locale, audience, 3)
        if not hits:
            ctx.data["hits"] = []
            return False
        ctx.data["hits"] = [h.article.id for h in hits]
        return self.engine.moves.show_article(self.turn, hits[0].article, intro="question.answer")

    async def other_answers(self, ctx: TurnContext) -> None:
        ids = list(ctx.data.get("hits", []))[1:]
        articles = [a for a in (self.engine.kb.get(i, ctx.locale) for i in ids) if a]
        if not articles:
            ctx.say(ctx.t("question.others.none"))
            self.engine.moves.attach_buttons(self.turn)
            return
        ctx.say(ctx.t("question.others.list"))
        for article in articles:
            self.engine.moves.show_article(self.turn, article)
        self.engine.moves.prompt(self.turn)

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

