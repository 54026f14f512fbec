"""Signing counsellors in and out of the web console, and the checks on every request.

* Passwords are hashed with argon2id (argon2-cffi's defaults); the check runs in a thread, as it
  is meant to be slow. An unknown name is checked against a dummy hash, so the answer takes as
  long and says the same as for a wrong password.
* An account with a TOTP secret needs its current code too (pyotp; one step of clock drift either
  way), and a code is accepted once only.
* `WEB_LOCKOUT_ATTEMPTS` failures in a row lock the account for `WEB_LOCKOUT_MINUTES`.
* A session is a random token in an HttpOnly, SameSite=Strict cookie (Secure, and with the
  `__Host-` prefix, when `WEB_COOKIE_SECURE`); the database keeps only its SHA-256. It ends after
  `WEB_SESSION_MINUTES` without a request, and `WEB_SESSION_MAX_HOURS` after sign-in in any case.
* Every POST carries the session's CSRF token (a form field or the `X-CSRF-Token` header); the
  sign-in form, before there is a session, uses a double-submit cookie.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from urllib.parse import quote, urlsplit

import pyotp
from aiohttp import web
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from bot.settings import Settings
from bot.web.pages import render
from bot.web.state import LOCALE, STAFF, Console, Staff, console_of, texts_of
from dialogs.catalogue import LOCALES
from storage.db import Database
from storage.models import Counsellor, utcnow
from storage.repositories import Repos

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

HASHER = PasswordHasher()
MIN_PASSWORD = 10
PRE_COOKIE = "helpline_pre"
LANG_COOKIE = "helpline_lang"
TOUCH_EVERY = timedelta(seconds=60)
# Routes that answer without a session: signing in, the health checks a load balancer and
# Prometheus call (they carry no case data), and the static files (code, styles, a beep).
PUBLIC_PATHS = {"/signin", "/healthz", "/readyz", "/metrics", "/sound/alert.wav"}
PUBLIC_PREFIXES = ("/static/",)


def session_cookie(settings: Settings) -> str:
    # "__Host-" makes the browser refuse the cookie unless Secure, Path=/ and host-only.
    return "__Host-helpline" if settings.web_cookie_secure else "helpline_session"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# ---------------------------------------------------------------------- passwords and codes
def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"a password needs at least {MIN_PASSWORD} characters")
    return HASHER.hash(password)


@cache
def _dummy_hash() -> str:
    """Verified against when the name is unknown, so that costs as long as a wrong password."""
    return HASHER.hash(secrets.token_urlsafe(16))


def check_password(stored: str | None, password: str) -> bool:
    try:
        return HASHER.verify(stored or _dummy_hash(), password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_uri(secret: str, name: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=name, issuer_name="Helpline console")


def totp_step(
    secret: str, code: str, last_step: int | None, now: float | None = None
) -> int | None:
    """The time step `code` belongs to (this one or one either side), if it is right and newer
    than the last accepted step; else None."""
    code = code.strip().replace(" ", "")
    if not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    here = int((time.time() if now is None else now) // totp.interval)
    for offset in (0, -1, 1):
        step = here + offset
        if secrets.compare_digest(totp.generate_otp(step), code):
            if last_step is not None and step <= last_step:
                return None
            return step
    return None


# ---------------------------------------------------------------------- signing in
@dataclass(frozen=True, slots=True)
class SignIn:
    """What a sign-in attempt came to: a session token, or the reason it was refused."""

    token: str | None = None
    error: str | None = None  # failed | locked | totp_required
    locked_minutes: int = 0
    counsellor: Counsellor | None = None


async def sign_in(
    db: Database, settings: Settings, name: str, password: str, code: str
) -> SignIn:
    """Check a name, password and code; on success open a session and return its token."""
    async with db.session() as s:
        repos = Repos(s)
        counsellor = await repos.counsellors.by_name(name.strip()) if name.strip() else None
        if counsellor is not None and not counsellor.active:
            counsellor = None
        cred = await repos.credentials.get(counsellor.id) if counsellor else None
        now = utcnow()
        if cred is not None and cred.locked_until is not None and cred.locked_until > now:
            minutes = int((cred.locked_until - now).total_seconds() // 60) + 1
            return SignIn(error="locked", locked_minutes=minutes)
        stored = cred.password_hash if cred else None
        totp_secret = cred.totp_secret if cred else None
        last_step = cred.totp_last_step if cred else None
    good = await asyncio.to_thread(check_password, stored, password)
    step: int | None = None
    if good and totp_secret:
        step = totp_step(totp_secret, code, last_step)
        good = step is not None
    if counsellor is None or cred is None:
        return SignIn(error="failed")
    async with db.session() as s:
        repos = Repos(s)
        if not good:
            locked = await repos.credentials.failed(
                counsellor.id,
                limit=settings.web_lockout_attempts,
                lock_until=utcnow() + timedelta(minutes=settings.web_lockout_minutes),
            )
            await repos.audit.record(
                "web_locked" if locked else "web_signin_failed",
                counsellor_id=counsellor.id,
                case_id=None,
            )
            if locked:
                log.warning("web console: counsellor %s locked out", counsellor.id)
                return SignIn(error="locked", locked_minutes=settings.web_lockout_minutes)
            return SignIn(error="failed")
        if settings.web_require_totp and not totp_secret:
            return SignIn(error="totp_required")
        await repos.credentials.succeeded(counsellor.id, step)
        if HASHER.check_needs_rehash(stored or ""):
            await repos.credentials.set_password(counsellor.id, HASHER.hash(password))
        token = secrets.token_urlsafe(32)
        await repos.web_sessions.add(
            hash_token(token),
            counsellor.id,
            secrets.token_urlsafe(32),
            utcnow() + _idle(settings),
        )
        await repos.web_sessions.purge_expired(utcnow())
        await repos.audit.record("web_signin", counsellor_id=counsellor.id, case_id=None)
    log.info("web console: counsellor %s signed in", counsellor.id)
    return SignIn(token=token, counsellor=counsellor)


def _idle(settings: Settings) -> timedelta:
    return timedelta(minutes=settings.web_session_minutes)


async def load_staff(db: Database, settings: Settings, token: str) -> Staff | None:
    """The live session of a cookie token, extended on use; None if unknown or expired."""
    id_hash = hash_token(token)
    async with db.session() as s:
        repos = Repos(s)
        row = await repos.web_sessions.get(id_hash)
        if row is None:
            return None
        now = utcnow()
        hard_end = row.created_at + timedelta(hours=settings.web_session_max_hours)
        counsellor = await repos.counsellors.get(row.counsellor_id)
        if row.expires_at <= now or hard_end <= now or counsellor is None or not counsellor.active:
            await repos.web_sessions.delete(id_hash)
            return None
        if now - row.last_seen_at >= TOUCH_EVERY:
            await repos.web_sessions.touch(id_hash, now, min(now + _idle(settings), hard_end))
        return Staff(counsellor=counsellor, session_hash=id_hash, csrf=row.csrf_token)


async def sign_out(db: Database, staff: Staff) -> None:
    async with db.session() as s:
        repos = Repos(s)
        await repos.web_sessions.delete(staff.session_hash)
        await repos.audit.record("web_signout", counsellor_id=staff.counsellor.id, case_id=None)


async def set_password(db: Database, name: str, password: str) -> Counsellor | None:
    """Set a counsellor's web password (and sign them out everywhere); None if no such name."""
    hashed = await asyncio.to_thread(hash_password, password)
    async with db.session() as s:
        repos = Repos(s)
        counsellor = await repos.counsellors.by_name(name)
        if counsellor is None:
            return None
        await repos.credentials.set_password(counsellor.id, hashed)
        await repos.web_sessions.delete_for(counsellor.id)
        await repos.audit.record("web_password_set", counsellor_id=counsellor.id, case_id=None)
        return counsellor


async def set_totp(db: Database, name: str, secret: str | None) -> bool:
    """Turn a counsellor's second factor on (with `secret`) or off; False without a password."""
    async with db.session() as s:
        repos = Repos(s)
        counsellor = await repos.counsellors.by_name(name)
        if counsellor is None or not await repos.credentials.set_totp(counsellor.id, secret):
            return False
        await repos.web_sessions.delete_for(counsellor.id)
        await repos.audit.record(
            "web_totp_on" if secret else "web_totp_off", counsellor_id=counsellor.id, case_id=None
        )
        return True


# ---------------------------------------------------------------------- cookies and redirects
def set_cookie(
    response: web.StreamResponse,
    settings: Settings,
    name: str,
    value: str,
    *,
    max_age: int | None = None,
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=settings.web_cookie_secure,
    )


def clear_cookie(response: web.StreamResponse, settings: Settings, name: str) -> None:
    response.del_cookie(
        name, path="/", secure=settings.web_cookie_secure, httponly=True, samesite="Strict"
    )


def local_path(target: str | None, default: str = "/") -> str:
    """`target` if it is a path on this site (no scheme, host or `//`), else `default`: no open
    redirects through ?next=."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


def wants_401(request: web.Request) -> bool:
    """API calls, event streams, files and form posts get 401; page loads go to sign-in."""
    path = request.path
    return (
        request.method != "GET"
        or path.startswith(("/api/", "/events/"))
        or "/evidence/" in path
        or "text/event-stream" in request.headers.get("Accept", "")
    )


def _public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def csrf_ok(expected: str, given: str | None) -> bool:
    return bool(given) and secrets.compare_digest(expected.encode(), str(given).encode())


async def posted_csrf(request: web.Request) -> str | None:
    header = request.headers.get("X-CSRF-Token")
    if header:
        return header
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        value = form.get("csrf")
        return value if isinstance(value, str) else None
    return None


# ---------------------------------------------------------------------- middlewares
@web.middleware
async def locale_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The page language: `?lang=ru|en` switches it (and remembers it in a cookie); else the
    browser's first language if it is one of ours; else DEFAULT_LOCALE."""
    console = console_of(request)
    chosen = request.query.get("lang")
    remembered = request.cookies.get(LANG_COOKIE)
    accepted = request.headers.get("Accept-Language", "").split(",")[0].split(";")[0]
    browser = accepted.strip().lower().split("-")[0]
    locale = next(
        (c for c in (chosen, remembered, browser) if c in LOCALES),
        console.settings.default_locale,
    )
    request[LOCALE] = locale
    response = await handler(request)
    if chosen in LOCALES and chosen != remembered:
        set_cookie(response, console.settings, LANG_COOKIE, locale, max_age=365 * 24 * 3600)
    return response


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """No session, no answer (but for the public routes); a POST needs its CSRF token."""
    if _public(request.path):
        return await handler(request)
    console = console_of(request)
    token = request.cookies.get(session_cookie(console.settings))
    staff = await load_staff(console.app.db, console.settings, token) if token else None
    if staff is None:
        if wants_401(request):
            return web.json_response({"error": "signed_out"}, status=401)
        target = request.path_qs if request.method == "GET" else "/"
        raise web.HTTPFound(f"/signin?next={quote(target, safe='')}")
    if request.method not in ("GET", "HEAD", "OPTIONS") and not csrf_ok(
        staff.csrf, await posted_csrf(request)
    ):
        log.warning("web console: a request with a bad CSRF token was refused")
        if request.headers.get("Accept", "").startswith("application/json"):
            return web.json_response({"error": "csrf"}, status=403)
        request[STAFF] = staff
        return render(
            request, "error.html", status=403, message=texts_of(request)("error.csrf")
        )
    request[STAFF] = staff
    return await handler(request)


CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "media-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)


@web.middleware
async def headers_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Strict browser policies on every answer: nothing from elsewhere, nothing framed, nothing
    cached but the static files."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        response = exc
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    if not request.path.startswith("/static/"):
        response.headers.setdefault("Cache-Control", "no-store")
    if isinstance(response, web.HTTPException):
        raise response
    return response


def console_middlewares() -> list[Callable[..., Awaitable[web.StreamResponse]]]:
    return [headers_middleware, locale_middleware, auth_middleware]


__all__ = [
    "Console",
    "SignIn",
    "check_password",
    "console_middlewares",
    "hash_password",
    "load_staff",
    "set_password",
    "set_totp",
    "sign_in",
    "sign_out",
]
