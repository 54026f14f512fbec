"""Rendering a page: the template with everything every page needs (texts, the signed-in
counsellor and their CSRF token, the language switch, a message after an action)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot.web.state import STAFF, console_of, texts_of
from dialogs.catalogue import LOCALES
from dialogs.desk import desk_time
from dialogs.escalation import DeskError
from dialogs.taxonomy import Risk, category_label, outcome_label

DONE_KEYS = {
    "taken", "released", "closed", "sent", "noted", "risk", "transferred", "blocked", "unblocked",
    "taken_over",
}
ERROR_KEYS = {e.value for e in DeskError} | {"empty", "unknown", "forbidden"}


def render(
    request: web.Request, template: str, *, status: int = 200, **context: Any
) -> web.Response:
    console = console_of(request)
    t = texts_of(request)
    staff = request.get(STAFF)
    locale = t.locale
    hours = console.app.desk.config.hours
    done = request.query.get("done", "")
    error = request.query.get("error", "")
    page = console.templates.get_template(template).render(
        t=t,
        locale=locale,
        other_locale=next(loc for loc in LOCALES if loc != locale),
        staff=staff,
        csrf=staff.csrf if staff is not None else "",
        path=request.path,
        done=t(f"done.{done}") if done in DONE_KEYS else "",
        error=t(f"error.{error}") if error in ERROR_KEYS and t.has(f"error.{error}") else "",
        risk_label=lambda r: Risk(r).label(locale) if r in Risk._value2member_map_ else r,
        category_label=lambda c: category_label(c, locale),
        outcome_label=lambda o: outcome_label(o, locale),
        status_label=lambda s: t(f"status.{s}") if t.has(f"status.{s}") else s,
        audit_label=lambda a: t(f"audit.{a}") if t.has(f"audit.{a}") else a,
        # Every time shown in the help line's zone, labelled ("14:05 MSK").
        desk_time=lambda moment, fmt="%H:%M": desk_time(moment, hours, fmt),
        **context,
    )
    return web.Response(text=page, status=status, content_type="text/html", charset="utf-8")
