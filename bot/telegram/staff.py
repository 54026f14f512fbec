"""The staff group's router: counsellors' buttons, commands and messages in case topics.

Only registered counsellors (`Desk.identify("telegram", <Telegram user id>)`) may press a button or
run a command; anyone else is refused and nothing changes. A thin translator: a button or a command
becomes a desk command (`dialogs.desk`) for `Desk.execute`, which checks it against the one
permission table; this module only renders the result (with `TelegramDesk`).

While a counsellor holds a case, what they write in its topic (text, photo, document) reaches the
child as the bot's own message: no name, no account, no "forwarded from".

With several staff groups, updates come from each of them (and from no other chat), and a case is
acted on only from its own group: a topic is found by (group, thread), since thread ids are per
group and collide across groups, and a button naming a case of another group is refused.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol

from aiogram import F, Router
from aiogram.enums import ContentType
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest, TelegramForbiddenError
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message

from bot.console import parse_until
from bot.delivery import DeliveryError
from bot.telegram.desk import TelegramDesk, risk_up
from bot.telegram.inbound import attachments_of
from bot.telegram.limits import MAX_TEXT, keyboard
from bot.telegram.locks import KeyedLocks
from bot.telegram.sender import DESK_MESSAGE, TelegramSender
from dialogs.desk import (
    Block,
    ChangeRisk,
    Close,
    DeskCommand,
    Note,
    Release,
    ReplyCanned,
    Take,
    Transfer,
)
from dialogs.desk.rules import MIN_REASON_LETTERS
from dialogs.escalation import BLOCK_OUTCOME, DeskError, DeskResult
from dialogs.messages import Button, Channel
from dialogs.ports import CounsellorRecord as Counsellor
from dialogs.taxonomy import Risk, category_label, is_outcome
from storage.models import utcnow
from storage.repositories import Repos

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)

RELAYED = {ContentType.TEXT, ContentType.PHOTO, ContentType.DOCUMENT}
# What a person can post that is not relayed; anything else in the group is a service message
# (forum_topic_created, pinned_message, new_chat_members, ...) and is ignored.
NOT_RELAYED = {
    ContentType.STICKER, ContentType.VOICE, ContentType.AUDIO, ContentType.VIDEO,
    ContentType.VIDEO_NOTE, ContentType.ANIMATION, ContentType.LOCATION, ContentType.VENUE,
    ContentType.CONTACT, ContentType.POLL, ContentType.DICE,
}
DESK_COMMANDS = ("queue", "note", "close", "release", "risk", "reply", "transfer", "block")
QUEUE_SHOWN = 20
# With several groups /queue lists the group's own waiting cases: read this many to find them.
QUEUE_SCAN = 200


@dataclass(frozen=True, slots=True)
class Where:
    """Where a command came from, for rendering its result: the outcome picker whose button was
    pressed, or `/transfer queue`."""

    picker: int | None = None
    queue: bool = False


class _Answer(Protocol):
    """`await answer(text, alert)`: the reply to a button press (or to a command)."""

    async def __call__(self, text: str = "", alert: bool = False) -> None: ...


class StaffHandlers:
    def __init__(self, app: App, desk: TelegramDesk, sender: TelegramSender) -> None:
        self.app = app
        self.desk = desk
        self.sender = sender
        self.relayed = sender.relayed
        self.t = desk.t
        # What counsellors write in one topic is handled in the order they wrote it: aiogram
        # runs updates as concurrent tasks, and a reply must not overtake the one before it.
        self._topics = KeyedLocks()

    # ------------------------------------------------------------------ who and where
    async def counsellor(self, user_id: int) -> Counsellor | None:
        return await self.app.desk.identify(str(Channel.TELEGRAM), str(user_id))

    async def case_of(self, message: Message) -> int | None:
        """The case whose topic the message is in (None in General or an unrelated topic): by
        the group and the thread, as thread ids are per group."""
        if not message.is_topic_message or message.message_thread_id is None:
            return None
        chat = message.chat.id
        async with self.app.db.single() as session:
            case = await Repos(session).cases.by_desk_topic(
                chat, message.message_thread_id, first=chat == self.desk.chat_id)
            return case.id if case is not None else None

    async def elsewhere(self, case_id: int, chat: int) -> bool:
        """The case lives in another staff group than `chat`: nothing of it is done from here.
        A case with no topic yet (no group) may be acted on from any group."""
        home = await self.desk.home_of(case_id)
        return home is not None and home != chat

    async def owner_name(self, case_id: int) -> str:
        async with self.app.db.single() as session:
            repos = Repos(session)
            case = await repos.cases.get(case_id)
            owner = await repos.counsellors.get(case.owner_id) if case and case.owner_id else None
            return owner.name if owner else "?"

    async def shown(self, case_id: int, rendering: Awaitable[None]) -> None:
        """Show a desk action in the group. The action itself is done (and the child told); a
        failure here only leaves the group behind, so it is logged with the case number."""
        try:
            await rendering
        except TelegramAPIError as exc:
            log.error("case %s: the staff group was not updated: %s", case_id, exc.message)
        except DeliveryError as exc:  # topic_pending: another worker is making the topic
            log.error("case %s: the staff group was not updated: %s", case_id, exc.kind)

    async def error_text(self, result: DeskResult) -> str:
        error = result.error or DeskError.NO_CASE
        if error is DeskError.TAKEN and result.case_id is not None:
            return self.t("desk.error.taken", name=await self.owner_name(result.case_id))
        if error is DeskError.WEAK_REASON:
            return self.t("desk.error.weak_reason", n=MIN_REASON_LETTERS)
        return self.t(f"desk.error.{error.value}")

    # ------------------------------------------------------------------ one way to act
    async def run(self, counsellor: Counsellor, command: DeskCommand, answer: _Answer,
                  where: Where | None = None) -> DeskResult:
        """A thin translator: the command goes to `Desk.execute`; a refusal is answered with
        its text, a success delivered and shown in the group."""
        result = await self.app.desk.execute(counsellor, command)
        if not result.ok:
            await self.refused(command, result, answer)
            return result
        await self.app.delivery.deliver(result.outbound)
        await self.rendered(counsellor, command, result, answer, where or Where())
        return result

    async def refused(self, command: DeskCommand, result: DeskResult, answer: _Answer) -> None:
        if result.error is DeskError.BAD_RISK:
            await answer(self.t("desk.risk.usage"), True)
        elif result.error is DeskError.NO_CANNED:
            keys = ", ".join(c.key for c in self.app.desk.canned_replies())
            await answer(await self.error_text(result) + f" ({keys})", True)
        elif result.error is DeskError.CONFIRM_BLOCK:
            await answer()
            await self.shown(command.case_id, self.ask_block_confirmation(command.case_id))
        else:
            await answer(await self.error_text(result), True)

    async def ask_block_confirmation(self, case_id: int) -> None:
        """The staff group's confirm step for a block where the child may be the victim."""
        card = await self.desk.load(case_id)
        category = category_label(card.category, self.desk.locale) if card else "?"
        button = Button(self.t("desk.button.block_confirm"), f"dk|bok|{case_id}")
        await self.desk.post_with_buttons(
            case_id, self.t("desk.block.confirm", category=category), ((button,),))

    async def rendered(self, counsellor: Counsellor, command: DeskCommand, result: DeskResult,
                       answer: _Answer, where: Where) -> None:
        """What the group shows after a command went through."""
        n = command.case_id
        match command:
            # The card, the topic and the pinned alert follow from the desk event the command
            # published (`Desk.execute`), as they do when it was done on another desk.
            case Take():
                await answer(self.t("desk.taken.over" if result.over_capacity
                                    else "desk.taken.you"))
            case Release():
                await answer(self.t("desk.transfer.done", name="queue") if where.queue
                             else "")
            case Close():
                await answer()
                await self.shown(n, self.desk.settle_picker(n, where.picker))
            case ChangeRisk():
                await answer()
            case Note():
                await answer(self.t("desk.note.saved"))
            case ReplyCanned():
                await answer(self.t("desk.reply.sent"))
            case Transfer(to=target):
                await answer(self.t("desk.transfer.done", name=target))
            case Block():
                await answer(self.t("desk.block.done"))
            case _:
                await answer()

    # ------------------------------------------------------------------ buttons
    async def on_button(self, query: CallbackQuery) -> None:
        answered = False

        async def answer(text: str = "", alert: bool = False) -> None:
            nonlocal answered
            if answered:
                return
            answered = True
            try:
                await query.answer(text or None, show_alert=alert or None)
            except TelegramBadRequest as exc:  # the query is too old: nothing left to answer
                log.info("callback query not answered: %s", exc.message)

        try:
            await self._button(query, answer)
        finally:
            await answer()

    async def _button(self, query: CallbackQuery, answer: _Answer) -> None:
        counsellor = await self.counsellor(query.from_user.id)
        if counsellor is None:
            await answer(self.t("desk.error.not_staff"), True)
            return
        parts = (query.data or "").split("|")
        if len(parts) < 3 or parts[0] != "dk" or not parts[2].isdigit():
            await answer(self.t("desk.stale"))
            return
        action, case_id = parts[1], int(parts[2])
        if query.message is None:
            await answer(self.t("desk.stale"))
            return
        if await self.elsewhere(case_id, query.message.chat.id):
            await answer(self.t("desk.other_group"), True)
            return
        pressed = query.message if isinstance(query.message, Message) else None
        pressed_id = pressed.message_id if pressed is not None else None
        if action == "close":
            card = await self.desk.load(case_id)
            if card is None or card.status == "closed":
                await answer(self.t("desk.error.closed"))
                return
            await answer()
            await self.shown(case_id, self.desk.show_outcomes(case_id))
            return
        if action == "down":
            await answer(self.t("desk.risk.lower_hint"), True)
            return
        command = await self.button_command(counsellor, action, case_id, parts[3:], answer)
        if command is None:
            return
        where = Where(picker=pressed_id if action == "out" else None)
        await self.run(counsellor, command, answer, where)

    async def button_command(self, counsellor: Counsellor, action: str, case_id: int,
                             rest: list[str], answer: _Answer) -> DeskCommand | None:
        """A pressed button as a desk command (None: answered already, nothing to run)."""
        if action in ("take", "qtake"):
            return Take(case_id)
        if action == "release":
            return Release(case_id)
        if action == "out" and rest:
            if not is_outcome(rest[0]):
                await answer(self.t("desk.error.bad_outcome"), True)
                await self.shown(case_id, self.desk.show_outcomes(case_id))
                return None
            return Close(case_id, rest[0])
        if action == "up":
            card = await self.desk.load(case_id)
            level = risk_up(card.risk) if card else None
            if card is None or level is None:
                await answer(self.t("desk.risk.top" if card else "desk.error.no_case"))
                return None
            return ChangeRisk(case_id, level.value, "")
        if action == "bok":
            pending = await self.app.desk.pending_block(counsellor, case_id)
            if pending is None:
                await answer(self.t("desk.stale"), True)
            return pending
        await answer(self.t("desk.stale"))
        return None

    # ------------------------------------------------------------------ commands
    async def on_command(self, message: Message, command: CommandObject) -> None:
        async with self._topics.hold(_topic_key(message)):
            await self._command(message, command)

    async def _command(self, message: Message, command: CommandObject) -> None:
        if message.from_user is None or message.from_user.is_bot:
            return
        counsellor = await self.counsellor(message.from_user.id)
        if counsellor is None:
            await message.reply(self.t("desk.error.not_staff"))
            return
        name, args = command.command.lower(), (command.args or "").strip()
        if name == "queue":
            await self.show_queue(message)
            return
        case_id = await self.case_of(message)
        if case_id is None:
            await message.reply(self.t("desk.no_case"))
            return

        async def answer(text: str = "", alert: bool = False) -> None:
            if text:
                await message.reply(text)

        parsed = self.command_of(name, case_id, args)
        if isinstance(parsed, str):
            if parsed == "outcomes":
                await self.shown(case_id, self.desk.show_outcomes(case_id))
            else:
                await message.reply(self.t(parsed, keys=", ".join(
                    c.key for c in self.app.desk.canned_replies())))
            return
        if isinstance(parsed, Close) and not is_outcome(parsed.outcome) and (
                parsed.outcome != BLOCK_OUTCOME):
            await answer(self.t("desk.error.bad_outcome"))
            await self.shown(case_id, self.desk.show_outcomes(case_id))
            return
        queue = name == "transfer" and isinstance(parsed, Release)
        await self.run(counsellor, parsed, answer, Where(queue=queue))

    def command_of(self, name: str, case_id: int, args: str) -> DeskCommand | str:
        """A staff command in a case topic as a desk command, or the key of its usage text
        ("outcomes": show the outcome picker)."""
        first, _, rest = args.partition(" ")
        rest = rest.strip()
        if name == "note":
            return Note(case_id, args) if args else "desk.note.usage"
        if name == "close":
            return Close(case_id, first) if args else "outcomes"
        if name == "release":
            return Release(case_id)
        if name == "risk":
            if first.lower() not in Risk._value2member_map_:
                return "desk.risk.usage"
            return ChangeRisk(case_id, first.lower(), rest)
        if name == "reply":
            # A reviewed canned reply, in the child's language: /reply KEY
            return ReplyCanned(case_id, first) if first else "desk.reply.usage"
        if name == "transfer":
            # /transfer NAME [note] to a colleague, or /transfer queue [note] back to the queue.
            target = first.lstrip("@")
            if not target:
                return "desk.transfer.usage"
            return (Release(case_id, rest) if target.lower() == "queue"
                    else Transfer(case_id, target, rest))
        if name == "block":
            return self.block_of(case_id, args)
        return "desk.no_case"

    def block_of(self, case_id: int, args: str) -> DeskCommand | str:
        """/block 7d REASON: the user of this case, for abuse of the line (supervisors). A date
        is the help line's wall time."""
        until_text, _, reason = args.partition(" ")
        zone = self.app.desk.config.hours.zone
        until = parse_until(until_text, utcnow(), zone) if until_text else None
        if until is None or not reason.strip():
            return "desk.block.usage"
        return Block(case_id, reason.strip(), until)

    async def show_queue(self, message: Message) -> None:
        """The waiting cases, most urgent first: with several groups, those of this group (and
        any with no topic yet), each group having its own counsellors."""
        if len(self.desk.chat_ids) == 1:
            cases = await self.app.desk.queue(limit=QUEUE_SHOWN)
        else:
            cases = await self.app.desk.queue(limit=QUEUE_SCAN)
            async with self.app.db.session() as session:
                places = await Repos(session).desk.desk_places([c.id for c in cases])
            here = message.chat.id
            cases = [c for c in cases
                     if self.desk.home_in(*places.get(c.id, (None, None))) in (here, None)]
            cases = cases[:QUEUE_SHOWN]
        if not cases:
            await message.reply(self.t("desk.queue.empty"))
            return
        lines = [self.t("desk.queue.title")]
        lines.extend(
            self.t("desk.queue.line", case=c.id, category=c.category,
                   risk=self.desk._risk(c.risk), minutes=c.waiting_minutes)
            for c in cases
        )
        buttons = tuple(
            (Button(f"{self.t('desk.button.take')} #{c.id}", f"dk|qtake|{c.id}"),)
            for c in cases[:8]
        )
        await message.reply("\n".join(lines)[:MAX_TEXT], reply_markup=keyboard(buttons))

    # ------------------------------------------------------------------ messages in topics
    async def on_message(self, message: Message) -> None:
        """A counsellor writing in a case topic: relayed to the child, without their name."""
        async with self._topics.hold(_topic_key(message)):
            await self._message(message)

    async def _message(self, message: Message) -> None:
        user = message.from_user
        if user is None or user.is_bot:
            return
        kind = message.content_type
        if kind not in RELAYED and kind not in NOT_RELAYED:
            return  # a service message: forum_topic_created, pinned_message, ...
        if (message.text or "").startswith("/"):
            return  # a command this router does not know, never relayed to a child
        case_id = await self.case_of(message)
        if case_id is None:
            return  # the General topic is the staff's own room
        counsellor = await self.counsellor(user.id)
        if counsellor is None:
            await message.reply(self.t("desk.error.not_staff"))
            return
        if kind in NOT_RELAYED:
            await message.reply(self.t("desk.not_relayable"))
            return
        text = message.text if message.text is not None else (message.caption or "")
        result = await self.app.desk.reply(counsellor, case_id, text, attachments_of(message))
        if not result.ok:
            await message.reply(await self.error_text(result))
            return
        # Through the outbox like every message to a child: a failure is retried, never lost.
        # The staff message id travels along so an edit can be relayed later (Telegram only).
        out = [replace(o, meta={**o.meta, DESK_MESSAGE: str(message.message_id)})
               for o in result.outbound]
        await self.app.delivery.deliver(out)
        if not any(o.to.channel == Channel.TELEGRAM for o in out):
            return  # VK, console: their own senders deliver the text and the file references
        if self.relayed.get(message.message_id) is not None:
            return
        permanent = self.sender.undelivered.pop(message.message_id, None)
        if permanent is False:
            log.warning("counsellor message not delivered yet, the outbox retries (case %s)",
                        case_id)
            await message.reply(self.t("desk.not_delivered"))
        # permanent: the child blocked the bot; the desk is told by an UNREACHABLE notice.

    async def on_edit(self, message: Message) -> None:
        """A counsellor edited a relayed message: edit the child's copy where Telegram allows."""
        async with self._topics.hold(_topic_key(message)):
            await self._edit(message)

    async def _edit(self, message: Message) -> None:
        user = message.from_user
        if user is None or user.is_bot or message.content_type not in RELAYED:
            return
        if (message.text or "").startswith("/"):
            return
        case_id = await self.case_of(message)
        if case_id is None:
            return
        counsellor = await self.counsellor(user.id)
        if counsellor is None:
            return
        target = self.relayed.get(message.message_id)
        text = message.text if message.text is not None else (message.caption or "")
        if (target is None or target.case_id != case_id or not await self._holds(counsellor,
                                                                                  case_id)
                or (not target.media and (len(target.message_ids) != 1 or len(text) > MAX_TEXT))):
            await message.reply(self.t("desk.edit.not_relayed"))
            return
        chat_id, message_id = int(target.chat_id), target.message_ids[-1]
        try:
            if target.media:
                await self.sender.bot.edit_message_caption(
                    chat_id=chat_id, message_id=target.message_ids[0], caption=text or None)
            else:
                await self.sender.bot.edit_message_text(text, chat_id=chat_id,
                                                        message_id=message_id)
        except TelegramForbiddenError:
            await self.sender.blocked(target.chat_id, case_id)
            return
        except TelegramBadRequest as exc:
            if "not modified" not in exc.message.lower():
                log.warning("counsellor edit not relayed (case %s): %s", case_id, exc.message)
                await message.reply(self.t("desk.edit.not_relayed"))
            return
        # The transcript keeps what the child saw: the edit is recorded next to the original.
        await self.app.desk.note(counsellor, case_id, self.t("desk.edit.note", text=text))

    async def _holds(self, counsellor: Counsellor, case_id: int) -> bool:
        async with self.app.db.session() as session:
            case = await Repos(session).cases.get(case_id)
        if case is None or case.status != "active":
            return False
        return case.owner_id == counsellor.id or counsellor.role == "supervisor"


def _topic_key(message: Message) -> tuple[int, int]:
    """A topic across groups: thread ids are per group."""
    return message.chat.id, message.message_thread_id or 0


def staff_router(handlers: StaffHandlers, chat_ids: int | Sequence[int]) -> Router:
    """Everything from the staff groups, and nothing else, goes to these handlers."""
    chats = {chat_ids} if isinstance(chat_ids, int) else set(chat_ids)
    router = Router(name="telegram-staff")
    router.message.filter(F.chat.id.in_(chats))
    router.edited_message.filter(F.chat.id.in_(chats))
    router.callback_query.filter(F.message.chat.id.in_(chats))
    router.message.register(handlers.on_command, Command(*DESK_COMMANDS))
    router.message.register(handlers.on_message)
    router.edited_message.register(handlers.on_edit)
    router.callback_query.register(handlers.on_button)
    return router
