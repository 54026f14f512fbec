"""The console channel: a child's chat and a counsellor's desk in a terminal, on one database.

The two sides may run in two processes: what the desk sends to a console child goes through the
database outbox, which the chat polls.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import unicodedata
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TextIO

from sqlalchemy.exc import SQLAlchemyError

from bot.app import App
from bot.delivery import DeliveryError
from dialogs.catalogue import default_catalogue
from dialogs.desk import (
    Block,
    ChangeRisk,
    Close,
    DeskCommand,
    Note,
    Release,
    Reply,
    ReplyCanned,
    SetCategory,
    Take,
    Transfer,
    Unblock,
    desk_time,
)
from dialogs.desk.rules import MIN_REASON_LETTERS
from dialogs.escalation import BLOCK_OUTCOME, CaseSummary, CaseView, DeskError, DeskResult
from dialogs.hours import OpeningHours
from dialogs.messages import (
    DESK,
    Button,
    Channel,
    Inbound,
    Outbound,
)
from dialogs.taxonomy import Risk, categories, category_label, outcomes
from storage.models import Counsellor, utcnow
from storage.repositories import Repos

CONSOLE = str(Channel.CONSOLE)
# The conversation data key where a console user's last shown options wait while no line of
# theirs is being handled (so they survive `helpline chat` being closed and started again). It
# is taken out before each line reaches the engine, so it never becomes one of a case's answers.
PARKED_OPTIONS = "console_options"

log = logging.getLogger(__name__)


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
    through `Delivery` to the `ConsoleSender`.

    The numbered options last shown keep their meaning when the chat is closed and started
    again: between lines they are parked in the user's conversation data (encrypted, erased
    with the user), never in a file."""

    def __init__(
        self, app: App, user: str = "local", locale: str | None = None, out: TextIO = sys.stdout
    ) -> None:
        self.app = app
        self.user = user
        self.locale = locale or app.settings.default_locale
        self.out = out
        self.sender = ConsoleSender(user, out)
        app.delivery.register(CONSOLE, self.sender)
        # What is parked in the database: None until the chat has looked there.
        self._parked: list[Button] | None = None

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
        await self._unpark()
        await self.app.accept(self._inbound(line))
        await self.app.drain()
        await self._park()

    async def poll_outbox(self) -> None:
        """Deliver what a counsellor (maybe in another process) sent to this user."""
        await self.app.delivery.flush_due()
        if self._parked is not None:
            await self._park()

    async def restore(self, *, show: bool = True) -> None:
        """Take back the options this user saw when the chat was last closed, and show them
        again, so that a number typed now means what it meant then."""
        await self._unpark(show=show)
        await self._park()

    async def _unpark(self, *, show: bool = False) -> None:
        """Take the parked options out of the conversation data: a line is about to be
        handled, and the engine must not mistake them for one of the child's answers."""
        if self._parked == []:
            return
        first, locale = self._parked is None, self.locale
        try:
            async with self.app.db.session() as s:
                repos = Repos(s)
                user = await repos.users.find(CONSOLE, self.user)
                conv = await repos.conversations.for_user(user.id) if user else None
                data = dict(conv.data or {}) if conv else {}
                parked = data.pop(PARKED_OPTIONS, None)
                if conv is not None and parked is not None:
                    conv.data = data
                locale = user.locale if user else self.locale
        except SQLAlchemyError as exc:  # the options are a convenience: the chat goes on
            log.warning("console options not restored (%s)", type(exc).__name__)
            parked = None
        self._parked = []
        if not first or not parked or self.sender.buttons:
            return
        self.sender.buttons = [Button(str(label), str(payload)) for label, payload in parked]
        if show:
            options = "\n".join(f"  {i}. {b.label}" for i, b in enumerate(self.buttons, 1))
            text = default_catalogue().t("console.options_again", locale)
            print(("bot> " + text + "\n" + options).replace("\n", "\n     "),
                  file=self.out, flush=True)

    async def _park(self) -> None:
        """Keep the options shown last in the conversation data, until the next line."""
        if self.buttons == self._parked:
            return
        try:
            async with self.app.db.session() as s:
                repos = Repos(s)
                user = await repos.users.find(CONSOLE, self.user)
                conv = await repos.conversations.for_user(user.id) if user else None
                if conv is None:
                    return
                data = dict(conv.data or {})
                if self.buttons:
                    data[PARKED_OPTIONS] = [[b.label, b.payload] for b in self.buttons]
                else:
                    data.pop(PARKED_OPTIONS, None)
                conv.data = data
        except SQLAlchemyError as exc:
            log.warning("console options not kept (%s)", type(exc).__name__)
            return
        self._parked = list(self.buttons)

    async def run(self, stream: TextIO = sys.stdin, poll: float = 1.0) -> None:
        interactive = stream.isatty()
        if interactive:
            print("Help-line chat. Type a message, a button's number, or /quit.", file=self.out)
        await self.restore()
        await self.poll_outbox()  # what came while the chat was closed, before the first line
        loop = asyncio.get_running_loop()
        reader: asyncio.Future[str] | None = None
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
  take N                    take case N (up to {capacity} at once; a critical case always)
  reply N TEXT              write to the child of case N
  reply N /KEY              send a canned reply in the child's language (see 'canned')
  canned                    the canned replies
  note N TEXT               a private note, never sent to the child
  risk N LEVEL REASON       raise or lower risk (critical/high/medium/low); lowering needs a
                            reason, lowering a critical case a supervisor and a real reason
  category N KEY            correct the category: {categories}
  transfer N NAME [NOTE]    hand case N to a colleague (supervisors: any open case)
  release N [NOTE]          back to the queue, with a note for the next counsellor
  close N OUTCOME           close with an outcome: {outcomes}
                            (abusive-contact is not an outcome to pick: a supervisor blocks)
  block N UNTIL REASON      supervisors: block the user of case N for abuse; UNTIL is 30m, 12h,
                            7d, 2w or a date/time (YYYY-MM-DD[THH:MM], {zone}); the case closes.
                            Where the child may be the victim of abuse, add --confirm at the end
  unblock N                 lift that block (supervisors)
  audit N                   who saw and did what on case N
  hours                     opening hours now, and who is on call
  sweep                     re-announce unanswered cases and update waiting children now
  quit
times are the help line's ({zone}); critical cases ring the terminal's bell as they arrive"""

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
    DeskError.USE_BLOCK: "closing as an abusive contact is a block: a supervisor uses "
    "'block N UNTIL REASON', which really blocks the user",
    DeskError.WEAK_REASON: "lowering a critical case needs a real reason (at least "
    f"{MIN_REASON_LETTERS} letters) for the colleagues who read the case",
    DeskError.CONFIRM_BLOCK: "the child of this case may be the victim of abuse; to block "
    "anyway, repeat the command with --confirm at the end",
}
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
CONFIRM = "--confirm"
BELL = "\a"


def parse_until(text: str, now: datetime, zone: tzinfo = UTC) -> datetime | None:
    """'30m', '12h', '7d', '2w' from now, or an ISO date/time (in `zone`, the help line's,
    when no zone is given)."""
    text = text.strip().lower()
    if len(text) > 1 and text[-1] in _UNITS and text[:-1].isdecimal():
        return now + timedelta(**{_UNITS[text[-1]]: int(text[:-1])})
    try:
        moment = datetime.fromisoformat(text.upper())
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


def display_width(text: str) -> int:
    """The terminal columns a text takes: a wide (East Asian) character two, a combining mark
    none, any other character (Latin, Cyrillic) one."""
    return sum(
        0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1
        for ch in text
    )


def table(rows: Sequence[Sequence[str]], gap: int = 2) -> list[str]:
    """Rows as lines whose columns start at the same place, however long a case number, a
    category or a name is: each column is as wide as its widest cell."""
    if not rows:
        return []
    widths = [max(display_width(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        (" " * gap).join(cell + " " * (w - display_width(cell)) for cell, w in zip(row, widths,
                                                                                 strict=True))
        .rstrip()
        for row in rows
    ]


def answer_text(key: str, value: object, locale: str) -> str:
    """A case answer as a counsellor reads it: lists (evidence notes, links) as lines of text
    joined by "; ", yes/no in words, a button's value as its label."""
    labels = default_catalogue()
    if isinstance(value, bool):
        return labels.t("answer.yes" if value else "answer.no", locale)
    if isinstance(value, list | tuple):
        return "; ".join(str(v) for v in value) or "-"
    text = str(value)
    for name in (f"report.{key}.{text}", f"answer.{text}"):
        if labels.has(name):
            return labels.t(name, locale)
    return text


class Usage(Exception):
    """A typed line that makes no desk command: the text says how to write it."""


def _risk(case_id: int, rest: str, now: datetime, zone: tzinfo) -> DeskCommand:
    level, _, reason = rest.partition(" ")
    return ChangeRisk(case_id, level.lower(), reason.strip())


def _transfer(case_id: int, rest: str, now: datetime, zone: tzinfo) -> DeskCommand:
    name, _, note = rest.partition(" ")
    return Transfer(case_id, name, note.strip())


def _block(case_id: int, rest: str, now: datetime, zone: tzinfo) -> DeskCommand:
    confirmed = rest.endswith(CONFIRM)
    rest = rest.removesuffix(CONFIRM).strip()
    when, _, reason = rest.partition(" ")
    until = parse_until(when, now, zone)
    if until is None:
        raise Usage("refused: UNTIL is like 30m, 12h, 7d, 2w or 2026-12-31")
    return Block(case_id, reason.strip(), until, confirmed)


def _reply(case_id: int, rest: str, now: datetime, zone: tzinfo) -> DeskCommand:
    if rest.startswith("/") and " " not in rest:
        return ReplyCanned(case_id, rest[1:])
    return Reply(case_id, rest)


# verb -> (needs text after the case number, how the line becomes a command)
PARSERS: dict[str, tuple[bool, Callable[[int, str, datetime, tzinfo], DeskCommand]]] = {
    "take": (False, lambda n, rest, now, zone: Take(n)),
    "reply": (True, _reply),
    "canned": (True, lambda n, rest, now, zone: ReplyCanned(n, rest.lstrip("/"))),
    "note": (True, lambda n, rest, now, zone: Note(n, rest)),
    "risk": (True, _risk),
    "category": (True, lambda n, rest, now, zone: SetCategory(n, rest.lower())),
    "transfer": (True, _transfer),
    "release": (False, lambda n, rest, now, zone: Release(n, rest)),
    "close": (True, lambda n, rest, now, zone: Close(n, rest.split()[0].lower())),
    "block": (True, _block),
    "unblock": (False, lambda n, rest, now, zone: Unblock(n)),
}


class ConsoleDesk:
    """`helpline desk --as NAME`: the counsellor's side in a terminal. A thin translator: a
    typed line becomes a desk command for `Desk.execute`, and its result becomes text."""

    def __init__(self, app: App, counsellor: Counsellor, out: TextIO = sys.stdout) -> None:
        self.app = app
        self.counsellor = counsellor
        self.out = out
        self.locale = app.settings.default_locale
        self._seen: dict[int, int] = {}
        self._held: set[int] = set()
        self._swept: float = 0.0
        # What the terminal has announced: case -> when the desk last announced it (None:
        # never re-announced). Filled on the first poll without ringing for old calm cases.
        self._announced: dict[int, datetime | None] | None = None

    @property
    def hours(self) -> OpeningHours:
        return self.app.desk.config.hours

    def at(self, moment: datetime, fmt: str = "%H:%M") -> str:
        """A time as the help line's wall time, labelled: "14:05 MSK"."""
        return desk_time(moment, self.hours, fmt)

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def _result(self, result: DeskResult, ok_text: str) -> None:
        if result.ok:
            self.say(ok_text)
            for message in result.outbound:
                if message.to.is_desk and message.meta.get("over_capacity"):
                    self.say(f"{BELL}desk: {message.text}")
            return
        reason = ERRORS.get(result.error, str(result.error)) if result.error else "refused"
        self.say(f"refused: {reason}" + (f" ({result.detail})" if result.detail else ""))

    def _view(self, view: CaseView) -> None:
        s = view.summary
        self.say(
            f"case #{s.id} · {category_label(s.category, self.locale)} · {s.risk.upper()}"
            f" · {s.status} · via {s.channel} · opened {self.at(s.created_at)}"
            f" · waited {s.waiting_minutes} min"
            + (f" · held by {s.owner}" if s.owner else "")
        )
        if view.signals:
            self.say(f"  danger signals: {', '.join(view.signals)}")
        for key, value in view.answers.items():
            self.say(f"  {key}: {answer_text(key, value, self.locale)}")
        if view.attachments:
            self.say(f"  evidence: {len(view.attachments)} file(s)")
        for line in view.transcript:
            self.say(f"  [{self.at(line.at)}] {line.sender}: {line.text}")

    def _list(self, cases: list[CaseSummary], *, owners: bool = False) -> None:
        if not cases:
            self.say("no cases")
            return
        rows = [("case", "risk", "category", "via", "status", "waited", "")]
        rows += [
            (f"#{s.id}", s.risk.upper(), category_label(s.category, self.locale), s.channel,
             s.status, f"{s.waiting_minutes} min",
             f"held by {s.owner}" if owners and s.owner else "")
            for s in cases
        ]
        for line in table(rows):
            self.say(line)

    def _queue(self, cases: list[CaseSummary]) -> None:
        if not cases:
            self.say("the queue is empty")
            return
        rows = [("case", "risk", "category", "via", "waiting")]
        rows += [
            (f"#{s.id}", s.risk.upper(), category_label(s.category, self.locale), s.channel,
             f"{s.waiting_minutes} min")
            for s in cases
        ]
        for line in table(rows):
            self.say(line)

    def _mine(self, cases: list[CaseSummary]) -> None:
        if not cases:
            self.say("you hold no cases")
            return
        rows = [("case", "risk", "category", "status")]
        rows += [
            (f"#{s.id}", s.risk.upper(), category_label(s.category, self.locale), s.status)
            for s in cases
        ]
        for line in table(rows):
            self.say(line)

    def _help(self) -> str:
        return DESK_HELP.format(
            outcomes=", ".join(o for o in outcomes() if o != BLOCK_OUTCOME),
            categories=", ".join(categories()),
            capacity=self.app.desk.config.capacity,
            zone=self.hours.zone.key,
        )

    def _done(self, command: DeskCommand, result: DeskResult) -> str:
        """What the terminal says when a command went through."""
        n = command.case_id
        match command:
            case Take():
                return f"you hold case #{n}"
            case ReplyCanned(key=key):
                return f"sent the canned reply /{key}"
            case Reply():
                return "sent"
            case Note():
                return "noted"
            case ChangeRisk(risk=risk):
                return f"risk changed: {result.detail} -> {risk}"
            case SetCategory(category=category):
                return f"case #{n} is now {category_label(category, self.locale)}"
            case Transfer(to=name):
                return f"case #{n} handed to {name}"
            case Release():
                return "released to the queue"
            case Close():
                return f"case #{n} closed"
            case Block(until=until):
                return f"blocked until {self.at(until, '%Y-%m-%d %H:%M')}; case closed"
            case Unblock():
                return "block lifted"
        return "done"

    async def run_command(self, command: DeskCommand) -> DeskResult:
        """Execute one desk command, say what happened, deliver what it produced."""
        result = await self.app.desk.execute(self.counsellor, command)
        self._result(result, self._done(command, result))
        await self.app.delivery.deliver(result.outbound)
        if result.ok and isinstance(command, Take):
            view = await self.app.desk.view(self.counsellor, command.case_id)
            if not isinstance(view, DeskError):
                self._view(view)
                self._seen[command.case_id] = len(view.transcript)
        return result

    async def command(self, line: str) -> bool:
        """Run one desk command; False when the counsellor quits."""
        parts = line.strip().split(maxsplit=2)
        if not parts:
            return True
        verb, args = parts[0].lower(), parts[1:]
        if verb in ("quit", "exit"):
            return False
        if await self._reading(verb, args):
            return True
        try:
            case_id = int(args[0]) if args else None
        except ValueError:
            self.say("a case number is needed, e.g. 'take 12'")
            return True
        rest = args[1].strip() if len(args) == 2 else ""
        if verb in ("view", "audit") and case_id is not None:
            await self._read_case(verb, case_id)
            return True
        parser = PARSERS.get(verb)
        if parser is None or (parser[0] and not rest):
            self.say("a case number is needed" if parser and case_id is None
                     else "unknown command; type 'help'")
            return True
        if case_id is None:
            self.say("a case number is needed")
            return True
        try:
            command = parser[1](case_id, rest, utcnow(), self.hours.zone)
        except Usage as usage:
            self.say(str(usage))
            return True
        await self.run_command(command)
        return True

    async def _reading(self, verb: str, args: list[str]) -> bool:
        """The commands that read the desk rather than act on a case."""
        desk = self.app.desk
        if verb == "help":
            self.say(self._help())
        elif verb == "queue":
            self._queue(await desk.queue())
        elif verb == "mine":
            self._mine(await desk.held(self.counsellor))
        elif verb == "all":
            everything = await desk.open_cases(self.counsellor)
            if isinstance(everything, DeskError):
                self._result(DeskResult(ok=False, error=everything), "")
            else:
                self._list(everything, owners=True)
        elif verb == "canned" and len(args) < 2:
            for line in table([(f"/{r.key}", r.title(self.locale))
                               for r in desk.canned_replies()]):
                self.say(line)
        elif verb == "hours":
            await self._hours()
        elif verb == "sweep":
            await self._sweep(force=True)
        else:
            return False
        return True

    async def _read_case(self, verb: str, case_id: int) -> None:
        desk = self.app.desk
        if verb == "view":
            view = await desk.view(self.counsellor, case_id)
            if isinstance(view, DeskError):
                self._result(DeskResult(ok=False, error=view), "")
            else:
                self._view(view)
            return
        rows = [(self.at(at, "%Y-%m-%d %H:%M:%S"), who or "system", action, detail)
                for at, who, action, detail in await desk.audit_trail(case_id)]
        for line in table(rows, gap=1):
            self.say(line)

    async def _hours(self) -> None:
        desk = self.app.desk
        hours = desk.config.hours
        now = utcnow()
        if hours.always:
            self.say("the desk is open round the clock (no opening hours configured)")
        elif desk.is_open(now):
            closes = hours.closes_at(now)
            self.say(f"open now, until {self.at(closes)} ({hours.zone.key})" if closes
                     else "open")
        else:
            nxt = hours.next_open(now)
            when = (f"{self.at(nxt, '%a %Y-%m-%d %H:%M')} ({hours.zone.key})" if nxt
                    else "not within 60 days")
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
                bell = BELL if message.critical or message.meta.get("reannounce") else ""
                self.say(f"{bell}desk: {message.text}{mark}")
        children = sum(1 for m in out if not m.to.is_desk)
        if force:
            self.say(f"sweep: {len(out) - children} re-announced, {children} children updated")
        await self.app.delivery.deliver(out)
        # Announced here already: the next look at the queue must not ring for them again.
        await self._alerts(quiet={m.case_id for m in out if m.to.is_desk})

    async def _alerts(self, quiet: set[int | None] | None = None) -> None:
        """Ring and print each critical case as it arrives and each re-announcement (made
        here or by the running bot in another process: the case row says when)."""
        cases = [*await self.app.desk.queue(), *await self.app.desk.held(self.counsellor)]
        first = self._announced is None
        known = self._announced or {}
        for s in cases:
            if s.id in (quiet or set()) or (first and s.risk != Risk.CRITICAL.value):
                continue
            if s.id not in known and s.status == "waiting":
                self._arrived(s)
            elif s.id in known and s.last_announced_at != known[s.id]:
                self.say(f"{BELL}desk: case #{s.id} re-announced: {s.risk.upper()}"
                         f" {s.category}, {s.status}, waited {s.waiting_minutes} min")
        self._announced = {s.id: s.last_announced_at for s in cases}

    def _arrived(self, s: CaseSummary) -> None:
        critical = s.risk == Risk.CRITICAL.value
        self.say(
            (f"{BELL}🚨 CRITICAL " if critical else "new ")
            + f"case #{s.id} · {category_label(s.category, self.locale)} · via {s.channel}"
            + f" · opened {self.at(s.created_at)}" + (": take it now" if critical else "")
        )

    async def poll(self) -> None:
        """Print new messages from children in the cases this counsellor holds, and what
        became of a held case the child left or erased; ring for critical cases and
        re-announcements as they arrive."""
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
        await self._alerts()
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
