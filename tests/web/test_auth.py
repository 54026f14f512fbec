"""Signing in and out: argon2 passwords, TOTP, lockout, cookies, CSRF, expiry, and that nothing
answers without a session."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any
from urllib.parse import unquote

import pyotp
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select, update

from bot.app import App
from bot.web import auth, build_console
from storage.models import AuditEvent, Counsellor, StaffCredential, WebSession, utcnow
from storage.repositories import Repos

from .conftest import PASSWORD, Child, csrf_of, sign_in


async def test_nothing_answers_without_a_session(
    client: TestClient[Any, Any], anna: Counsellor, child: Child
) -> None:
    await child.asks_for_a_person()
    page = await client.get("/", allow_redirects=False)
    assert page.status == 302 and unquote(page.headers["Location"]) == "/signin?next=/"
    case = await client.get("/cases/1", allow_redirects=False)
    assert unquote(case.headers["Location"]) == "/signin?next=/cases/1"
    assert (await client.get("/supervisor", allow_redirects=False)).status == 302
    for path in ("/api/queue", "/events/queue", "/events/cases/1", "/cases/1/evidence/1"):
        answer = await client.get(path, allow_redirects=False)
        assert answer.status == 401, path
    take = await client.post("/cases/1/take", data={"csrf": "x"}, allow_redirects=False)
    assert take.status == 401
    assert (await client.post("/signout", allow_redirects=False)).status == 401
    # What stays public: sign-in, health checks, static code and the alert sound.
    assert (await client.get("/signin")).status == 200
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/static/console.js")).status == 200
    wav = await client.get("/sound/alert.wav")
    assert wav.status == 200 and (await wav.read())[:4] == b"RIFF"


async def test_sign_in_sets_a_strict_http_only_cookie_and_signs_out(
    app: App, client: TestClient[Any, Any], anna: Counsellor
) -> None:
    answer = await sign_in(client, "anna")
    assert answer.status == 302 and answer.headers["Location"] == "/"
    cookie = next(c for c in answer.headers.getall("Set-Cookie") if "helpline_session=" in c)
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # WEB_COOKIE_SECURE is off in these tests
    page = await client.get("/")
    assert page.status == 200 and "anna" in await page.text()
    token = await csrf_of(client)
    out = await client.post("/signout", data={"csrf": token}, allow_redirects=False)
    assert out.status == 302 and out.headers["Location"] == "/signin?m=signed_out"
    assert (await client.get("/", allow_redirects=False)).status == 302
    async with app.db.session() as s:
        assert (await s.execute(select(WebSession))).scalars().all() == [], "session deleted"
    actions = [a for _, _, a, _ in await _staff_audit(app, anna.id)]
    assert actions[-2:] == ["web_signin", "web_signout"]


async def test_secure_cookie_when_configured(make_app: Any, anna: Counsellor) -> None:
    secure_app = make_app(web_cookie_secure=True)
    async with TestClient(TestServer(build_console(secure_app))) as client:
        page = await client.get("/signin")
        pre = next(c for c in page.headers.getall("Set-Cookie") if "helpline_pre=" in c)
        assert "Secure" in pre
        token = (await page.text()).split('name="csrf" value="')[1].split('"')[0]
        # The test client speaks plain HTTP, so it will not send Secure cookies back: pass it.
        answer = await client.post(
            "/signin",
            data={"csrf": token, "name": "anna", "password": PASSWORD},
            headers={"Cookie": f"helpline_pre={token}"},
            allow_redirects=False,
        )
        cookie = next(c for c in answer.headers.getall("Set-Cookie") if "__Host-helpline=" in c)
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie


async def test_wrong_password_and_unknown_name_say_the_same(
    client: TestClient[Any, Any], anna: Counsellor
) -> None:
    wrong = await sign_in(client, "anna", "not the password")
    unknown = await sign_in(client, "nobody", PASSWORD)
    assert wrong.status == unknown.status == 401
    assert "Неверное имя, пароль или код." in await wrong.text()
    assert "Неверное имя, пароль или код." in await unknown.text()
    assert (await client.get("/", allow_redirects=False)).status == 302


async def test_sign_in_form_needs_its_own_csrf_token(
    client: TestClient[Any, Any], anna: Counsellor
) -> None:
    await client.get("/signin")
    forged = await client.post(
        "/signin",
        data={"csrf": "forged", "name": "anna", "password": PASSWORD},
        allow_redirects=False,
    )
    assert forged.status == 403
    assert (await client.get("/", allow_redirects=False)).status == 302


async def test_five_failures_lock_the_account_for_a_while(
    app: App, client: TestClient[Any, Any], anna: Counsellor
) -> None:
    for _ in range(4):
        assert (await sign_in(client, "anna", "wrong password!")).status == 401
    fifth = await sign_in(client, "anna", "wrong password!")
    assert fifth.status == 429 and "15" in await fifth.text()
    locked = await sign_in(client, "anna")  # even the right password
    assert locked.status == 429
    async with app.db.session() as s:
        await s.execute(
            update(StaffCredential).values(locked_until=utcnow() - timedelta(seconds=1))
        )
    assert (await sign_in(client, "anna")).status == 302
    actions = [a for _, _, a, _ in await _staff_audit(app, anna.id)]
    assert actions.count("web_signin_failed") == 4 and "web_locked" in actions


async def test_totp_second_factor_and_no_replay(
    app: App, client: TestClient[Any, Any], anna: Counsellor
) -> None:
    secret = auth.new_totp_secret()
    assert await auth.set_totp(app.db, "anna", secret)
    assert (await sign_in(client, "anna")).status == 401, "the code is required"
    assert (await sign_in(client, "anna", code="000000")).status == 401
    code = pyotp.TOTP(secret).now()
    assert (await sign_in(client, "anna", code=code)).status == 302
    other = TestClient(client.server)
    async with other:
        assert (await sign_in(other, "anna", code=code)).status == 401, "a code works once"
    assert auth.totp_step(secret, pyotp.TOTP(secret).at(time.time() - 30), None) is not None
    assert auth.totp_step(secret, pyotp.TOTP(secret).at(time.time() - 300), None) is None


async def test_required_totp_refuses_accounts_without_it(
    make_app: Any, anna: Counsellor
) -> None:
    strict = make_app(web_require_totp=True)
    async with TestClient(TestServer(build_console(strict))) as client:
        answer = await sign_in(client, "anna")
        assert answer.status == 403 and "второй фактор" in await answer.text()


async def test_sessions_expire_when_idle_and_after_the_maximum(
    app: App, client: TestClient[Any, Any], anna: Counsellor
) -> None:
    assert (await sign_in(client, "anna")).status == 302
    async with app.db.session() as s:
        await s.execute(update(WebSession).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert (await client.get("/", allow_redirects=False)).status == 302
    assert (await client.get("/api/queue")).status == 401

    assert (await sign_in(client, "anna")).status == 302
    async with app.db.session() as s:
        await s.execute(update(WebSession).values(created_at=utcnow() - timedelta(hours=13)))
    assert (await client.get("/", allow_redirects=False)).status == 302


async def test_use_extends_an_idle_session(
    app: App, client: TestClient[Any, Any], anna: Counsellor
) -> None:
    assert (await sign_in(client, "anna")).status == 302
    soon = utcnow() + timedelta(minutes=1)
    async with app.db.session() as s:
        await s.execute(
            update(WebSession).values(
                expires_at=soon, last_seen_at=utcnow() - timedelta(minutes=5)
            )
        )
    assert (await client.get("/")).status == 200
    async with app.db.session() as s:
        [row] = (await s.execute(select(WebSession))).scalars().all()
    assert row.expires_at > soon + timedelta(minutes=20)


async def test_a_new_password_signs_out_everywhere_and_disabled_staff_are_out(
    app: App, client: TestClient[Any, Any], anna: Counsellor
) -> None:
    assert (await sign_in(client, "anna")).status == 302
    await auth.set_password(app.db, "anna", "another long password")
    assert (await client.get("/", allow_redirects=False)).status == 302
    assert (await sign_in(client, "anna", "another long password")).status == 302
    async with app.db.session() as s:
        (await Repos(s).counsellors.get(anna.id)).active = False  # type: ignore[union-attr]
    assert (await client.get("/", allow_redirects=False)).status == 302
    assert (await sign_in(client, "anna", "another long password")).status == 401


async def test_passwords_are_argon2_hashes_and_short_ones_are_refused(
    app: App, anna: Counsellor
) -> None:
    async with app.db.session() as s:
        cred = await Repos(s).credentials.get(anna.id)
    assert cred is not None and cred.password_hash.startswith("$argon2id$")
    assert PASSWORD not in cred.password_hash
    assert auth.check_password(cred.password_hash, PASSWORD)
    try:
        auth.hash_password("short")
    except ValueError:
        pass
    else:
        raise AssertionError("a short password was accepted")


async def test_next_only_goes_to_local_paths() -> None:
    assert auth.local_path("/cases/3") == "/cases/3"
    for evil in ("https://evil.example/", "//evil.example", "/\\evil", "javascript:x", None):
        assert auth.local_path(evil) == "/"


async def test_strict_browser_policies_on_every_page(
    client: TestClient[Any, Any], anna: Counsellor
) -> None:
    page = await client.get("/signin")
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["Cache-Control"] == "no-store"
    assert "<script src=\"/static/console.js\"" in await page.text()
    assert "http" not in (await page.text()).split("<body")[0].replace("http-equiv", "")


async def test_language_switch(client: TestClient[Any, Any], anna: Counsellor) -> None:
    russian = await client.get("/signin")
    assert "Войти" in await russian.text()
    english = await client.get("/signin?lang=en")
    assert "Sign in" in await english.text()
    again = await client.get("/signin")  # remembered in a cookie
    assert "Sign in" in await again.text()


async def _staff_audit(app: App, counsellor_id: int) -> list[tuple[Any, Any, str, str]]:
    async with app.db.session() as s:
        rows = (
            await s.execute(
                select(AuditEvent)
                .where(AuditEvent.counsellor_id == counsellor_id)
                .order_by(AuditEvent.id)
            )
        ).scalars().all()
        return [(r.created_at, r.counsellor_id, r.action, r.detail) for r in rows]
