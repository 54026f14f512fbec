"""Rendering a page: the template with everything every page needs (texts, the signed-in
counsellor and their CSRF token, the language switch, a message after an action). The live
streams render fragments of the same templates (`fragment`), so a row looks the same whether
the page drew it or a live update did."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot.web.state import STAFF, Texts, console_of, texts_of
from dialogs.catalogue import LOCALES
from dialogs.desk import desk_time
from dialogs.escalation import DeskError
from dialogs.taxonomy import Risk, category_label, is_category, is_outcome, outcome_label

DONE_KEYS = {
    "taken", "released", "closed", "sent", "noted", "risk", "transferred", "blocked", "unblocked",
    "taken_over",
}
ERROR_KEYS = {e.value for e in DeskError} | {"empty", "unknown", "forbidden"}


def labelled(t: Texts, prefix: str, key: str | None, fallback: str | None = None) -> str:
    """A code shown to people: its label from the texts, never the code itself unless no label
    exists (then `fallback`, if given)."""
    if key is None:
        return ""
    name = f"{prefix}.{key}"
    if t.has(name):
        return t(name)
    return key if fallback is None else fallback


def code_label(t: Texts, code: str) -> str:
    """A code the desk writes into its trail (a risk, category, outcome, signal, status or
    source of danger) in words; anything else as it is."""
    if code in Risk._value2member_map_:
        return Risk(code).label(t.locale)
    if is_category(code):
        return category_label(code, t.locale)
    if is_outcome(code):
        return outcome_label(code, t.locale)
    for prefix in ("signal", "source", "status"):
        if t.has(f"{prefix}.{code}"):
            return t(f"{prefix}.{code}")
    return code


def _codes(t: Texts, text: str) -> str:
    return ", ".join(
        " ".join(code_label(t, word) for word in part.split(" ")) for part in text.split(",")
    )


def audit_detail(t: Texts, action: str, detail: str) -> str:
    """An audit line's detail for people: the desk's codes in words, free text untouched."""
    if not detail:
        return ""
    if action == "opened":
        head, _, signals = detail.partition(" signals=")
        words = " · ".join(code_label(t, w) for w in head.split())
        return words + (f" · {t('case.signals')}: {_codes(t, signals)}" if signals else "")
    if action in ("risk_changed", "category_changed"):
        change, colon, reason = detail.partition(": ")
        old, _, new = change.partition(" -> ")
        return f"{code_label(t, old)} → {code_label(t, new)}{colon}{reason}"
    if action in ("risk_raised", "danger_again"):
        source, _, what = detail.partition(": ")
        return f"{code_label(t, source)}: {_codes(t, what)}"
    if action in ("closed", "child_left"):
        return code_label(t, detail)
    return detail


def common(request: web.Request) -> dict[str, Any]:
    """What every template (page or fragment) may use."""
    console = console_of(request)
    t = texts_of(request)
    staff = request.get(STAFF)
    locale = t.locale
    hours = console.app.desk.config.hours
    return {
        "t": t,
        "locale": locale,
        "staff": staff,
        "csrf": staff.csrf if staff is not None else "",
        "risk_label": lambda r: Risk(r).label(locale) if r in Risk._value2member_map_ else r,
        "category_label": lambda c: category_label(c, locale),
        "outcome_label": lambda o: outcome_label(o, locale),
        "status_label": lambda s: labelled(t, "status", s),
        "channel_label": lambda c: labelled(t, "channel", c),
        "audit_label": lambda a: labelled(t, "audit", a),
        "audit_detail": lambda a, d: audit_detail(t, a, d),
        "kind_label": lambda k: labelled(t, "kind", k),
        # Every time shown in the help line's zone, labelled ("14:05 MSK").
        "desk_time": lambda moment, fmt="%H:%M": desk_time(moment, hours, fmt),
    }


def fragment(request: web.Request, template: str, **context: Any) -> str:
    """A template rendered with the common context only (for live updates)."""
    console = console_of(request)
    return console.templates.get_template(template).render(**common(request), **context)


def render(
    request: web.Request, template: str, *, status: int = 200, **context: Any
) -> web.Response:
    console = console_of(request)
    t = texts_of(request)
    done = request.query.get("done", "")
    error = request.query.get("error", "")
    page = console.templates.get_template(template).render(
        **common(request),
        other_locale=next(loc for loc in LOCALES if loc != t.locale),
        path=request.path,
        done=t(f"done.{done}") if done in DONE_KEYS else "",
        error=t(f"error.{error}") if error in ERROR_KEYS and t.has(f"error.{error}") else "",
        **context,
    )
    return web.Response(text=page, status=status, content_type="text/html", charset="utf-8")
