"""The queue and a case through the web console: every action is a `Desk` call, every read of a
case is audited, and a counsellor sees only the queue and their own cases."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from bot.app import App
from dialogs.taxonomy import Risk
from storage import crypto
from storage.models import Counsellor
from storage.repositories import Repos

from .conftest import Child, ChildInbox, audit_actions, csrf_of, new_client, sign_in


async def _case_id(app: App) -> int:
    [case] = await app.desk.queue()
    return case.id


async def _post(
    client: TestClient[Any, Any], path: str, token: str, **fields: str
) -> ClientResponse:
    return await client.post(path, data={"csrf": token, **fields}, allow_redirects=False)


async def test_queue_shows_waiting_cases_by_risk_then_age(
    app: App, client: TestClient[Any, Any], anna: Counsellor, child: Child
) -> None:
    await child.asks_for_a_person()
    other = Child(app, user="child-2")
    await other.in_danger()
    await sign_in(client, "anna")
    board = await (await client.get("/api/queue")).json()
    assert [(c["id"], c["risk"], c["critical"]) for c in board["waiting"]] == [
        (2, "critical", True),
        (1, "medium", False),
    ]
    assert board["waiting"][0]["url"] == "/cases/2"
    page = await (await client.get("/")).text()
    assert page.index('data-case="2"') < page.index('data-case="1"')
    assert 'class="case risk-critical"' in page
    assert "child-1" not in page and "child-2" not in page, "never the child's account"


async def test_take_reply_note_risk_and_close_through_the_desk(
    app: App, client: TestClient[Any, Any], anna: Counsellor, child: Child, inbox: ChildInbox
) -> None:
    await child.asks_for_a_person()
    case_id = await _case_id(app)
    await sign_in(client, "anna")
    token = await csrf_of(client)

    taken = await _post(client, f"/cases/{case_id}/take", token)
    assert taken.status == 303 and taken.headers["Location"] == f"/cases/{case_id}?done=taken"
    assert any("консультант" in t.lower() for t in inbox.texts), "the child hears a person came"

    sent = await _post(client, f"/cases/{case_id}/reply", token, text="Привет, я Анна. Я рядом.")
    assert sent.status == 303
    assert inbox.texts[-1] == "Привет, я Анна. Я рядом."
    empty = await _post(client, f"/cases/{case_id}/reply", token, text="   ")
    assert empty.headers["Location"].endswith("?error=empty")

    # The script's way: JSON and the token in a header.
    scripted = await client.post(
        f"/cases/{case_id}/reply",
        data={"text": "Ты можешь рассказать, что случилось?"},
        headers={"Accept": "application/json", "X-CSRF-Token": token},
    )
    answer = await scripted.json()
    assert scripted.status == 200 and (answer["ok"], answer["error"]) == (True, None)
    assert answer["message"] == "Отправлено.", "the page says it without a reload"

    await child.send("Мне пишут гадости в чате класса")
    noted = await _post(client, f"/cases/{case_id}/note", token, text="Травля, 7 класс")
    assert noted.status == 303
    lowered = await _post(client, f"/cases/{case_id}/risk", token, risk="low", note="")
    assert lowered.headers["Location"].endswith("?error=bad_risk"), "lowering needs a reason"
    raised = await _post(client, f"/cases/{case_id}/risk", token, risk="high", note="угрозы")
    assert raised.headers["Location"].endswith("?done=risk")

    page = await (await client.get(f"/cases/{case_id}")).text()
    assert "Мне пишут гадости в чате класса" in page
    assert "Травля, 7 класс" in page
    # The risk history, in words, never the desk's codes.
    assert f"{Risk.MEDIUM.label('ru')} → {Risk.HIGH.label('ru')}: угрозы" in page
    assert "medium -&gt; high" not in page

    bad = await _post(client, f"/cases/{case_id}/close", token, outcome="nonsense")
    assert bad.headers["Location"].endswith("?error=bad_outcome")
    closed = await _post(client, f"/cases/{case_id}/close", token, outcome="advice-given")
    assert closed.headers["Location"] == "/?done=closed"
    async with app.db.session() as s:
        case = await Repos(s).cases.get(case_id)
        assert case is not None and (case.status, case.outcome) == ("closed", "advice-given")
        assert case.first_response_at is not None
    actions = [a for who, a in await audit_actions(app, case_id) if who == "anna"]
    assert actions[:1] == ["taken"] and "note" in actions and "risk_changed" in actions
    assert "viewed" in actions and actions[-1] == "closed"


async def test_every_read_of_a_case_is_audited(
    app: App, client: TestClient[Any, Any], anna: Counsellor, child: Child
) -> None:
    await child.asks_for_a_person()
    case_id = await _case_id(app)
    await sign_in(client, "anna")
    for _ in range(2):
        assert (await client.get(f"/cases/{case_id}")).status == 200
    assert [a for who, a in await audit_actions(app, case_id) if who == "anna"] == [
        "viewed",
        "viewed",
    ]


async def test_a_counsellor_cannot_open_or_act_on_anothers_case(
    app: App,
    client: TestClient[Any, Any],
    anna: Counsellor,
    boris: Counsellor,
    sofia: Counsellor,
    child: Child,
) -> None:
    await child.asks_for_a_person()
    case_id = await _case_id(app)
    await sign_in(client, "anna")
    await _post(client, f"/cases/{case_id}/take", await csrf_of(client))
    await child.send("это секрет")

    other = await new_client(app)
    try:
        await sign_in(other, "boris")
        page = await other.get(f"/cases/{case_id}")
        text = await page.text()
        assert page.status == 403 and "это секрет" not in text
        assert "Это не ваше обращение." in text
        token = await csrf_of(other)
        for action, fields in (
            ("reply", {"text": "hi"}),
            ("close", {"outcome": "advice-given"}),
            ("release", {}),
            ("take", {}),
        ):
            answer = await _post(other, f"/cases/{case_id}/{action}", token, **fields)
            assert "?error=" in answer.headers["Location"], action
        assert (await other.get(f"/events/cases/{case_id}")).status == 403
        board = await (await other.get("/api/queue")).json()
        assert {k: board[k] for k in ("waiting", "mine", "others")} == {
            "waiting": [], "mine": [], "others": []}
        assert board["inbox"]["items"] == [], "not in boris's inbox either"
        assert (await other.get("/supervisor")).status == 403
    finally:
        await other.close()
    assert ("boris", "view_refused") in await audit_actions(app, case_id)

    supervisor = await new_client(app)
    try:
        await sign_in(supervisor, "sofia")
        page = await supervisor.get(f"/cases/{case_id}")
        assert page.status == 200 and "это секрет" in await page.text()
        board = await (await supervisor.get("/api/queue")).json()
        assert [c["owner"] for c in board["others"]] == ["anna"]
        figures = await supervisor.get("/supervisor")
        text = await figures.text()
        assert figures.status == 200 and "anna" in text and "<svg" in text
    finally:
        await supervisor.close()


async def test_forged_csrf_tokens_are_refused(
    app: App, client: TestClient[Any, Any], anna: Counsellor, child: Child
) -> None:
    await child.asks_for_a_person()
    case_id = await _case_id(app)
    await sign_in(client, "anna")
    for data, headers in (
        ({"csrf": "forged"}, {}),
        ({}, {}),
        ({}, {"X-CSRF-Token": "forged", "Accept": "application/json"}),
    ):
        answer = await client.post(
            f"/cases/{case_id}/take", data=data, headers=headers, allow_redirects=False
        )
        assert answer.status == 403
    assert [c.status for c in await app.desk.queue()] == ["waiting"], "nothing changed"
    other = await new_client(app)
    try:
        await sign_in(other, "anna")
        someone_elses = await csrf_of(other)  # a real token, of another session
    finally:
        await other.close()
    answer = await _post(client, f"/cases/{case_id}/take", someone_elses)
    assert answer.status == 403


async def test_evidence_is_served_only_to_staff_who_may_see_the_case(
    app: App,
    client: TestClient[Any, Any],
    anna: Counsellor,
    boris: Counsellor,
    child: Child,
    tmp_path: Path,
) -> None:
    await child.asks_for_a_person()
    case_id = await _case_id(app)
    folder = tmp_path / "evidence" / f"case-{case_id}"
    folder.mkdir(parents=True)
    (folder / "1.png").write_bytes(crypto.current().encrypt_bytes(b"\x89PNG\r\n\x1a\nfake"))
    outside = tmp_path / "secret.txt"
    outside.write_text("not evidence")
    async with app.db.session() as s:
        repos = Repos(s)
        user = await repos.users.find("console", "child-1")
        assert user is not None
        for path in (folder / "1.png", None, outside):
            row = await repos.attachments.add(
                user_id=user.id, channel="console", kind="photo", file_ref="ref-abc",
                size=10, mime="image/png", case_id=case_id,
            )
            row.stored_path = str(path) if path else None
    await sign_in(client, "anna")
    page = await (await client.get(f"/cases/{case_id}")).text()
    assert f'<img src="/cases/{case_id}/evidence/1"' in page
    assert "ref-abc" not in page and str(folder) not in page
    image = await client.get(f"/cases/{case_id}/evidence/1")
    assert image.status == 200 and image.content_type == "image/png"
    assert await image.read() == b"\x89PNG\r\n\x1a\nfake"
    assert (await client.get(f"/cases/{case_id}/evidence/2")).status == 404, "not downloaded"
    assert (await client.get(f"/cases/{case_id}/evidence/3")).status == 404, "outside the store"
    assert (await client.get(f"/cases/{case_id}/evidence/9")).status == 404
    assert ("anna", "evidence_viewed") in await audit_actions(app, case_id)

    await _post(client, f"/cases/{case_id}/take", await csrf_of(client))
    other = await new_client(app)
    try:
        await sign_in(other, "boris")
        assert (await other.get(f"/cases/{case_id}/evidence/1")).status == 403
    finally:
        await other.close()


async def _events(answer: ClientResponse, wanted: str, limit: float = 5.0) -> dict[str, Any]:
    """Read server-sent events until one named `wanted`; return its data."""
    event = ""

    async def read() -> dict[str, Any]:
        nonlocal event
        while True:
            raw = await answer.content.readline()
            assert raw, "the stream ended"
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == wanted:
                data: dict[str, Any] = json.loads(line[6:])
                return data

    return await asyncio.wait_for(read(), limit)


async def test_the_queue_is_live(
    app: App, client: TestClient[Any, Any], anna: Counsellor, child: Child
) -> None:
    await sign_in(client, "anna")
    stream = await client.get("/events/queue")
    assert stream.headers["Content-Type"].startswith("text/event-stream")
    first = await _events(stream, "queue")
    assert first["waiting"] == []
    await child.in_danger()
    update_ = await _events(stream, "queue")
    [case] = update_["waiting"]
    assert case["critical"] and case["risk"] == "critical"
    stream.close()


async def test_the_childs_new_messages_arrive_live(
    app: App, client: TestClient[Any, Any], anna: Counsellor, child: Child
) -> None:
    await child.asks_for_a_person()
    case_id = await _case_id(app)
    await sign_in(client, "anna")
    await _post(client, f"/cases/{case_id}/take", await csrf_of(client))
    seen = len((await app.desk.view(anna, case_id)).transcript)  # type: ignore[union-attr]
    stream = await client.get(f"/events/cases/{case_id}?seen={seen}")
    await child.send("вы тут?")
    line = await _events(stream, "line")
    assert (line["sender"], line["text"], line["label"]) == ("child", "вы тут?", "Ребёнок")
    await app.desk.release(anna, case_id)
    changed = await _events(stream, "case")
    assert changed["status"] == "waiting"
    stream.close()
