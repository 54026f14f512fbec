"""The counsellors' desk in Telegram forum supergroups: one topic per case.

A new case becomes a topic named "#42 · cyberbullying · HIGH", opened by a card (the child's
answers, what they wrote, the evidence, and buttons: Take, Close, risk up/down) and the evidence
files themselves. What the child writes later is copied into the topic. Critical cases are also
announced in the General topic and pinned until someone takes them.

Several staff groups (TELEGRAM_STAFF_CHAT_ID lists them; Telegram lets a bot post 20 messages a
minute in one group): a case lives in one group, chosen when its first topic is made (the group
with the fewest open cases, ties to the first) and stored on the case row (`desk_chat_id`) by the
same claim that makes the topic, so no two workers put one case in two groups. Everything of the
case happens in its group: topic, card, posts, files, renames, its announcement and pin in that
group's General topic, a re-created topic. A case with a topic and no stored group was made before
groups were kept: it lives in the first group.

The card is the bot's own rendering of a case, read through the repositories (not `Desk.view`,
which is a counsellor's audited read) and audited as "card_posted" with no counsellor. It never
shows the child's account: only the case number, category, risk, answers and evidence.

A topic deleted by accident is created again, with its card, the next time something is posted for
its case (Telegram answers "message thread not found" for a deleted topic).

Exactly once, across restarts and workers: nothing of the desk lives in a worker's memory. The
case row holds the topic, the card's message id, the critical announcement's message id and when
it was pinned, and every operation reads them afresh. Whatever would be a duplicate if done twice
(a topic with its card, an announcement) is claimed first with a compare-and-set UPDATE of the
case row (`desk_topic_claimed_at`, `desk_announcement_claimed_at`: only the worker whose UPDATE
changed the row goes on); the Bot API call follows and its id is saved at once, in its own short
transaction, under the same claim. So:

- A worker that finds someone else's fresh claim on a topic does not create one: the notice is
  retried later (`DeliveryError("topic_pending")`) and by then finds the topic saved.
- A claimer that was slow and lost its claim (older than `CLAIM_STALE`, taken over) cannot save:
  it deletes the topic or announcement it just made, so the group sees one.
- A claimer that died after its claim and before its call leaves a claim that turns stale after
  `CLAIM_STALE`; the next worker then does the work: nothing is duplicated, only delayed.
- A claimer killed exactly between Telegram's answer and the save (one UPDATE) leaves a topic
  (empty: its card comes after the save) or an unpinned announcement nobody knows of, and the
  next worker makes another after `CLAIM_STALE`. Telegram lets a bot neither list topics nor
  make a call conditional, so this window can be made small, not closed.
- A call that Telegram refused (4xx) gives its claim back at once; a network error or a 5xx
  keeps it (the call may have been done) until it turns stale.
- Unpinning is a compare-and-set too (`clear_announcement`): one worker unpins and edits it. An
  announcement saved just as its case was taken is unpinned by its own poster, who looks at
  the case again after pinning.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramServerError,
)
from aiogram.types import BufferedInputFile, InlineKeyboardMarkup, Message

from bot.delivery import DeliveryError
from bot.evidence import read_evidence
from bot.pacing import Pacer
from bot.telegram.limits import MAX_TEXT, MAX_TOPIC_NAME, keyboard, split_text
from bot.telegram.locks import KeyedLocks
from dialogs.catalogue import Catalogue, default_catalogue
from dialogs.desk.times import desk_datetime
from dialogs.escalation import BLOCK_OUTCOME
from dialogs.messages import DESK, Attachment, Button, Channel, ContentKind, DeskEvent, Outbound
from dialogs.taxonomy import Risk, category_label, outcome_label, outcomes
from storage.models import utcnow
from storage.repositories import Repos

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)

T = TypeVar("T")
RISK_ORDER = (Risk.CRITICAL, Risk.HIGH, Risk.MEDIUM, Risk.LOW)
# Conversation keys that are bookkeeping, not answers.
HIDDEN_ANSWERS = {"hits", "locale"}
TRANSCRIPT_LINES = 10
ANSWER_CHARS = 300
# A claim on a case's topic or announcement older than this was left by a worker that died:
# another may take it over. Longer than a Bot API call takes, short enough for a new case.
CLAIM_STALE = timedelta(seconds=60)
# File name endings of kept documents uploaded to a topic (the name a counsellor downloads).
_ENDINGS = {"application/pdf": ".pdf", "image/png": ".png", "image/jpeg": ".jpg",
            "text/plain": ".txt"}
ERASED = "child-erased"  # the outcome of a case whose child erased their data (/forget)
# Does the post in hand go ahead of the staff group's queue? Desk notices of a critical case (a
# danger line, the alert) do, and so does what answers a counsellor's own action (the outcome
# picker, a confirmation); other notices wait their turn. Both stay within the group's budget
# (`bot.pacing`): an urgent post takes the next free token, before the ordinary ones.
_URGENT: ContextVar[bool] = ContextVar("telegram_desk_urgent", default=True)


def thread_gone(exc: TelegramBadRequest) -> bool:
    """Telegram's answer when a message is sent to a deleted forum topic."""
    text = exc.message.lower()
    return "thread not found" in text or "topic_deleted" in text or "topic_id_invalid" in text


def refused(exc: TelegramAPIError) -> bool:
    """Telegram answered and did nothing (4xx): a network error or a 5xx may hide a done call."""
    return not isinstance(exc, TelegramNetworkError | TelegramServerError)


def topic_pending() -> DeliveryError:
    """Another worker is making the case's topic: the notice is retried later, in order."""
    return DeliveryError("topic_pending")


async def _child_wrote(repos: Repos, case_id: int) -> tuple[str, ...]:
    """The child's last lines in the case, for its card."""
    wrote = [m.text for m in await repos.messages.for_case(case_id)
             if m.sender == "child" and m.text]
    return tuple(wrote[-TRANSCRIPT_LINES:])


def risk_up(risk: str) -> Risk | None:
    """The next higher risk level, or None at the top."""
    level = Risk(risk) if risk in Risk._value2member_map_ else Risk.MEDIUM
    index = RISK_ORDER.index(level)
    return RISK_ORDER[index - 1] if index > 0 else None


@dataclass(frozen=True, slots=True)
class EvidenceFile:
    id: int
    kind: str
    file_ref: str
    size: int | None
    stored: bool
    channel: str


@dataclass
class CaseCard:
    """What the card shows of a case, and the desk's messages for it as the case row had them
    when it was read (mutable: the topic id changes when a topic is re-created)."""

    id: int
    category: str
    risk: str
    status: str
    channel: str
    created_at: datetime
    owner: str | None
    outcome: str | None
    answers: dict[str, Any]
    signals: tuple[str, ...]
    thread: int | None
    files: tuple[EvidenceFile, ...]
    card_message: int | None = None
    # The staff group as stored (None: no topic yet, or made before groups were kept).
    chat: int | None = None
    announcement: int | None = None
    announcement_pinned: bool = False
    # What the child wrote in the case (the last lines), read only when the card is rendered.
    child_wrote: tuple[str, ...] | None = None


class TelegramDesk:
    """Desk notices -> the staff forums; and the card and topic operations of the staff router."""

    def __init__(
        self,
        bot: Bot,
        app: App,
        chat_ids: int | Sequence[int],
        *,
        texts: Catalogue,
        locale: str,
        evidence_max_bytes: int,
        pacer: Pacer | None = None,
    ) -> None:
        self.bot = bot
        # Telegram lets a bot post 20 messages a minute in a group: every post in the staff
        # group takes a token from the group's bucket (shared by the workers with PostgreSQL).
        self.pacer = pacer
        self.app = app
        self.chat_ids = (chat_ids,) if isinstance(chat_ids, int) else tuple(chat_ids)
        if not self.chat_ids:
            raise ValueError("a Telegram desk needs at least one staff group")
        self.texts = texts
        self.locale = locale
        self.evidence_max_bytes = evidence_max_bytes
        self.labels = default_catalogue()
        # Serialises a case's desk operations within this process; across processes the
        # claims on the case row do (see the module's docstring).
        self._locks = KeyedLocks()
        self.clock: Callable[[], datetime] = utcnow

    def t(self, key: str, **values: object) -> str:
        text = self.texts.t(key, self.locale)
        return text.format(**values) if values else text

    # ------------------------------------------------------------------ the case's group
    @property
    def chat_id(self) -> int:
        """The first staff group: where cases made before groups were kept live."""
        return self.chat_ids[0]

    def home_in(self, chat: int | None, thread: int | None) -> int | None:
        """The staff group of a case stored with the group `chat` and the topic `thread`: its
        stored group, else the first for a topic made before groups were kept; None while it
        has neither (no topic yet)."""
        if chat is not None:
            return chat
        return self.chat_id if thread is not None else None

    def home(self, card: CaseCard) -> int | None:
        return self.home_in(card.chat, card.thread)

    def _group(self, card: CaseCard) -> int:
        """The group of a case whose topic exists (`_thread` made it, and chose its group)."""
        home = self.home(card)
        return home if home is not None else self.chat_id

    async def home_of(self, case_id: int) -> int | None:
        """The staff group the case lives in (None: no topic yet, or no such case)."""
        async with self.app.db.single() as session:
            case = await Repos(session).cases.get(case_id)
        return None if case is None else self.home_in(case.desk_chat_id, case.desk_thread_id)

    async def _emptiest_group(self) -> int:
        """Where a case's first topic goes: the group with the fewest open cases, ties to the
        first listed."""
        if len(self.chat_ids) == 1:
            return self.chat_id
        async with self.app.db.session() as session:
            counts = await Repos(session).desk.open_cases_per_group()
        loads = {chat: counts.get(chat, 0) for chat in self.chat_ids}
        loads[self.chat_id] += counts.get(None, 0)  # made before groups were kept
        return min(self.chat_ids, key=lambda chat: loads[chat])  # min keeps the first of ties

    # ------------------------------------------------------------------ desk notices
    async def send(self, message: Outbound) -> None:
        """A desk notice from the engine (the `Sender` of desk channels)."""
        if message.case_id is None:
            log.error("desk notice without a case (%s)", message.desk_event)
            return
        urgent = _URGENT.set(message.critical)
        try:
            async with self._locks.hold(message.case_id):
                await self._notice(message.case_id, message)
        finally:
            _URGENT.reset(urgent)

    async def send_batch(self, messages: Sequence[Outbound]) -> None:
        """Lines a child wrote while their case's topic was busy (`bot.delivery.mergeable`,
        oldest first): one post in the topic instead of one each, so a busy line stays within
        the group's 20 posts a minute. Each line keeps its flag (danger, check-in)."""
        case_id = messages[0].case_id
        if case_id is None or any(m.case_id != case_id for m in messages):
            for message in messages:
                await self.send(message)
            return
        urgent = _URGENT.set(any(m.critical for m in messages))
        try:
            async with self._locks.hold(case_id):
                card = await self.load(case_id)
                if card is None or card.thread is None:  # not the busy topic it was
                    for message in messages:
                        await self._notice(case_id, message)
                    return
                await self._ensure_card(card)
                await self._post(card, "\n\n".join(self._child_line(m) for m in messages))
                if (any(m.critical for m in messages) and card.status == "waiting"
                        and card.risk == Risk.CRITICAL.value):
                    await self._announce(card)
        finally:
            _URGENT.reset(urgent)

    async def _pace(self, chat: int) -> None:
        """Wait for the staff group's next free post (at once for an urgent one)."""
        if self.pacer is not None:
            await self.pacer.wait(str(chat), urgent=_URGENT.get())

    async def _notice(self, case_id: int, message: Outbound) -> None:
        card = await self.load(case_id)
        if card is None:
            log.error("desk notice for a case that does not exist (case %s)", case_id)
            return
        event = message.desk_event
        if card.outcome == ERASED and not (event is DeskEvent.CHILD_LEFT
                                           and message.text == "/forget"):
            log.info("case %s: erased by the child, desk notice dropped", case_id)
            return  # its topic is gone with the child's data: nothing re-creates it
        if card.thread is None and event is not DeskEvent.CASE_OPENED:
            card = await self._after_opening(card, message)
        if event is DeskEvent.CASE_OPENED:
            await self._thread(card)  # the topic, with its card
        await self._ensure_card(card)  # nothing to do unless a worker died before posting it
        await self._show(card, message)
        urgent = message.critical or event in (DeskEvent.CASE_OPENED, DeskEvent.CASE_RAISED)
        if urgent and card.risk == Risk.CRITICAL.value and card.status == "waiting":
            await self._announce(card)

    async def _show(self, card: CaseCard, message: Outbound) -> None:
        """What a notice adds to the case's topic (an opening adds nothing to its card)."""
        event = message.desk_event
        if event is DeskEvent.CASE_OPENED:
            return
        if event is DeskEvent.CASE_RAISED:
            await self._rename(card)
            await self._post(card, self.t("desk.raised", risk=self._risk(card.risk)))
            await self._post_child(card, message)
            await self._refresh(card)
        elif event is DeskEvent.CHILD_MESSAGE:
            await self._post_child(card, message)
        elif event is DeskEvent.CHILD_LEFT and message.text == "/forget":
            await self._erased(card)
        elif event is DeskEvent.CHILD_LEFT:
            await self._post(card, self.t("desk.child_left"))
        elif event is DeskEvent.UNREACHABLE:
            await self._post(card, self.t("desk.unreachable"))
        elif event in _DONE_BY_COUNSELLOR:
            await _DONE_BY_COUNSELLOR[event](self, card, message.meta)
        elif message.text:
            await self._post(card, self.t("desk.updated", text=message.text))

    async def _after_opening(self, card: CaseCard, message: Outbound) -> CaseCard:
        """A notice for a case with no topic yet. If an earlier notice of the case (the one that
        opens its topic) is still undelivered, another worker may be creating the topic right
        now: retry later, in order, rather than create a second one (the KeyedLocks serialise a
        case within one process only). Otherwise read the case again: the topic may have been
        made since (it is stored before its notice is marked delivered)."""
        outbox_id = message.meta.get("outbox_id")
        async with self.app.db.session() as session:
            oldest = await Repos(session).outbox.pending(DESK, str(card.id), limit=1)
        if outbox_id is not None and oldest and oldest[0].id < int(outbox_id):
            raise DeliveryError("topic_pending")  # temporary: the outbox retries it in order
        return await self.load(card.id) or card

    # ------------------------------------------------------------------ /forget
    async def _erased(self, card: CaseCard) -> None:
        """The child erased their data: the case's topic goes with everything copied into it
        (their words, their files, the card), the critical alert is unpinned, and the group
        is told in General at once, with the case number only."""
        chat = self._group(card)
        urgent = _URGENT.set(True)  # the holder must hear of it now
        try:
            await self._unannounce(card, self.t("desk.critical.erased", case=card.id))
            if card.thread is not None:
                await self._delete_topic(card, chat, card.thread)
            await self._pace(chat)
            await self.bot.send_message(chat, self.t("desk.erased", case=card.id))
        finally:
            _URGENT.reset(urgent)

    async def _delete_topic(self, card: CaseCard, chat: int, thread: int) -> None:
        try:
            await self.bot.delete_forum_topic(chat, thread)
        except TelegramBadRequest as exc:
            if thread_gone(exc):
                return  # deleted already (a repeat of this notice)
            log.error("case %s: the erased child's topic was not deleted (%s): give the bot "
                      "the 'Delete messages' administrator right", card.id, exc.message)
            await self._post(card, self.t("desk.child_forgot"))
        except TelegramForbiddenError as exc:
            log.error("case %s: the erased child's topic was not deleted (%s)", card.id,
                      exc.message)

    # ------------------------------------------------------------------ what counsellors did
    # Published once by `Desk.execute`, whichever desk the counsellor used (this group, the web
    # console, the terminal), and rendered here from the case's notices, in order.
    async def _taken(self, card: CaseCard, meta: dict[str, str]) -> None:
        name = meta.get("by", "?")
        await self._refresh(card)
        await self._post(card, self.t("desk.taken", name=name))
        await self._unannounce(card, self._taken_by(card, name))

    async def _released(self, card: CaseCard, meta: dict[str, str]) -> None:
        await self._refresh(card)
        await self._post(card, self.t("desk.released", name=meta.get("by", "?")))
        if card.risk == Risk.CRITICAL.value:
            await self._announce(card)

    async def _closed(self, card: CaseCard, meta: dict[str, str]) -> None:
        name = meta.get("by", "?")
        await self._refresh(card)
        outcome = outcome_label(meta.get("outcome", ""), self.locale)
        await self._post(card, self.t("desk.closed", name=name, outcome=outcome))
        await self._unannounce(card, self._taken_by(card, name))
        if card.thread is not None:
            try:
                await self.bot.close_forum_topic(self._group(card), card.thread)
            except TelegramBadRequest as exc:
                log.info("case %s: topic not closed (%s)", card.id, exc.message)

    async def _risk_changed(self, card: CaseCard, meta: dict[str, str]) -> None:
        await self._rename(card)
        await self._refresh(card)
        await self._post(card, self.t("desk.risk.changed", old=self._risk(meta.get("old", "")),
                                      new=self._risk(card.risk), name=meta.get("by", "?")))
        if card.risk == Risk.CRITICAL.value and card.status == "waiting":
            await self._announce(card)

    async def settle_picker(self, case_id: int, message_id: int | None) -> None:
        """The outcome picker a counsellor used loses its buttons (the close itself is posted
        with the case's other news, `_closed`)."""
        if message_id is None:
            return
        chat = await self.home_of(case_id) or self.chat_id
        try:
            await self.bot.edit_message_reply_markup(chat_id=chat, message_id=message_id,
                                                     reply_markup=None)
        except TelegramBadRequest as exc:
            log.info("case %s: the outcome picker kept its buttons (%s)", case_id, exc.message)

    async def show_outcomes(self, case_id: int) -> None:
        """Post the outcome picker in the case's topic."""
        async with self._locks.hold(case_id):
            card = await self.load(case_id)
            if card is None:
                return
            # "Abusive contact (blocked)" is a supervisor's /block, not an outcome to pick.
            buttons = [Button(outcome_label(o, self.locale), f"dk|out|{case_id}|{o}")
                       for o in outcomes() if o != BLOCK_OUTCOME]
            rows = tuple(tuple(buttons[i:i + 2]) for i in range(0, len(buttons), 2))
            await self._post(card, self.t("desk.close.pick"), keyboard(rows))

    async def post(self, case_id: int, text: str) -> None:
        """A line of text in the case's topic (re-created if it was deleted)."""
        async with self._locks.hold(case_id):
            card = await self.load(case_id)
            if card is not None:
                await self._post(card, text)

    async def post_with_buttons(self, case_id: int, text: str,
                                buttons: tuple[tuple[Button, ...], ...]) -> None:
        """A question in the case's topic with its buttons (e.g. confirm a block)."""
        async with self._locks.hold(case_id):
            card = await self.load(case_id)
            if card is not None:
                await self._post(card, text, keyboard(buttons))

    # ------------------------------------------------------------------ reading a case
    async def load(self, case_id: int) -> CaseCard | None:
        """The case as the card shows it, read through the repositories (audit: `_audit`)."""
        async with self.app.db.single() as session:
            repos = Repos(session)
            case = await repos.cases.get(case_id)
            if case is None:
                return None
            owner = await repos.counsellors.get(case.owner_id) if case.owner_id else None
            files = tuple(
                EvidenceFile(a.id, a.kind, a.file_ref, a.size, bool(a.stored_path), a.channel)
                for a in await repos.attachments.for_case(case_id)
            )
            return CaseCard(
                id=case.id, category=case.category, risk=case.risk, status=case.status,
                channel=case.channel, created_at=case.created_at,
                owner=owner.name if owner else None, outcome=case.outcome,
                answers=dict(case.answers or {}),
                signals=tuple(case.signals.get("signals", [])) if case.signals else (),
                thread=case.desk_thread_id, files=files,
                card_message=case.desk_card_message_id, chat=case.desk_chat_id,
                announcement=case.desk_announcement_message_id,
                announcement_pinned=case.desk_announcement_pinned_at is not None,
            )

    async def _with_transcript(self, card: CaseCard) -> CaseCard:
        if card.child_wrote is None:
            async with self.app.db.single() as session:
                card.child_wrote = await _child_wrote(Repos(session), card.id)
        return card

    async def _audit(self, case_id: int, detail: str) -> None:
        async with self.app.db.single() as session:
            await Repos(session).audit.record("card_posted", counsellor_id=None,
                                              case_id=case_id, detail=detail)

    # ------------------------------------------------------------------ rendering
    def _risk(self, risk: str) -> str:
        if risk in Risk._value2member_map_:
            return Risk(risk).label(self.locale)
        return risk.upper()

    def size_limit(self) -> str:
        """The evidence size limit for people: "20 MB", or "1 KB" for a tiny test limit."""
        mib = 1024 * 1024
        if self.evidence_max_bytes >= mib:
            return self.t("desk.size.mb", n=self.evidence_max_bytes // mib)
        return self.t("desk.size.kb", n=-(-self.evidence_max_bytes // 1024))

    def topic_name(self, card: CaseCard) -> str:
        return self.t("desk.topic", case=card.id, category=card.category,
                      risk=card.risk.upper())[:MAX_TOPIC_NAME]

    def render(self, card: CaseCard) -> tuple[str, InlineKeyboardMarkup | None]:
        """The card's text (within one message) and its buttons for the case's status."""
        lines = [self.t("desk.card.head", case=card.id,
                        category=category_label(card.category, self.locale),
                        risk=self._risk(card.risk), channel=card.channel,
                        opened=desk_datetime(card.created_at, self.app.desk.config.hours))]
        if card.status == "active":
            lines.append(self.t("desk.status.active", name=card.owner or "?"))
        elif card.status == "left":
            lines.append(self.t("desk.status.left", name=card.owner or "?"))
        elif card.status == "closed":
            lines.append(self.t("desk.status.closed",
                                outcome=outcome_label(card.outcome or "", self.locale)))
        else:
            lines.append(self.t("desk.status.waiting"))
        answers = {k: v for k, v in card.answers.items() if k not in HIDDEN_ANSWERS}
        lines.append("")
        if answers:
            lines.append(self.t("desk.card.answers"))
            lines.extend(f"• {self._answer_key(k)}: {self._answer_value(k, v)}"
                         for k, v in answers.items())
        else:
            lines.append(self.t("desk.card.no_answers"))
        if card.signals:
            lines.append(self.t("desk.card.signals", signals=", ".join(card.signals)))
        if card.child_wrote:
            lines.append("")
            lines.extend(self.t("desk.child", text=_clip(text, ANSWER_CHARS))
                         for text in card.child_wrote)
        if card.files:
            lines.append("")
            lines.append(self.t("desk.card.evidence", count=len(card.files),
                                kept=sum(1 for f in card.files if f.stored)))
            over = sum(1 for f in card.files
                       if f.size is not None and f.size > self.evidence_max_bytes)
            if over:
                lines.append(self.t("desk.card.evidence_over", count=over,
                                    limit=self.size_limit()))
        text = _clip("\n".join(lines), MAX_TEXT)
        return text, keyboard(self._buttons(card))

    def _buttons(self, card: CaseCard) -> tuple[tuple[Button, ...], ...]:
        def b(key: str, action: str) -> Button:
            return Button(self.t(key), f"dk|{action}|{card.id}")

        risk_row = (b("desk.button.raise", "up"), b("desk.button.lower", "down"))
        if card.status == "waiting":
            return ((b("desk.button.take", "take"),), risk_row)
        if card.status == "active":
            return ((b("desk.button.close", "close"), b("desk.button.release", "release")),
                    risk_row)
        return ()

    def _answer_key(self, key: str) -> str:
        name = f"desk.answer.{key}"
        return self.t(name) if self.texts.has(name) else key

    def _answer_value(self, key: str, value: object) -> str:
        if isinstance(value, bool):
            return self.labels.t("answer.yes" if value else "answer.no", self.locale)
        if isinstance(value, list | tuple):
            return _clip("; ".join(str(v) for v in value), ANSWER_CHARS)
        text = str(value)
        for name in (f"report.{key}.{text}", f"answer.{text}", f"{key}.{text}"):
            if self.labels.has(name):
                return self.labels.t(name, self.locale)
        return _clip(text, ANSWER_CHARS)

    # ------------------------------------------------------------------ the topic
    async def _thread(self, card: CaseCard) -> int:
        if card.thread is not None:
            return card.thread
        return await self._open_topic(card, gone=None)

    async def _open_topic(self, card: CaseCard, gone: int | None) -> int:
        """A topic for the case (`gone`: the deleted one it replaces), opened by its card and the
        evidence files: made by one worker only, its id saved right after Telegram's answer.
        The group is the case's own (a re-created topic stays in it), or for a first topic the
        emptiest, stored by the claim itself. Its two posts (the topic, the card) are paced
        before the claim, so that a long wait for the group's turn never turns the claim stale."""
        home = self.home(card)
        chat = home if home is not None else await self._emptiest_group()
        await self._pace(chat)
        await self._pace(chat)
        claim = await self._claim_topic(card.id, gone, chat=chat)
        if claim is None:  # claimed by another worker, or placed in another group meanwhile
            return await self._topic_made_elsewhere(card, gone)
        card.chat = chat
        try:
            topic = await self.bot.create_forum_topic(chat, self.topic_name(card))
        except TelegramAPIError as exc:
            if refused(exc):
                await self._release_topic(card.id, claim)
            raise
        thread = topic.message_thread_id
        async with self.app.db.session() as session:
            repos = Repos(session)
            saved = await repos.desk.save_topic(card.id, claim, thread)
            if saved and card.child_wrote is None:  # the card's, read in the same transaction
                card.child_wrote = await _child_wrote(repos, card.id)
        if not saved:
            await self._drop_topic(chat, card.id, thread)
            return await self._topic_made_elsewhere(card, gone)
        card.thread, card.card_message = thread, None
        what = "topic re-created" if gone is not None else "topic created"
        await self._post_card(card, claim, what)
        log.info("case %s: %s", card.id, what)
        await self._send_evidence(card)
        return thread

    async def _claim_topic(self, case_id: int, thread: int | None, *, chat: int | None = None,
                           card: bool = False) -> datetime | None:
        """The claim (its timestamp) on making the case's topic in the group `chat` (`card`:
        only the card of the topic `thread`), or None if another worker holds a fresh one or
        did it already, or the case lives in another group."""
        now = self.clock()
        async with self.app.db.single() as session:
            repos = Repos(session)
            if card and thread is not None:
                claimed = await repos.desk.claim_card(case_id, thread, now, now - CLAIM_STALE)
            else:
                claimed = await repos.desk.claim_topic(case_id, thread, now, now - CLAIM_STALE,
                                                       chat=chat)
        return now if claimed else None

    async def _release_topic(self, case_id: int, claim: datetime) -> None:
        async with self.app.db.session() as session:
            await Repos(session).desk.release_topic(case_id, claim)

    async def _topic_made_elsewhere(self, card: CaseCard, gone: int | None) -> int:
        """Another worker holds the claim: its topic if it is saved by now, else retry later."""
        fresh = await self.load(card.id)
        if fresh is None or fresh.thread is None or fresh.thread == gone:
            raise topic_pending()
        card.thread, card.card_message, card.chat = fresh.thread, fresh.card_message, fresh.chat
        return fresh.thread

    async def _drop_topic(self, chat: int, case_id: int, thread: int) -> None:
        """A topic made under a claim that was lost meanwhile: another worker makes the case's
        topic, so this one goes (best effort: a bot needs the right to delete messages)."""
        log.warning("case %s: a topic claim was taken over, deleting topic %s", case_id, thread)
        try:
            await self.bot.delete_forum_topic(chat, thread)
        except TelegramAPIError as exc:
            log.error("case %s: duplicate topic %s not deleted (%s)", case_id, thread,
                      exc.message)

    async def _post_card(self, card: CaseCard, claim: datetime, what: str) -> None:
        """Post the card in the case's topic under the topic claim, and end the claim."""
        assert card.thread is not None
        text, markup = self.render(await self._with_transcript(card))
        try:
            posted = await self.bot.send_message(self._group(card), text,
                                                 message_thread_id=card.thread,
                                                 reply_markup=markup)
        except TelegramAPIError as exc:
            if refused(exc):
                await self._release_topic(card.id, claim)
            raise
        async with self.app.db.single() as session:
            saved = await Repos(session).desk.save_card(card.id, claim, posted.message_id)
        if saved:
            card.card_message = posted.message_id
        else:
            log.warning("case %s: the card claim was taken over (card %s)", card.id,
                        posted.message_id)
        await self._audit(card.id, what)

    async def _ensure_card(self, card: CaseCard) -> None:
        """The case's topic has no card (its maker died before posting it): post it once."""
        if card.thread is None or card.card_message is not None:
            return
        await self._pace(self._group(card))
        claim = await self._claim_topic(card.id, card.thread, card=True)
        if claim is not None:
            await self._post_card(card, claim, "card posted")

    async def _send_evidence(self, card: CaseCard) -> None:
        elsewhere = 0
        for f in card.files:
            if f.channel != Channel.TELEGRAM:
                if not await self._upload_kept(card, f.file_ref):
                    elsewhere += 1
                continue
            over = f.size is not None and f.size > self.evidence_max_bytes
            att = Attachment(ContentKind(f.kind) if f.kind in ContentKind._value2member_map_
                             else ContentKind.DOCUMENT, f.file_ref, f.size)
            await self._send_file(card, att, self._file_caption(over))
        if elsewhere:
            await self._post(card, self.t("desk.child.files_elsewhere", count=elsewhere,
                                          channel=card.channel))

    async def _upload_kept(self, card: CaseCard, file_ref: str) -> bool:
        """Upload the kept (decrypted) copy of a file a child sent on another channel, so the
        topic shows it as it shows a Telegram child's. False when no copy is kept (over the
        size limit, or its download failed): the topic then says how many files are elsewhere."""
        async with self.app.db.session() as session:
            rows = await Repos(session).attachments.for_case(card.id)
        kept = next((a for a in rows if a.file_ref == file_ref and a.stored_path), None)
        if kept is None or kept.stored_path is None:
            return False
        try:
            data = await asyncio.to_thread(read_evidence, kept.stored_path)
        except (OSError, ValueError) as exc:
            log.warning("case %s: a kept file could not be read (%s)", card.id,
                        type(exc).__name__)
            return False
        ending = ".jpg" if kept.kind == ContentKind.PHOTO else _ENDINGS.get(kept.mime or "", "")
        upload = BufferedInputFile(data, filename=f"evidence-{kept.id}{ending}")
        caption = self._file_caption(False)

        async def call(chat: int, thread: int) -> Message:
            if kept.kind == ContentKind.PHOTO:
                return await self.bot.send_photo(chat, upload, caption=caption,
                                                 message_thread_id=thread)
            return await self.bot.send_document(chat, upload, caption=caption,
                                                message_thread_id=thread)

        await self._in_topic(card, call)
        return True

    def _file_caption(self, over_limit: bool) -> str:
        caption = self.t("desk.child.file")
        if over_limit:
            caption += "\n" + self.t("desk.child.over_limit", limit=self.size_limit())
        return caption

    async def _in_topic(self, card: CaseCard, call: Callable[[int, int], Awaitable[T]], *,
                        post: bool = True) -> T:
        """Run `call(chat, thread)` in the case's group and topic; if the topic was deleted,
        create it again (with its card, in the same group) once. `post`: the call posts a
        message, and waits for the group's turn first."""
        thread = await self._thread(card)
        chat = self._group(card)
        if post:
            await self._pace(chat)
        try:
            return await call(chat, thread)
        except TelegramBadRequest as exc:
            if not thread_gone(exc):
                raise
        log.warning("case %s: its topic was deleted, creating it again", card.id)
        thread = await self._open_topic(card, gone=thread)
        return await call(chat, thread)

    async def _post(self, card: CaseCard, text: str,
                    markup: InlineKeyboardMarkup | None = None) -> Message:
        parts = split_text(text)
        sent: Message | None = None
        for index, part in enumerate(parts):
            last = index == len(parts) - 1

            async def call(chat: int, thread: int, part: str = part,
                           last: bool = last) -> Message:
                return await self.bot.send_message(chat, part, message_thread_id=thread,
                                                   reply_markup=markup if last else None)

            sent = await self._in_topic(card, call)
        assert sent is not None
        return sent

    async def _send_file(self, card: CaseCard, att: Attachment, caption: str) -> Message:
        # By file id: the same bot's file ids work in any chat, no upload and no "forwarded from".
        async def call(chat: int, thread: int) -> Message:
            if att.kind is ContentKind.PHOTO:
                return await self.bot.send_photo(chat, att.file_ref, caption=caption,
                                                 message_thread_id=thread)
            return await self.bot.send_document(chat, att.file_ref, caption=caption,
                                                message_thread_id=thread)

        return await self._in_topic(card, call)

    async def _post_child(self, card: CaseCard, message: Outbound) -> None:
        """What the child wrote or sent, copied into the topic; a line triage or the safety
        policy marked is flagged so the counsellor cannot miss it."""
        if message.text:
            await self._post(card, self._child_line(message))
        if not message.attachments:
            return
        if card.channel != Channel.TELEGRAM:
            # Another channel's file ids mean nothing to Telegram: the kept copy is uploaded.
            missing = [a for a in message.attachments
                       if not await self._upload_kept(card, a.file_ref)]
            if missing:
                await self._post(card, self.t("desk.child.files_elsewhere",
                                              count=len(missing), channel=card.channel))
            return
        for att in message.attachments:
            over = att.size is not None and att.size > self.evidence_max_bytes
            await self._send_file(card, att, self._file_caption(over))

    def _child_line(self, message: Outbound) -> str:
        key = "desk.child"
        if message.meta.get("danger"):
            key = "desk.child.danger"
        elif message.meta.get("check_in"):
            key = "desk.child.check_in"
        return self.t(key, text=message.text)

    async def _rename(self, card: CaseCard) -> None:
        name = self.topic_name(card)

        async def call(chat: int, thread: int) -> bool:
            return await self.bot.edit_forum_topic(chat, thread, name=name)

        try:
            await self._in_topic(card, call, post=False)
        except TelegramBadRequest as exc:  # TOPIC_NOT_MODIFIED after a re-creation
            log.info("case %s: topic not renamed (%s)", card.id, exc.message)

    async def _refresh(self, card: CaseCard) -> None:
        """Edit the card to the case's current state; post it again if it cannot be edited."""
        target = card.card_message
        if target is None or card.thread is None:
            await self._thread(card)  # a new topic comes with its card
            await self._ensure_card(card)
            return
        text, markup = self.render(await self._with_transcript(card))
        try:
            await self.bot.edit_message_text(text, chat_id=self._group(card), message_id=target,
                                             reply_markup=markup)
            await self._audit(card.id, "card updated")
            return
        except TelegramBadRequest as exc:
            if "not modified" in exc.message.lower():
                return
            log.info("case %s: card not editable (%s), posting it again", card.id, exc.message)
        posted = await self._post(card, text, markup)
        async with self.app.db.session() as session:
            await Repos(session).desk.replace_card(card.id, card.card_message, posted.message_id)
        card.card_message = posted.message_id
        await self._audit(card.id, "card posted again")

    # ------------------------------------------------------------------ critical cases
    def topic_link(self, card: CaseCard) -> str:
        """A link to the case's topic in its group (only a supergroup's topics have one)."""
        home = self.home(card)
        chat = str(home)
        if home is None or not chat.startswith("-100") or card.thread is None:
            return ""
        return f"\nhttps://t.me/c/{chat[4:]}/{card.thread}"

    async def _announce(self, card: CaseCard) -> None:
        """Announce a critical case in the General topic of its group and pin it until someone
        takes it: once, whichever worker gets there first (the claim on the case row)."""
        now = self.clock()
        if card.announcement is not None:
            if not card.announcement_pinned:
                await self._pin_orphan(card, card.announcement, now)
            return
        await self._thread(card)  # the case's group is chosen with its topic
        chat = self._group(card)
        await self._pace(chat)
        async with self.app.db.single() as session:
            if not await Repos(session).desk.claim_critical_announcement(card.id, now,
                                                                         now - CLAIM_STALE):
                return  # announced, being announced, or no longer a waiting critical case
        posted = await self._post_announcement(card, chat, now)
        async with self.app.db.single() as session:
            saved = await Repos(session).desk.save_announcement(card.id, now, posted)
        if not saved:  # the claim was taken over: the other worker's announcement stands
            await self._drop_message(chat, card.id, posted)
            return
        await self._pin(chat, card.id, posted)
        await self._settle_announcement(card.id, posted)

    async def _post_announcement(self, card: CaseCard, chat: int, claim: datetime) -> int:
        text = self.t("desk.critical", title=self.topic_name(card), link=self.topic_link(card))
        take = keyboard(((Button(self.t("desk.button.take"), f"dk|take|{card.id}"),),))
        try:
            posted = await self.bot.send_message(chat, text, reply_markup=take)
        except TelegramAPIError as exc:
            if refused(exc):
                async with self.app.db.session() as session:
                    await Repos(session).desk.release_announcement(card.id, claim)
            raise
        return posted.message_id

    async def _pin_orphan(self, card: CaseCard, message_id: int, now: datetime) -> None:
        """Pin an announcement whose poster died between posting and pinning it (its claim is
        stale); one being pinned right now by a live worker is left to it."""
        async with self.app.db.session() as session:
            if not await Repos(session).desk.claim_pin(card.id, message_id, now,
                                                       now - CLAIM_STALE):
                return
        await self._pin(self._group(card), card.id, message_id)

    async def _pin(self, chat: int, case_id: int, message_id: int) -> None:
        try:
            await self.bot.pin_chat_message(chat, message_id, disable_notification=False)
        except (TelegramBadRequest, TelegramForbiddenError) as exc:
            log.error("case %s: the critical announcement was not pinned (%s): give the bot the "
                      "'Pin messages' administrator right in the staff group %s", case_id,
                      exc.message, chat)
            return
        async with self.app.db.single() as session:
            await Repos(session).desk.mark_pinned(case_id, message_id, self.clock())

    async def _settle_announcement(self, case_id: int, message_id: int) -> None:
        """Just pinned: if the case was taken meanwhile, whoever took it may have looked for the
        announcement before it was saved (or unpinned it before it was pinned): unpin it here."""
        card = await self.load(case_id)
        if card is None:
            return
        if card.announcement != message_id:
            await self._unpin(self._group(card), case_id, message_id)
        elif card.status != "waiting":
            await self._unannounce(card, self._taken_by(card, card.owner or "?"))

    def _taken_by(self, card: CaseCard, name: str) -> str:
        return self.t("desk.critical.taken", title=self.topic_name(card), name=name)

    async def _unannounce(self, card: CaseCard, line: str) -> None:
        """Unpin the case's announcement and replace its words with `line` (who took it, or
        that the child erased their data): once, by whichever worker takes it off the case
        row."""
        async with self.app.db.session() as session:
            repos = Repos(session)
            case = await repos.cases.get(card.id)
            current = case.desk_announcement_message_id if case is not None else None
            if current is None or not await repos.desk.clear_announcement(card.id, current):
                return  # none, or another worker is unpinning it
        chat = self._group(card)
        if await self._unpin(chat, card.id, current):
            await self._edit_announcement(card, chat, line, current)

    async def _unpin(self, chat: int, case_id: int, message_id: int) -> bool:
        try:
            await self.bot.unpin_chat_message(chat, message_id=message_id)
        except (TelegramBadRequest, TelegramForbiddenError) as exc:
            log.warning("case %s: the critical announcement was not unpinned (%s)", case_id,
                        exc.message)
            return False
        return True

    async def _edit_announcement(self, card: CaseCard, chat: int, line: str,
                                 message_id: int) -> None:
        try:
            await self.bot.edit_message_text(line, chat_id=chat, message_id=message_id)
        except (TelegramBadRequest, TelegramForbiddenError) as exc:
            log.warning("case %s: the critical announcement was not edited (%s)", card.id,
                        exc.message)

    async def _drop_message(self, chat: int, case_id: int, message_id: int) -> None:
        log.warning("case %s: an announcement claim was taken over, deleting message %s",
                    case_id, message_id)
        try:
            await self.bot.delete_message(chat, message_id)
        except TelegramAPIError as exc:
            log.error("case %s: duplicate announcement %s not deleted (%s)", case_id,
                      message_id, exc.message)


_DONE_BY_COUNSELLOR: dict[
    DeskEvent, Callable[[TelegramDesk, CaseCard, dict[str, str]], Awaitable[None]]
] = {
    DeskEvent.CASE_TAKEN: TelegramDesk._taken,
    DeskEvent.CASE_RELEASED: TelegramDesk._released,
    DeskEvent.CASE_CLOSED: TelegramDesk._closed,
    DeskEvent.RISK_CHANGED: TelegramDesk._risk_changed,
}


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
