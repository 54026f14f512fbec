"""The console channel: a child's chat and a counsellor's desk in a terminal, on one database.

The two sides may run in two processes: what the desk sends to a console child goes through the
database outbox, which the chat polls.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import TextIO

from bot.app import App
from bot.delivery import DeliveryError
from dialogs.escalation import CaseSummary, CaseView, DeskError, DeskResult
from dialogs.messages import (
    DESK,
    Button,
    Channel,
    Inbound,
    Outbound,
)
from dialogs.taxonomy import categories, category_label, outcomes
from storage.models import Counsellor, utcnow
from storage.repositories import Repos

CONSOLE = str(Channel.CONSOLE)


class ConsoleDeskLog:
    """The console desk has no push channel: it reads the queue and transcripts when asked."""

    async def send(self, message: Outbound) -> None:
        return None


def _render(message: Outbound) -> tuple[str, list[Button]]:
    buttons = [b for row in message.buttons for b in row]
    return message.plain_text, buttons


class ConsoleSender:
    """The console channel's `Sender`: prints what reaches one terminal user and keeps it
    (so a test reads it like a child would). Messages for another console user stay in the
    outbox for their own terminal."""

    def __init__(self, user: str, out: TextIO = sys.stdout) -> None:
        self.user = user
        self.out = out
        self.received: list[Outbound] = []
        self.buttons: list[Button] = []

    async def send(self, message: Outbound) -> None:
        if message.to.chat_id != self.user:
            raise DeliveryError("another_terminal")
        self.received.append(message)
        text, buttons = _render(message)
        prefix = "bot> " if message.case_id is None else "counsellor> "
        print(prefix + text.replace("\n", "\n     "), file=self.out, flush=True)
        if buttons:
            self.buttons = buttons


class ConsoleChat:
    """`helpline chat`: type text, or the number or label of a button. A real channel: lines
    go through the same journal and engine as Telegram and VK updates, and replies come back
    through `Delivery` to the `ConsoleSender`."""

    def __init__(
        self, app: App, user: str = "local", locale: str | None = None, out: TextIO = sys.stdout
    ) -> None:
        self.app = app
        self.user = user
        self.locale = locale or app.settings.default_locale
        self.out = out
        self.sender = ConsoleSender(user, out)
        app.delivery.register(CONSOLE, self.sender)

    @property
    def buttons(self) -> list[Button]:
        return self.sender.buttons

    def _inbound(self, line: str) -> Inbound:
        stripped = line.strip()
        payload = None
        if self.buttons:
            if (
                stripped.isascii()
                and stripped.isdigit()
                and 1 <= int(stripped) <= len(self.buttons)
            ):
                payload = self.buttons[int(stripped) - 1].payload
            else:
                for b in self.buttons:
                    if b.label.casefold() == stripped.casefold():
                        payload = b.payload
        return Inbound(
            channel=Channel.CONSOLE,
            user_id=self.user,
            chat_id=self.user,
            text=None if payload else stripped,
            payload=payload,
            locale_hint=self.locale,
            update_id=f"console-{uuid.uuid4().hex}",
        )

    async def send_line(self, line: str) -> None:
        """One typed line: journalled, handled and answered like any channel's update."""
        await self.app.accept(self._inbound(line))
        await self.app.drain()

    async def poll_outbox(self) -> None:
        """Deliver what a counsellor (maybe in another process) sent to this user."""
        await self.app.delivery.flush_due()

    async def run(self, stream: TextIO = sys.stdin, poll: float = 1.0) -> None:
        interactive = stream.isatty()
        if interactive:
            print("Help-line chat. Type a message, a button's number, or /quit.", file=self.out)
        loop = asyncio.get_running_loop()
        reader: asyncio.Task[str] | None = None
        while True:
            if not interactive:
                line = stream.readline()
                if not line:
                    break
                if line.strip():
                    await self.send_line(line)
                await self.poll_outbox()
                continue
            if reader is None:
                reader = asyncio.ensure_future(loop.run_in_executor(None, stream.readline))
            done, _ = await asyncio.wait({reader}, timeout=poll)
            await self.poll_outbox()
            if not done:
                continue
            line = reader.result()
            reader = None
            if not line or line.strip() in ("/quit", "/exit"):
                break
            if line.strip():
                await self.send_line(line)


DESK_HELP = """commands:
  queue                     waiting cases, highest risk first
  mine                      cases you hold
  all                       every open case, waiting and held (supervisors)
  view N                    a case's answers and transcript (audited)
  take N                    take case N (up to {capacity} at once)
  reply N TEXT              write to the child of case N
  reply N /KEY              send a canned reply in the child's language (see 'canned')
  canned                    the canned replies
  note N TEXT               a private note, never sent to the child
  risk N LEVEL NOTE         raise or lower risk (critical/high/medium/low)
  category N KEY            correct the category: {categories}
  transfer N NAME [NOTE]    hand case N to a colleague (supervisors: any open case)
  release N [NOTE]          back to the queue, with a note for the next counsellor
  close N OUTCOME           close with an outcome: {outcomes}
  block N UNTIL REASON      block the user of case N for abuse; UNTIL is 30m, 12h, 7d, 2w
                            or a date/time (YYYY-MM-DD[THH:MM], UTC); the case closes
  unblock N                 lift that block
  audit N                   who saw and did what on case N
  hours                     opening hours now, and who is on call
  sweep                     re-announce unanswered cases and update waiting children now
  quit"""

ERRORS = {
    DeskError.NOT_STAFF: "you are not a registered counsellor",
    DeskError.NO_CASE: "there is no such case",
    DeskError.TAKEN: "someone else holds this case (or it changed meanwhile)",
    DeskError.NOT_YOURS: "this case is not yours to act on",
    DeskError.CHILD_LEFT: "the child ended the chat: close the case with an outcome",
    DeskError.BAD_OUTCOME: "unknown outcome; type 'help' for the list",
    DeskError.BAD_RISK: "unknown risk level, or lowering the risk without a note",
    DeskError.CLOSED: "the case is closed",
    DeskError.CHILD_GONE: "the child has erased their data",
    DeskError.AT_CAPACITY: "the limit of cases held at once is reached; release, transfer or "
    "close one first",
    DeskError.NO_COUNSELLOR: "there is no active counsellor by that name",
    DeskError.BAD_TRANSFER: "the case is already with that counsellor",
    DeskError.SUPERVISOR_ONLY: "only a supervisor may do this",
    DeskError.NO_CANNED: "there is no canned reply by that name",
    DeskError.BAD_BLOCK: "a block needs a reason and an expiry in the future",
    DeskError.NOT_BLOCKED: "the user of this case is not blocked",
    DeskError.BAD_CATEGORY: "unknown category; type 'help' for the list",
}
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_until(text: str, now: datetime) -> datetime | None:
    """'30m', '12h', '7d', '2w' from now, or an ISO date/time (UTC when no zone is given)."""
    text = text.strip().lower()
    if len(text) > 1 and text[-1] in _UNITS and text[:-1].isdecimal():
        return now + timedelta(**{_UNITS[text[-1]]: int(text[:-1])})
    try:
        moment = datetime.fromisoformat(text.upper())
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class ConsoleDesk:
    """`helpline desk --as NAME`: the counsellor's side in a terminal."""

    def __init__(self, app: App, counsellor: Counsellor, out: TextIO = sys.stdout) -> None:
        self.app = app
        self.counsellor = counsellor
        self.out = out
        self.locale = app.settings.default_locale
        self._seen: dict[int, int] = {}
        self._held: set[int] = set()
        self._swept: float = 0.0

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def _result(self, result: DeskResult, ok_text: str) -> None:
        if result.ok:
            self.say(ok_text)
            return
        reason = ERRORS.get(result.error, str(result.error)) if result.error else "refused"
        self.say(f"refused: {reason}" + (f" ({result.detail})" if result.detail else ""))

    def _view(self, view: CaseView) -> None:
        s = view.summary
        self.say(
            f"case #{s.id} · {category_label(s.category, self.locale)} · {s.risk.upper()}"
            f" · {s.status} · via {s.channel} · waited {s.waiting_minutes} min"
            + (f" · held by {s.owner}" if s.owner else "")
        )
        if view.signals:
            self.say(f"  danger signals: {', '.join(view.signals)}")
        for key, value in view.answers.items():
            self.say(f"  {key}: {value}")
        if view.attachments:
            self.say(f"  evidence: {len(view.attachments)} file(s)")
        for line in view.transcript:
            self.say(f"  [{line.at:%H:%M}] {line.sender}: {line.text}")

    def _list(self, cases: list[CaseSummary], *, owners: bool = False) -> None:
        if not cases:
            self.say("no cases")
        for s in cases:
            held = f" held by {s.owner}" if owners and s.owner else ""
            self.say(
                f"#{s.id}  {s.risk.upper():8} {s.category:18} via {s.channel:9}"
                f" {s.status:8} waited {s.waiting_minutes} min{held}"
            )

    def _help(self) -> str:
        return DESK_HELP.format(
            outcomes=", ".join(outcomes()),
            categories=", ".join(categories()),
            capacity=self.app.desk.config.capacity,
        )

    async def _deliver(self, result: DeskResult) -> None:
        await self.app.delivery.deliver(result.outbound)

    async def command(self, line: str) -> bool:
        """Run one desk command; False when the counsellor quits."""
        parts = line.strip().split(maxsplit=2)
        if not parts:
            return True
        verb = parts[0].lower()
        args = parts[1:]
        desk = self.app.desk
        c = self.counsellor
        try:
            case_id = int(args[0]) if args else None
        except ValueError:
            self.say("a case number is needed, e.g. 'take 12'")
            return True
        rest = args[1].strip() if len(args) == 2 else ""
        if verb in ("quit", "exit"):
            return False
        if verb == "help":
            self.say(self._help())
        elif verb == "queue":
            cases = await desk.queue()
            if not cases:
                self.say("the queue is empty")
            for s in cases:
                self.say(
                    f"#{s.id}  {s.risk.upper():8} {s.category:18} via {s.channel:9}"
                    f" waiting {s.waiting_minutes} min"
                )
        elif verb == "mine":
            for s in await desk.held(c):
                self.say(f"#{s.id}  {s.risk.upper():8} {s.category}")
        elif verb == "all":
            everything = await desk.open_cases(c)
            if isinstance(everything, DeskError):
                self._result(DeskResult(ok=False, error=everything), "")
            else:
                self._list(everything, owners=True)
        elif verb == "canned":
            if case_id is not None and rest:
                result = await desk.reply_canned(c, case_id, rest)
                self._result(result, "sent")
                await self._deliver(result)
            else:
                for reply in desk.canned_replies():
                    self.say(f"/{reply.key:18} {reply.title(self.locale)}")
        elif verb == "hours":
            await self._hours()
        elif verb == "sweep":
            await self._sweep(force=True)
        elif case_id is None:
            self.say("a case number is needed")
        elif verb == "view":
            view = await desk.view(c, case_id)
            if isinstance(view, DeskError):
                self._result(DeskResult(ok=False, error=view), "")
            else:
                self._view(view)
        elif verb == "take":
            result = await desk.take(c, case_id)
            self._result(result, f"you hold case #{case_id}")
            await self._deliver(result)
            if result.ok:
                view = await desk.view(c, case_id)
                if not isinstance(view, DeskError):
                    self._view(view)
                    self._seen[case_id] = len(view.transcript)
        elif verb == "reply" and rest.startswith("/") and " " not in rest:
            result = await desk.reply_canned(c, case_id, rest[1:])
            self._result(result, f"sent the canned reply {rest}")
            await self._deliver(result)
        elif verb == "reply" and rest:
            result = await desk.reply(c, case_id, rest)
            self._result(result, "sent")
            await self._deliver(result)
        elif verb == "note" and rest:
            self._result(await desk.note(c, case_id, rest), "noted")
        elif verb == "risk" and rest:
            level, _, note = rest.partition(" ")
            self._result(await desk.set_risk(c, case_id, level.lower(), note), "risk changed")
        elif verb == "category" and rest:
            result = await desk.set_category(c, case_id, rest.lower())
            self._result(result, f"case #{case_id} is now {category_label(rest, self.locale)}")
        elif verb == "transfer" and rest:
            name, _, note = rest.partition(" ")
            result = await desk.transfer(c, case_id, name, note.strip())
            self._result(result, f"case #{case_id} handed to {name}")
            await self._deliver(result)
        elif verb == "release":
            result = await desk.release(c, case_id, rest)
            self._result(result, "released to the queue")
            await self._deliver(result)
        elif verb == "close" and rest:
            result = await desk.close(c, case_id, rest)
            self._result(result, f"case #{case_id} closed")
            await self._deliver(result)
        elif verb == "block" and rest:
            when, _, reason = rest.partition(" ")
            until = parse_until(when, utcnow())
            if until is None:
                self.say("refused: UNTIL is like 30m, 12h, 7d, 2w or 2026-12-31")
                return True
            result = await desk.block(c, case_id, reason, until)
            self._result(result, f"blocked until {until:%Y-%m-%d %H:%M} UTC; case closed")
            await self._deliver(result)
        elif verb == "unblock":
            self._result(await desk.unblock(c, case_id), "block lifted")
        elif verb == "audit":
            for at, who, action, detail in await desk.audit_trail(case_id):
                self.say(f"{at:%Y-%m-%d %H:%M:%S} {who or 'system':12} {action:14} {detail}")
        else:
            self.say("unknown command; type 'help'")
        return True

    async def _hours(self) -> None:
        desk = self.app.desk
        hours = desk.config.hours
        now = utcnow()
        if hours.always:
            self.say("the desk is open round the clock (no opening hours configured)")
        elif desk.is_open(now):
            closes = hours.closes_at(now)
            self.say(f"open now, until {closes:%H:%M} ({hours.zone.key})" if closes else "open")
        else:
            nxt = hours.next_open(now)
            when = f"{nxt:%a %Y-%m-%d %H:%M} ({hours.zone.key})" if nxt else "not within 60 days"
            self.say(f"closed now; opens {when}")
        on_call = await desk.on_call()
        self.say("on call: " + (", ".join(s.name for s in on_call) or "nobody (no supervisor)"))

    async def _sweep(self, *, force: bool = False) -> None:
        """Run the desk's sweep (the running bot does it every minute) and show its notices."""
        loop = asyncio.get_running_loop()
        if not force and loop.time() - self._swept < 60:
            return
        self._swept = loop.time()
        out = await self.app.desk.sweep()
        for message in out:
            if message.to.is_desk:
                mark = " [after hours, on-call]" if message.meta.get("page") else ""
                self.say(f"desk: {message.text}{mark}")
        children = sum(1 for m in out if not m.to.is_desk)
        if force:
            self.say(f"sweep: {len(out) - children} re-announced, {children} children updated")
        await self.app.delivery.deliver(out)

    async def poll(self) -> None:
        """Print new messages from children in the cases this counsellor holds, and what
        became of a held case the child left or erased."""
        held = await self.app.desk.held(self.counsellor)
        for s in held:
            view = await self._peek(s.id)
            seen = self._seen.get(s.id, 0)
            for line in view[seen:]:
                if line[0] == "child":
                    self.say(f"#{s.id} child: {line[1]}")
            self._seen[s.id] = len(view)
        now_held = {s.id for s in held}
        for case_id in sorted(self._held - now_held):
            await self._gone(case_id)
        self._held = now_held
        await self._sweep()

    async def _gone(self, case_id: int) -> None:
        """A case this counsellor held is no longer held: say why, at once."""
        async with self.app.db.session() as s:
            case = await Repos(s).cases.get(case_id)
        if case is None:
            return
        if case.status == "left":
            self.say(f"#{case_id}: the child ended the chat; close it with an outcome")
        elif case.outcome == "child-erased":
            self.say(f"#{case_id}: the child erased their data; the case is closed")

    async def _peek(self, case_id: int) -> list[tuple[str, str]]:
        # Polling the transcript of a case the counsellor holds is not a new read of the case.
        async with self.app.db.session() as s:
            return [(m.sender, m.text) for m in await Repos(s).messages.for_case(case_id)]

    async def run(self, stream: TextIO = sys.stdin, poll: float = 1.0) -> None:
        self.say(f"Desk for {self.counsellor.name}. Type 'help'.")
        loop = asyncio.get_running_loop()
        if not stream.isatty():
            for line in stream:
                if not await self.command(line):
                    break
            return
        reader: asyncio.Future[str] | None = None
        while True:
            if reader is None:
                reader = loop.run_in_executor(None, stream.readline)
            done, _ = await asyncio.wait({reader}, timeout=poll)
            await self.poll()
            if not done:
                continue
            line = reader.result()
            reader = None
            if not line or not await self.command(line):
                break


def attach_console(app: App) -> None:
    """The console desk reads the database itself; console users read their outbox rows (the
    chat process polls them), so the console registers no live sender."""
    app.delivery.register_desk(ConsoleDeskLog())


__all__ = ["DESK", "ConsoleChat", "ConsoleDesk", "attach_console"]
