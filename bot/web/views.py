"""The console's pages, actions and event streams.

Every action on a case is a call to `dialogs.escalation.Desk` (take, reply, note, release, close,
set_risk, and transfer or canned replies when the desk offers them), and what it returns for the
child is handed to `App.delivery`. Reading a case page is `Desk.view`, which audits the read.
The live transcript and the evidence files are read after the same visibility rule as
`Desk.view` (the desk's own `_may_see`); opening an evidence file is audited on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.evidence import read_evidence
from bot.web import auth
from bot.web.board import Wall, today, wallboard
from bot.web.inbox import Author, Inbox, author_label, authors_of, mark_seen, read_inbox
from bot.web.live import HEARTBEAT, Board, EventStream, read_board
from bot.web.pages import code_label, fragment, labelled, render
from bot.web.state import (
    Console,
    Staff,
    Texts,
    console_of,
    staff_of,
    texts_of,
)
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
    Take,
    Transfer,
    Unblock,
    desk_time,
)
from dialogs.escalation import BLOCK_OUTCOME, CaseSummary, CaseView, DeskError, DeskResult
from dialogs.hours import OpeningHours
from dialogs.reports import Table, build_report
from dialogs.taxonomy import (
    Risk,
    category_label,
    is_victim_category,
    outcome_label,
    outcomes,
)
from storage.models import Counsellor, utcnow
from storage.repositories import Repos

log = logging.getLogger(__name__)

IMAGE_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png",
               ".gif": "image/gif", ".webp": "image/webp"}
HIDDEN_ANSWERS = {"hits", "locale"}
RISK_ACTIONS = {"opened", "risk_changed", "risk_raised"}
ERROR_STATUS = {
    DeskError.NOT_STAFF: 403,
    DeskError.NO_CASE: 404,
    DeskError.TAKEN: 409,
    DeskError.NOT_YOURS: 403,
    DeskError.BAD_OUTCOME: 400,
    DeskError.BAD_RISK: 400,
    DeskError.CLOSED: 409,
    DeskError.CHILD_GONE: 410,
    DeskError.CHILD_LEFT: 410,
    DeskError.AT_CAPACITY: 409,
    DeskError.NO_COUNSELLOR: 400,
    DeskError.BAD_TRANSFER: 400,
    DeskError.SUPERVISOR_ONLY: 403,
    DeskError.NO_CANNED: 400,
    DeskError.BAD_BLOCK: 400,
    DeskError.NOT_BLOCKED: 409,
    DeskError.BAD_CATEGORY: 400,
    DeskError.USE_BLOCK: 400,
    DeskError.WEAK_REASON: 400,
    DeskError.CONFIRM_BLOCK: 409,
}
BLOCK_DAYS = (1, 7, 30)


def wants_json(request: web.Request) -> bool:
    return request.headers.get("Accept", "").startswith("application/json")


def case_json(summary: CaseSummary, t: Texts, me: Counsellor) -> dict[str, Any]:
    locale = t.locale
    return {
        "id": summary.id,
        "url": f"/cases/{summary.id}",
        "risk": summary.risk,
        "risk_label": Risk(summary.risk).label(locale)
        if summary.risk in Risk._value2member_map_
        else summary.risk,
        "critical": summary.risk == Risk.CRITICAL.value,
        "category": summary.category,
        "category_label": category_label(summary.category, locale),
        "channel": summary.channel,
        "status": summary.status,
        "status_label": t(f"status.{summary.status}"),
        "owner": summary.owner,
        "mine": summary.owner == me.name,
        "created_at": summary.created_at.isoformat(),
        "waiting_minutes": summary.waiting_minutes,
    }


def board_json(board: Board, t: Texts, me: Counsellor) -> dict[str, Any]:
    mine = [c for c in board.active if c.owner == me.name]
    others = [c for c in board.active if c.owner != me.name]
    return {
        "waiting": [case_json(c, t, me) for c in board.waiting],
        "mine": [case_json(c, t, me) for c in mine],
        "others": [case_json(c, t, me) for c in others],
    }


def inbox_json(inbox: Inbox, t: Texts) -> dict[str, Any]:
    return {
        "held": inbox.held,
        "capacity": inbox.capacity,
        "over": inbox.over,
        "load": t("inbox.load", n=inbox.held, capacity=inbox.capacity),
        "unread": inbox.unread,
        "items": [
            {
                "id": i.id,
                "url": f"/cases/{i.id}",
                "risk": i.risk,
                "status": i.status,
                "unread": i.unread,
                "preview_who": i.preview_who,
                "preview": i.preview,
            }
            for i in inbox.items
        ],
    }


def live_json(
    request: web.Request, board: Board, inbox: Inbox, open_case: int | None = None
) -> dict[str, Any]:
    """What an open queue or case page gets on every change: the board, the counsellor's
    inbox, and the same markup the page drew first (so the script only patches it in)."""
    staff, t = staff_of(request), texts_of(request)
    me = staff.counsellor
    others = [c for c in board.active if c.owner != me.name]
    data = board_json(board, t, me)
    data["inbox"] = inbox_json(inbox, t)
    data["html"] = {
        "waiting": fragment(request, "_rows.html", rows=board.waiting, empty=t("queue.empty"),
                            full=inbox.full),
        "others": fragment(request, "_rows.html", rows=others, empty=t("board.nobody"),
                           full=inbox.full),
        "inbox": fragment(request, "_inbox.html", inbox=inbox, open_case=open_case),
    }
    return data


async def my_board(console: Console, staff: Staff) -> Board:
    """The queue page's first render (later updates come from the feed)."""
    waiting = tuple(await console.app.desk.queue())
    if staff.is_supervisor:
        return await read_board(console.app)
    return Board(waiting, tuple(await console.app.desk.held(staff.counsellor)))


# ---------------------------------------------------------------------- signing in and out
async def signin_page(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    token = request.cookies.get(auth.session_cookie(console.settings))
    if token and await auth.load_staff(console.app.db, console.settings, token):
        raise web.HTTPFound(auth.local_path(request.query.get("next")))
    note = request.query.get("m", "")
    t = texts_of(request)
    message = t(f"signin.{note}") if note in ("expired", "signed_out") else ""
    return _signin_form(request, message=message)


def _signin_form(
    request: web.Request,
    *,
    error: str = "",
    message: str = "",
    status: int = 200,
    name: str = "",
) -> web.Response:
    console = console_of(request)
    # Reuse the browser's token: a second sign-in page (another tab, a favicon request that was
    # redirected here) must not invalidate the form already on screen.
    pre = request.cookies.get(auth.PRE_COOKIE) or secrets.token_urlsafe(24)
    response = render(
        request,
        "signin.html",
        status=status,
        pre_csrf=pre,
        signin_error=error,
        message=message,
        next_path=auth.local_path(request.query.get("next")),
        name=name,
    )
    auth.set_cookie(response, console.settings, auth.PRE_COOKIE, pre, max_age=3600)
    return response


async def signin_post(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    t = texts_of(request)
    form = await request.post()
    given = form.get("csrf")
    expected = request.cookies.get(auth.PRE_COOKIE, "")
    if not expected or not isinstance(given, str) or not auth.csrf_ok(expected, given):
        return _signin_form(request, error=t("signin.stale"), status=403)
    name = str(form.get("name", ""))[:64]
    result = await auth.sign_in(
        console.app.db,
        console.settings,
        name,
        str(form.get("password", ""))[:1024],
        str(form.get("code", ""))[:16],
    )
    if result.token is None:
        if result.error == "locked":
            return _signin_form(
                request,
                error=t("signin.locked", minutes=result.locked_minutes),
                status=429,
                name=name,
            )
        if result.error == "totp_required":
            return _signin_form(request, error=t("signin.totp_required"), status=403, name=name)
        return _signin_form(request, error=t("signin.failed"), status=401, name=name)
    response = web.HTTPFound(auth.local_path(str(form.get("next", "")) or None))
    cookie = auth.session_cookie(console.settings)
    auth.set_cookie(response, console.settings, cookie, result.token)
    auth.clear_cookie(response, console.settings, auth.PRE_COOKIE)
    raise response


async def signout(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    await auth.sign_out(console.app.db, staff_of(request))
    response = web.HTTPFound("/signin?m=signed_out")
    auth.clear_cookie(response, console.settings, auth.session_cookie(console.settings))
    raise response


# ---------------------------------------------------------------------- the queue
async def queue_page(request: web.Request) -> web.StreamResponse:
    console, staff = console_of(request), staff_of(request)
    board = await my_board(console, staff)
    me = staff.counsellor
    inbox = await read_inbox(console.app, me.id, texts_of(request))
    return render(
        request,
        "queue.html",
        waiting=board.waiting,
        inbox=inbox,
        full=inbox.full,
        open_case=None,
        others=[c for c in board.active if c.owner != me.name],
    )


async def queue_api(request: web.Request) -> web.StreamResponse:
    console, staff = console_of(request), staff_of(request)
    t = texts_of(request)
    board = await my_board(console, staff)
    data = board_json(board, t, staff.counsellor)
    data["inbox"] = inbox_json(await read_inbox(console.app, staff.counsellor.id, t), t)
    return web.json_response(data)


async def queue_events(request: web.Request) -> web.StreamResponse:
    """The queue, live: a `queue` event with the whole (filtered) board and the counsellor's
    inbox on every change (a case page listens too, for its inbox and the alarm)."""
    console, staff = console_of(request), staff_of(request)
    t = texts_of(request)
    try:
        open_case: int | None = int(request.query.get("case", ""))
    except ValueError:
        open_case = None
    stream = await EventStream(request).open()
    last: dict[str, Any] | None = None
    with contextlib.suppress(ConnectionResetError):
        async with console.feed.listen() as updates:
            while not console.stopping.is_set():
                board = await _next(updates, console.stopping, HEARTBEAT)
                if board is None:
                    if not await _heartbeat(stream, console, staff):
                        break
                    continue
                inbox = await read_inbox(console.app, staff.counsellor.id, t)
                data = live_json(request, board.for_staff(staff.counsellor), inbox, open_case)
                if data != last:
                    await stream.send("queue", data)
                    last = data
    return stream.response


async def _next(
    updates: asyncio.Queue[Board], stop: asyncio.Event, seconds: float
) -> Board | None:
    getter = asyncio.ensure_future(updates.get())
    stopper = asyncio.ensure_future(stop.wait())
    try:
        done, _ = await asyncio.wait(
            {getter, stopper}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        stopper.cancel()
        if not getter.done():
            getter.cancel()
    return getter.result() if getter in done else None


async def _still_signed_in(console: Console, staff: Staff) -> bool:
    async with console.app.db.session() as s:
        row = await Repos(s).web_sessions.get(staff.session_hash)
        return row is not None and row.expires_at > utcnow()


async def _heartbeat(stream: EventStream, console: Console, staff: Staff) -> bool:
    """A quiet live stream's heartbeat: a ping, or "signed_out" (False) when the session ended."""
    if not await _still_signed_in(console, staff):
        await stream.send("signed_out", {})
        return False
    await stream.ping()
    return True


# ---------------------------------------------------------------------- a case
@dataclass(frozen=True, slots=True)
class EvidenceItem:
    n: int
    kind: str
    stored: bool
    image: bool
    url: str


def _evidence(case_id: int, view: CaseView) -> list[EvidenceItem]:
    items = []
    for n, att in enumerate(view.attachments):
        suffix = Path(att.name).suffix.lower() if att.name else ""
        items.append(
            EvidenceItem(n + 1, str(att.kind), bool(att.name), suffix in IMAGE_TYPES,
                         f"/cases/{case_id}/evidence/{n + 1}")
        )
    return items


def _answers(view: CaseView, t: Texts) -> list[tuple[str, str]]:
    labels = default_catalogue()
    rows = []
    for key, value in view.answers.items():
        if key in HIDDEN_ANSWERS:
            continue
        label = t(f"answer.{key}") if t.has(f"answer.{key}") else key
        if isinstance(value, bool):
            shown = labels.t("answer.yes" if value else "answer.no", t.locale)
        elif isinstance(value, list | tuple):
            shown = "; ".join(str(v) for v in value)
        else:
            shown = str(value)
            for name in (f"report.{key}.{shown}", f"answer.{shown}", f"{key}.{shown}"):
                if labels.has(name):
                    shown = labels.t(name, t.locale)
                    break
        rows.append((label, shown))
    return rows


@dataclass(frozen=True, slots=True)
class Line:
    """One transcript line as the console shows it (read-only; from the messages store)."""

    id: int
    sender: str
    counsellor_id: int | None
    text: str
    at: datetime


def line_json(
    n: int,
    line: Line,
    t: Texts,
    hours: OpeningHours | None = None,
    authors: dict[int, Author] | None = None,
) -> dict[str, Any]:
    return {
        "n": n,
        "id": line.id,
        "sender": line.sender,
        # Who wrote it: the child, the bot, a counsellor by name, a supervisor as such.
        "label": author_label(t, line.sender, line.counsellor_id, authors or {}),
        "text": line.text,
        # The help line's wall time, labelled ("14:05 MSK"), like every desk time.
        "at": desk_time(line.at, hours) if hours is not None else line.at.strftime("%H:%M UTC"),
    }


def _can_write(summary: CaseSummary, staff: Staff) -> bool:
    return summary.status == "active" and (
        summary.owner == staff.counsellor.name or staff.is_supervisor
    )


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the live chat compares from one second to the next."""

    status: str
    owner: str | None
    risk: str
    outcome: str | None


async def _peek(
    console: Console, counsellor: Counsellor, case_id: int
) -> tuple[Snapshot, list[Line]] | None:
    """The case's state and transcript, if this counsellor may (still) see it. Polling a case
    the counsellor has open is not a new read of it: `Desk.view` audited the page."""
    async with console.app.db.session() as s:
        repos = Repos(s)
        case = await repos.cases.get(case_id)
        if case is None or not console.app.desk._may_see(counsellor, case):
            return None
        owner = await repos.counsellors.get(case.owner_id) if case.owner_id else None
        lines = [
            Line(m.id, m.sender, m.counsellor_id, m.text, m.created_at)
            for m in await repos.messages.for_case(case_id)
        ]
        state = Snapshot(str(case.status), owner.name if owner else None, case.risk, case.outcome)
        return state, lines


ERASED = "child-erased"


def _change_message(before: Snapshot, now: Snapshot, t: Texts, me: str) -> str:
    """What a counsellor is told when the open case changes under them, most important first."""
    if now.outcome == ERASED and before.outcome != ERASED:
        return t("case.live.erased")
    if now.status == "left" and before.status != "left":
        return t("case.live.left")
    if now.status == "closed" and before.status != "closed":
        return t("case.live.closed")
    if now.owner != before.owner:
        if now.owner is None:
            return t("case.live.released")
        return t("case.live.mine") if now.owner == me else t("case.live.owner", name=now.owner)
    if now.risk != before.risk:
        risk = Risk(now.risk).label(t.locale) if now.risk in Risk._value2member_map_ else ""
        return t("case.live.risk", risk=risk)
    return t("case.live_changed")


def case_state_json(before: Snapshot, now: Snapshot, t: Texts, me: str) -> dict[str, Any]:
    return {
        "status": now.status,
        "status_label": labelled(t, "status", now.status),
        "owner": now.owner,
        "owner_label": t("case.held_by", name=now.owner) if now.owner else "",
        "risk": now.risk,
        "risk_label": Risk(now.risk).label(t.locale) if now.risk in Risk._value2member_map_
        else "",
        "left": now.status == "left",
        "erased": now.outcome == ERASED,
        "closed": now.status == "closed",
        "mine": now.owner == me,
        # Whether the page's forms still fit the case (else it offers a reload).
        "reload": now.owner != before.owner or (now.status != before.status
                                                 and now.status not in ("left", "closed")),
        "message": _change_message(before, now, t, me),
    }


async def case_page(request: web.Request) -> web.StreamResponse:
    console, staff, t = console_of(request), staff_of(request), texts_of(request)
    case_id = int(request.match_info["case_id"])
    view = await console.app.desk.view(staff.counsellor, case_id)  # audited
    if isinstance(view, DeskError):
        return render(
            request,
            "error.html",
            status=ERROR_STATUS.get(view, 403),
            message=t(f"error.{view.value}"),
        )
    trail = await console.app.desk.audit_trail(case_id)
    summary = view.summary
    desk = console.app.desk
    peeked = await _peek(console, staff.counsellor, case_id)
    transcript = peeked[1] if peeked else []
    authors = await authors_of(console.app)
    if transcript:
        # What the page shows now counts as read.
        await mark_seen(console.app, staff.counsellor.id, case_id, transcript[-1].id)
    inbox = await read_inbox(console.app, staff.counsellor.id, t)
    transfer_to: list[str] = []
    may_transfer = _can_write(summary, staff) or (
        staff.is_supervisor and summary.status == "waiting"
    )
    if hasattr(desk, "transfer") and may_transfer:
        async with console.app.db.session() as s:
            transfer_to = [
                c.name
                for c in await Repos(s).counsellors.all()
                if c.active and c.name != summary.owner
            ]
    child_locale = str(view.answers.get("locale") or t.locale)
    lines = [
        line_json(n, line, t, desk.config.hours, authors) for n, line in enumerate(transcript, 1)
    ]
    return render(
        request,
        "case.html",
        view=view,
        summary=summary,
        answers=_answers(view, t),
        signals=[code_label(t, s) for s in view.signals],
        evidence=_evidence(case_id, view),
        lines=lines,
        seen=len(lines),
        last_id=transcript[-1].id if transcript else 0,
        trail=trail,
        risk_trail=[row for row in trail if row[2] in RISK_ACTIONS],
        # "Abusive contact (blocked)" is what a supervisor's Block does, not an outcome to pick.
        outcomes=[(o, outcome_label(o, t.locale)) for o in outcomes() if o != BLOCK_OUTCOME],
        risks=[(r.value, r.label(t.locale)) for r in Risk],
        can_write=_can_write(summary, staff),
        can_take=summary.status == "waiting",
        take_over=summary.risk == Risk.CRITICAL.value and inbox.full,
        transfer_to=transfer_to,
        canned=_canned(console, t.locale, child_locale),
        # The desk's rule (dialogs.desk.rules): blocking is a supervisor's action; where the
        # child may be the victim of abuse, the form asks for a confirmation.
        can_block=staff.is_supervisor,
        block_confirm=is_victim_category(summary.category),
        can_unblock=staff.is_supervisor and view.outcome == BLOCK_OUTCOME,
        block_days=BLOCK_DAYS,
        inbox=inbox,
        full=inbox.full,
        open_case=case_id,
        erased=view.outcome == ERASED,
    )


def _canned(console: Console, locale: str, child_locale: str) -> list[tuple[str, str, str]]:
    """The desk's canned replies as (key, title in the counsellor's language, text in the
    child's language), when the desk offers them."""
    lister = getattr(console.app.desk, "canned_replies", None)
    if lister is None:
        return []
    return [(c.key, c.title(locale), c.text(child_locale)) for c in lister()]


async def case_events(request: web.Request) -> web.StreamResponse:
    """A case, live: `line` events for new transcript lines, `case` when its status, owner or
    risk changes (the child left, erased their data, someone took it over), `gone` when the
    counsellor may no longer see it."""
    console, staff, t = console_of(request), staff_of(request), texts_of(request)
    case_id = int(request.match_info["case_id"])
    first = await _peek(console, staff.counsellor, case_id)
    if first is None:
        return web.json_response({"error": "not_yours"}, status=403)
    try:
        seen = int(request.headers.get("Last-Event-ID") or request.query.get("seen") or 0)
    except ValueError:
        seen = 0
    state = first[0]
    me = staff.counsellor.name
    hours = console.app.desk.config.hours
    authors = await authors_of(console.app)
    stream = await EventStream(request).open()
    quiet = 0.0
    with contextlib.suppress(ConnectionResetError):
        while not console.stopping.is_set():
            snapshot = await _peek(console, staff.counsellor, case_id)
            if snapshot is None:
                await stream.send("gone", {"message": t("case.gone")})
                break
            now, lines = snapshot
            if now != state:
                await stream.send("case", case_state_json(state, now, t, me))
                state = now
            seen = min(seen, len(lines))
            fresh = lines[seen:]
            if any(line.counsellor_id not in authors for line in fresh if line.counsellor_id):
                authors = await authors_of(console.app)
            for n, line in enumerate(fresh, seen + 1):
                row = line_json(n, line, t, hours, authors)
                await stream.send("line", row, event_id=str(n))
            seen = len(lines)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(console.stopping.wait(), timeout=1.0)
            quiet += 1.0
            if quiet >= HEARTBEAT:
                quiet = 0.0
                if not await _heartbeat(stream, console, staff):
                    break
    return stream.response


async def case_seen(request: web.Request) -> web.StreamResponse:
    """The page's script: the counsellor has seen the case's lines up to message `upto`."""
    console, staff = console_of(request), staff_of(request)
    case_id = int(request.match_info["case_id"])
    form = await request.post()
    try:
        upto = int(_field(form, "upto", 20) or "0")
    except ValueError:
        upto = 0
    if await _peek(console, staff.counsellor, case_id) is None:
        return web.json_response({"ok": False, "error": "not_yours"}, status=403)
    stored = await mark_seen(console.app, staff.counsellor.id, case_id, upto)
    console.feed.wake()
    return web.json_response({"ok": True, "seen": stored})


def _read_evidence(root: Path, stored: str) -> tuple[bytes, str] | None:
    """The file's bytes and suffix, if it is a file inside the evidence folder."""
    path = Path(stored).resolve()
    if not path.is_relative_to(root.resolve()) or not path.is_file():
        return None
    return read_evidence(path), path.suffix.lower()


async def evidence_file(request: web.Request) -> web.StreamResponse:
    """One evidence file of a case, to staff who may see the case; audited."""
    console, staff = console_of(request), staff_of(request)
    case_id = int(request.match_info["case_id"])
    n = int(request.match_info["n"])
    async with console.app.db.session() as s:
        repos = Repos(s)
        case = await repos.cases.get(case_id)
        if case is None or not console.app.desk._may_see(staff.counsellor, case):
            raise web.HTTPForbidden()
        files = list(await repos.attachments.for_case(case_id))
        if not 1 <= n <= len(files) or not files[n - 1].stored_path:
            raise web.HTTPNotFound()
        stored = str(files[n - 1].stored_path)
        await repos.audit.record(
            "evidence_viewed", counsellor_id=staff.counsellor.id, case_id=case_id, detail=f"#{n}"
        )
    found = await asyncio.to_thread(_read_evidence, Path(console.settings.evidence_dir), stored)
    if found is None:
        log.warning("web console: an evidence file of case %s is missing or misplaced", case_id)
        raise web.HTTPNotFound()
    body, suffix = found
    if suffix in IMAGE_TYPES:
        return web.Response(
            body=body, content_type=IMAGE_TYPES[suffix], headers={"Cache-Control": "no-store"}
        )
    # Anything else is downloaded, never rendered in the console's origin.
    return web.Response(
        body=body,
        content_type="application/octet-stream",
        headers={
            "Cache-Control": "no-store",
            "Content-Disposition": f'attachment; filename="case-{case_id}-file-{n}{suffix}"',
        },
    )


# ---------------------------------------------------------------------- acting on a case
def _field(form: Any, name: str, limit: int = 4000) -> str:
    value = form.get(name, "")
    return value.strip()[:limit] if isinstance(value, str) else ""


def _block_days(form: Any) -> int:
    try:
        days = int(_field(form, "days", 4) or "0")
    except ValueError:
        days = 0
    return days if days in BLOCK_DAYS else 0


def form_command(action: str, case_id: int, form: Any, limit: int) -> DeskCommand | str:
    """A posted form as a desk command, or the error key of a form that makes none."""
    match action:
        case "take":
            return Take(case_id)
        case "release":
            return Release(case_id, _field(form, "note", 2000))
        case "close":
            return Close(case_id, _field(form, "outcome", 64))
        case "reply":
            text, canned = _field(form, "text", limit), _field(form, "canned", 200)
            if canned and not text:
                return ReplyCanned(case_id, canned)
            return Reply(case_id, text) if text else "empty"
        case "note":
            text = _field(form, "text", limit)
            return Note(case_id, text) if text else "empty"
        case "risk":
            return ChangeRisk(case_id, _field(form, "risk", 16), _field(form, "note", 2000))
        case "transfer":
            return Transfer(case_id, _field(form, "to", 64), _field(form, "note", 2000))
        case "block":
            until = utcnow() + timedelta(days=_block_days(form))
            confirmed = _field(form, "confirmed", 8) in ("1", "on", "yes")
            return Block(case_id, _field(form, "reason", 2000), until, confirmed)
        case "unblock":
            return Unblock(case_id)
    raise web.HTTPNotFound()


# Where the browser goes after an action that went through: the done message and the page.
DONE = {
    "take": ("taken", False), "release": ("released", True), "close": ("closed", True),
    "reply": ("sent", False), "note": ("noted", False), "risk": ("risk", False),
    "transfer": ("transferred", True), "block": ("blocked", True),
    "unblock": ("unblocked", False),
}


async def case_action(request: web.Request) -> web.StreamResponse:
    """A thin translator: the form becomes a desk command, `Desk.execute` decides, and the
    result becomes a page (or JSON for the page's script)."""
    console, staff = console_of(request), staff_of(request)
    case_id = int(request.match_info["case_id"])
    action = request.match_info["action"]
    form = await request.post()
    here = f"/cases/{case_id}"
    command = form_command(action, case_id, form, console.settings.max_text_chars)
    if isinstance(command, str):
        return _respond(request, None, command, here)
    result = await console.app.desk.execute(staff.counsellor, command)
    done, to_queue = DONE[action]
    if result.ok:
        await console.app.delivery.deliver(result.outbound)
        console.feed.wake()
        if result.over_capacity:
            done = "taken_over"
    return _respond(request, result, done, "/" if to_queue else here)


def _respond(
    request: web.Request, result: DeskResult | None, done: str, target: str
) -> web.StreamResponse:
    """JSON for the page's script; for a plain form, back to a page with a message."""
    ok = result is not None and result.ok
    error = (result.error.value if result and result.error else done) if not ok else None
    if wants_json(request):
        status = 200 if ok else ERROR_STATUS.get(result.error, 400) if result and result.error \
            else 400
        t = texts_of(request)
        key = f"done.{done}" if ok else f"error.{error}"
        body: dict[str, Any] = {
            "ok": ok,
            "error": error,
            # Said on the page without a reload (the draft being typed stays where it is).
            "message": t(key) if t.has(key) else t("error.unknown"),
            "next": f"{target}?done={done}" if ok and target == "/" else None,
        }
        if result is not None and result.over_capacity:
            body["over_capacity"] = result.over_capacity
        return web.json_response(body, status=status)
    if ok:
        raise web.HTTPSeeOther(f"{target}?done={done}")
    case_page = request.path.rsplit("/", 1)[0]
    raise web.HTTPSeeOther(f"{case_page}?error={error}")


# ---------------------------------------------------------------------- supervisors
@dataclass(frozen=True, slots=True)
class Chart:
    """One of the report's tables as bars: only counts shown as numbers are drawn."""

    title: str
    bars: Sequence[tuple[str, str, int, str]]  # label, shown value, exact count, css class
    top: int
    hidden: Sequence[str]


def _chart(
    title: str, table: Table, css: str = "", label_of: Callable[[str, str], str] | None = None
) -> Chart:
    shown = table.shown
    bars = [
        (
            label_of(key, label) if label_of else label,
            shown[key],
            n if shown[key].isdigit() else 0,
            f"{css}{key}" if css else "",
        )
        for key, label, n in table.rows
        if n
    ]
    hidden = [label for key, label, n in table.rows if n and not shown[key].isdigit()]
    return Chart(title, bars, max([b[2] for b in bars] + [1]), hidden)


async def supervisor_page(request: web.Request) -> web.StreamResponse:
    console, staff, t = console_of(request), staff_of(request), texts_of(request)
    desk = console.app.desk
    if not staff.is_supervisor:
        return render(request, "error.html", status=403, message=t("error.forbidden"))
    zone = desk.config.hours.zone
    now = utcnow()
    figures = await today(console.app.db, now, zone)
    day = now.astimezone(zone).date()
    report = await build_report(console.app.db, day, day, zone=zone, locale=t.locale)
    titles = {
        "risk": t("board.by_risk"),
        "category": t("board.by_category"),
        "platform": t("col.channel"),
        "outcome": t("board.by_outcome"),
    }
    def risk_label(key: str, label: str) -> str:
        return Risk(key).label(t.locale) if key in Risk._value2member_map_ else label

    charts = [
        _chart(title, report.table(name), *(("risk-", risk_label) if name == "risk" else ()))
        for name, title in titles.items()
    ]
    hours = [(b.label, str(b.value), b.value, "") for b in figures.by_hour]
    charts.insert(1, Chart(t("board.by_hour"), hours, max([b[2] for b in hours] + [1]), ()))
    wall = await _wall(console)
    return render(
        request,
        "board.html",
        # Supervisors see the overload (a critical case taken beyond the limit) on the wall.
        wall=wall,
        charts=charts,
        times=report.times,
        zone=str(zone),
        **wall_context(console, t),
    )


async def _wall(console: Console) -> Wall:
    desk = console.app.desk
    return await wallboard(
        console.app.db,
        utcnow(),
        zone=desk.config.hours.zone,
        target=console.critical_target,
        capacity=desk.config.capacity,
    )


def wall_context(console: Console, t: Texts) -> dict[str, Any]:
    return {
        "zone_label": str(console.app.desk.config.hours.zone),
        "fmt_minutes": lambda m: t("board.none") if m is None else t("minutes", n=round(m)),
    }


def wall_json(request: web.Request, wall: Wall) -> dict[str, Any]:
    t = texts_of(request)
    return {
        "alarms": wall.alarms,
        "alarm_title": t("wall.alarm_title", n=wall.alarms),
        "alarm_text": t("wall.alarm", n=wall.alarms, target=wall.target_minutes),
        "waiting": wall.waiting,
        "oldest_minutes": wall.oldest_minutes,
        "over_capacity": [h.name for h in wall.holders if h.over],
        "html": fragment(request, "_wall.html", wall=wall,
                         **wall_context(console_of(request), t)),
    }


async def wallboard_api(request: web.Request) -> web.StreamResponse:
    console, staff = console_of(request), staff_of(request)
    if not staff.is_supervisor:
        return web.json_response({"error": "supervisor_only"}, status=403)
    return web.json_response(wall_json(request, await _wall(console)))


WALL_TICK = 5.0


async def wallboard_events(request: web.Request) -> web.StreamResponse:
    """The wallboard, live: a `wall` event whenever it changes (on every desk change, and at
    least every few seconds, since waiting times and response clocks run on their own)."""
    console, staff = console_of(request), staff_of(request)
    if not staff.is_supervisor:
        return web.json_response({"error": "supervisor_only"}, status=403)
    stream = await EventStream(request).open()
    last: dict[str, Any] | None = None
    quiet = 0.0
    tick = min(WALL_TICK, console.feed.interval * 5)
    with contextlib.suppress(ConnectionResetError):
        async with console.feed.listen() as updates:
            while not console.stopping.is_set():
                data = wall_json(request, await _wall(console))
                if data != last:
                    await stream.send("wall", data)
                    last = data
                changed = await _next(updates, console.stopping, tick)
                quiet = 0.0 if changed is not None else quiet + tick
                if quiet >= HEARTBEAT:
                    quiet = 0.0
                    if not await _heartbeat(stream, console, staff):
                        break
    return stream.response


async def alert_sound(request: web.Request) -> web.StreamResponse:
    return web.Response(
        body=console_of(request).sound,
        content_type="audio/wav",
        headers={"Cache-Control": "public, max-age=86400"},
    )


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/signin", signin_page)
    r.add_post("/signin", signin_post)
    r.add_post("/signout", signout)
    r.add_get("/", queue_page)
    r.add_get("/api/queue", queue_api)
    r.add_get("/events/queue", queue_events)
    r.add_get(r"/cases/{case_id:\d+}", case_page)
    r.add_get(r"/events/cases/{case_id:\d+}", case_events)
    r.add_get(r"/cases/{case_id:\d+}/evidence/{n:\d+}", evidence_file)
    r.add_post(
        r"/cases/{case_id:\d+}/{action:take|release|close|reply|note|risk|transfer|block|unblock}",
        case_action,
    )
    r.add_post(r"/cases/{case_id:\d+}/seen", case_seen)
    r.add_get("/supervisor", supervisor_page)
    r.add_get("/api/wallboard", wallboard_api)
    r.add_get("/events/wallboard", wallboard_events)
    r.add_get("/sound/alert.wav", alert_sound)
