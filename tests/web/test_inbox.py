"""The console as an inbox, without a browser: unread counts and previews, read marks, the
live chat's news of a child who left or erased their data, the wallboard's figures and alarm,
and the desk's codes shown in words."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer

from bot.app import App
from bot.web import build_console
from dialogs.taxonomy import Risk
from storage.db import Database
from storage.models import Counsellor
from storage.repos.reads import ReadRepo

from .conftest import Child, ChildInbox, csrf_of, new_client, sign_in
from .test_cases import _events


async def _inbox(client: TestClient[Any, Any]) -> dict[int, dict[str, Any]]:
    board = await (await client.get("/api/queue")).json()
    return {item["id"]: item for item in board["inbox"]["items"]}


async def _hold(app: App, who: Counsellor, kid: Child) -> int:
    await kid.asks_for_a_person()
    [case] = [c for c in await app.desk.queue()]
    taken = await app.desk.take(who, case.id)
    assert taken.ok
    await app.delivery.deliver(taken.outbound)
    return case.id


async def test_unread_lines_count_until_the_counsellor_reads_them(
    app: App, client: TestClient[Any, Any], anna: Counsellor, boris: Counsellor, child: Child,
    inbox: ChildInbox,
) -> None:
    case_id = await _hold(app, anna, child)
    await sign_in(client, "anna")
    assert (await client.get(f"/cases/{case_id}")).status == 200  # opening reads it
    assert (await _inbox(client))[case_id]["unread"] == 0

    await child.send("он опять пишет мне")
    await child.send("и угрожает")
    item = (await _inbox(client))[case_id]
    assert item["unread"] == 2
    assert (item["preview_who"], item["preview"]) == ("Ребёнок", "и угрожает")
    board = await (await client.get("/api/queue")).json()
    assert board["inbox"]["load"] == "Вы ведёте 1 из 3" and board["inbox"]["unread"] == 2

    # The counsellor's own words are not "unread"; the preview shows them, by name.
    assert (await app.desk.reply(anna, case_id, "Я здесь, расскажи")).ok
    item = (await _inbox(client))[case_id]
    assert (item["unread"], item["preview_who"], item["preview"]) == (2, "anna",
                                                                       "Я здесь, расскажи")

    # The page's script marks what the counsellor saw; a mark never goes back.
    token = await csrf_of(client)
    headers = {"Accept": "application/json", "X-CSRF-Token": token}
    async with app.db.session() as s:
        lines = await ReadRepo(s).last_lines([case_id])
    newest = lines[case_id].id
    seen = await client.post(f"/cases/{case_id}/seen", data={"upto": str(newest - 1)},
                             headers=headers)
    assert (await seen.json())["ok"] and (await _inbox(client))[case_id]["unread"] == 0
    back = await client.post(f"/cases/{case_id}/seen", data={"upto": "1"}, headers=headers)
    assert (await back.json())["seen"] >= newest - 1
    assert (await _inbox(client))[case_id]["unread"] == 0

    # Someone who may not see the case cannot mark it, and it is in nobody else's inbox.
    other = await new_client(app)
    try:
        await sign_in(other, "boris")
        refused = await other.post(
            f"/cases/{case_id}/seen", data={"upto": str(newest)},
            headers={"Accept": "application/json", "X-CSRF-Token": await csrf_of(other)},
        )
        assert refused.status == 403
        assert await _inbox(other) == {}
    finally:
        await other.close()


async def test_read_marks_stop_at_the_newest_line_and_never_move_back(
    db: Database, app: App, anna: Counsellor, child: Child, inbox: ChildInbox
) -> None:
    case_id = await _hold(app, anna, child)
    async with db.session() as s:
        reads = ReadRepo(s)
        newest = (await reads.last_lines([case_id]))[case_id].id
        assert await reads.mark_seen(anna.id, case_id, 10**12) == newest
    async with db.session() as s:
        assert await ReadRepo(s).mark_seen(anna.id, case_id, 1) == newest
    await child.send("ещё")
    async with db.session() as s:
        assert (await ReadRepo(s).unread(anna.id, [case_id])) == {case_id: 1}
        assert await ReadRepo(s).mark_seen(anna.id, case_id, 10**12) > newest
        assert (await ReadRepo(s).unread(anna.id, [case_id])) == {}


async def test_the_live_queue_carries_the_inbox_and_its_news(
    app: App, client: TestClient[Any, Any], anna: Counsellor, child: Child, inbox: ChildInbox
) -> None:
    case_id = await _hold(app, anna, child)
    await sign_in(client, "anna")
    await client.get(f"/cases/{case_id}")
    stream = await client.get("/events/queue")
    first = await _events(stream, "queue")
    assert first["inbox"]["items"][0]["unread"] == 0
    assert f'data-key="convo-{case_id}"' in first["html"]["inbox"]
    await child.send("вы тут?")
    update = await _events(stream, "queue")
    assert update["inbox"]["items"][0]["unread"] == 1
    assert "вы тут?" in update["html"]["inbox"]
    stream.close()


async def _case_events(
    client: TestClient[Any, Any], case_id: int, wanted: str
) -> tuple[ClientResponse, dict[str, Any]]:
    stream = await client.get(f"/events/cases/{case_id}?seen=1000")
    return stream, await _events(stream, wanted)


async def test_the_open_chat_hears_that_the_child_left_or_erased_their_data(
    app: App, client: TestClient[Any, Any], anna: Counsellor, inbox: ChildInbox
) -> None:
    leaving, erasing = Child(app, user="kid-1"), Child(app, user="kid-2")
    left_id = await _hold(app, anna, leaving)
    await sign_in(client, "anna")
    stream = await client.get(f"/events/cases/{left_id}?seen=1000")
    for message in reversed(inbox.received):
        ends = [b for row in message.buttons for b in row if "Завершить" in b.label]
        if ends:
            await leaving.send(payload=ends[0].payload)
            break
    await leaving.press("Да, завершить")
    news = await _events(stream, "case")
    assert (news["left"], news["status_label"]) == (True, "ребёнок ушёл")
    assert news["message"] == "Ребёнок завершил разговор. Закройте обращение с итогом."
    stream.close()

    erased_id = await _hold(app, anna, erasing)
    stream = await client.get(f"/events/cases/{erased_id}?seen=1000")
    await erasing.send("/forget")
    await erasing.press("Да, стереть")
    news = await _events(stream, "case")
    assert news["erased"] and "удалил свои данные" in news["message"]
    stream.close()
    page = await (await client.get(f"/cases/{erased_id}")).text()
    assert "Переписка стёрта по просьбе ребёнка." in page


async def test_the_wallboard_counts_and_rings_for_an_unanswered_critical_case(
    app: App, anna: Counsellor, sofia: Counsellor, inbox: ChildInbox
) -> None:
    async with TestClient(TestServer(build_console(
            app, poll_seconds=0.2, critical_target=timedelta(0)))) as board:
        await Child(app, user="kid-1").asks_for_a_person()
        await Child(app, user="kid-2").in_danger()
        await sign_in(board, "sofia")
        wall = await (await board.get("/api/wallboard")).json()
        assert wall["alarms"] == 1 and wall["alarm_title"] == "⚠ Без ответа (1)"
        assert wall["waiting"] == 2 and wall["oldest_minutes"] == 0
        html = wall["html"]
        assert 'id="wall-waiting-critical">1<' in html and 'id="wall-waiting-medium">1<' in html
        assert "sofia" in html and "в пульте" in html, "who is signed in"

        [critical] = [c for c in await app.desk.queue() if c.risk == Risk.CRITICAL.value]
        assert (await app.desk.take(anna, critical.id)).ok
        wall = await (await board.get("/api/wallboard")).json()
        assert wall["alarms"] == 1, "taken is not answered"
        assert "anna" in wall["html"] and "1 из 3" in wall["html"]
        assert (await app.desk.reply(anna, critical.id, "Я здесь")).ok
        wall = await (await board.get("/api/wallboard")).json()
        assert wall["alarms"] == 0
        assert "Сегодня ответили на критических: 1" in wall["html"]

        stream = await board.get("/events/wallboard")
        first = await _events(stream, "wall")
        assert first["alarms"] == 0
        await Child(app, user="kid-3").in_danger()
        for _ in range(5):  # the board may redraw for other reasons first
            news = await _events(stream, "wall")
            if news["alarms"]:
                break
        assert news["alarms"] == 1, "the alarm comes by itself"
        stream.close()


async def test_the_wallboard_is_for_supervisors_only(
    app: App, client: TestClient[Any, Any], anna: Counsellor
) -> None:
    await sign_in(client, "anna")
    assert (await client.get("/api/wallboard")).status == 403
    assert (await client.get("/events/wallboard")).status == 403
    assert (await client.get("/supervisor")).status == 403


def _visible_text(page: str) -> str:
    page = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", page, flags=re.S)
    return re.sub(r"<[^>]+>", " ", page)


async def test_no_desk_codes_on_a_case_page_in_either_language(
    app: App, client: TestClient[Any, Any], anna: Counsellor, inbox: ChildInbox
) -> None:
    kid = Child(app, user="kid-1")
    await kid.in_danger()
    [case] = await app.desk.queue()
    assert (await app.desk.take(anna, case.id)).ok
    await sign_in(client, "anna")
    codes = re.compile(r"\b(critical|medium|high|low|console|active|waiting|typed|suicide"
                       r"|self-harm|information|\w+-\w+ -> )\b")
    for lang in ("ru", "en"):
        text = _visible_text(await (await client.get(f"/cases/{case.id}?lang={lang}")).text())
        found = {m.group(0) for m in codes.finditer(text)}
        if lang == "en":
            # English words that are also codes: the channel's and the status's names.
            found -= {"console", "active"}
        assert found == set(), (lang, found)
