"""The desk's operations in the console: transfers, canned replies, capacity and blocking — all
through `Desk`, with the same refusals as on the other desks."""

from __future__ import annotations

from typing import Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from bot.app import App
from storage.models import Counsellor
from storage.repositories import Repos

from .conftest import Child, ChildInbox, audit_actions, csrf_of, new_client, sign_in


async def _post(
    client: TestClient[Any, Any], path: str, token: str, **fields: str
) -> ClientResponse:
    return await client.post(path, data={"csrf": token, **fields}, allow_redirects=False)


async def _owner(app: App, case_id: int) -> int | None:
    async with app.db.session() as s:
        case = await Repos(s).cases.get(case_id)
        assert case is not None
        return case.owner_id


async def test_canned_replies_are_offered_and_sent_in_the_childs_language(
    app: App, client: TestClient[Any, Any], anna: Counsellor, child: Child, inbox: ChildInbox
) -> None:
    await child.asks_for_a_person()
    await sign_in(client, "anna")
    token = await csrf_of(client)
    await _post(client, "/cases/1/take", token)
    page = await (await client.get("/cases/1")).text()
    assert 'id="canned"' in page and ">Приветствие</option>" in page
    assert 'data-text="Привет! Я консультант линии помощи.' in page
    sent = await _post(client, "/cases/1/reply", token, canned="greeting", text="")
    assert sent.headers["Location"] == "/cases/1?done=sent"
    assert inbox.texts[-1].startswith("Привет! Я консультант линии помощи.")
    unknown = await _post(client, "/cases/1/reply", token, canned="nonsense", text="")
    assert unknown.headers["Location"].endswith("?error=no_canned")


async def test_transfer_to_a_colleague(
    app: App,
    client: TestClient[Any, Any],
    anna: Counsellor,
    boris: Counsellor,
    child: Child,
    inbox: ChildInbox,
) -> None:
    await child.asks_for_a_person()
    await sign_in(client, "anna")
    token = await csrf_of(client)
    await _post(client, "/cases/1/take", token)
    page = await (await client.get("/cases/1")).text()
    assert 'id="transfer-to"' in page and "<option>boris</option>" in page
    nobody = await _post(client, "/cases/1/transfer", token, to="nobody")
    assert nobody.headers["Location"].endswith("?error=no_counsellor")
    moved = await _post(client, "/cases/1/transfer", token, to="boris", note="говорит о школе")
    assert moved.headers["Location"] == "/?done=transferred"
    assert await _owner(app, 1) == boris.id
    assert ("anna", "transferred") in await audit_actions(app, 1)
    gone = await client.get("/cases/1")
    assert gone.status == 403, "anna no longer sees the case she handed over"


async def test_a_counsellor_at_capacity_cannot_take_more(
    app: App, client: TestClient[Any, Any], anna: Counsellor, inbox: ChildInbox
) -> None:
    capacity = app.desk.config.capacity
    for n in range(capacity + 1):
        await Child(app, user=f"child-{n}").asks_for_a_person()
    await sign_in(client, "anna")
    token = await csrf_of(client)
    for case_id in range(1, capacity + 1):
        taken = await _post(client, f"/cases/{case_id}/take", token)
        assert taken.headers["Location"].endswith("?done=taken")
    refused = await _post(client, f"/cases/{capacity + 1}/take", token)
    assert refused.headers["Location"].endswith("?error=at_capacity")
    page = await (await client.get(refused.headers["Location"])).text()
    assert "У вас уже максимум обращений" in page


async def test_blocking_an_abusive_user_closes_the_case(
    app: App, client: TestClient[Any, Any], anna: Counsellor, sofia: Counsellor, child: Child,
    inbox: ChildInbox,
) -> None:
    """Blocking is a supervisor's action (issue 17): the holder gets no block form and is
    refused; the supervisor blocks, which closes the case as an abusive contact."""
    await child.asks_for_a_person()
    await sign_in(client, "anna")
    token = await csrf_of(client)
    await _post(client, "/cases/1/take", token)
    assert "/cases/1/block" not in await (await client.get("/cases/1")).text()
    refused = await _post(client, "/cases/1/block", token, reason="оскорбления", days="7")
    assert refused.headers["Location"].endswith("?error=supervisor_only")
    closing = await _post(client, "/cases/1/close", token, outcome="abusive-contact")
    assert closing.headers["Location"].endswith("?error=use_block")
    assert "блокировка: её делает супервизор" in await (
        await client.get(closing.headers["Location"])).text()
    supervisor = await new_client(app)
    try:
        await sign_in(supervisor, "sofia")
        token = await csrf_of(supervisor)
        no_reason = await _post(supervisor, "/cases/1/block", token, reason="", days="7")
        assert no_reason.headers["Location"].endswith("?error=bad_block")
        blocked = await _post(supervisor, "/cases/1/block", token, reason="оскорбления",
                              days="7")
        assert blocked.headers["Location"] == "/?done=blocked"
        async with app.db.session() as s:
            case = await Repos(s).cases.get(1)
            assert case is not None
            assert (case.status, case.outcome) == ("closed", "abusive-contact")
        page = await (await supervisor.get("/cases/1")).text()
        assert "/cases/1/unblock" in page
        lifted = await _post(supervisor, "/cases/1/unblock", token)
        assert lifted.headers["Location"] == "/cases/1?done=unblocked"
    finally:
        await supervisor.close()
    actions = [a for who, a in await audit_actions(app, 1) if who == "sofia"]
    assert "blocked" in actions and "unblocked" in actions


async def test_blocking_where_the_child_may_be_the_victim_has_a_confirm_step(
    app: App, client: TestClient[Any, Any], sofia: Counsellor, child: Child, inbox: ChildInbox
) -> None:
    await child.asks_for_a_person()
    async with app.db.session() as s:
        case = await Repos(s).cases.get(1)
        assert case is not None
        case.category = "sextortion"
    await sign_in(client, "sofia")
    token = await csrf_of(client)
    page = await (await client.get("/cases/1")).text()
    assert 'name="confirmed"' in page and "может быть жертвой" in page
    first = await _post(client, "/cases/1/block", token, reason="угрозы", days="1")
    assert first.headers["Location"].endswith("?error=confirm_block")
    async with app.db.session() as s:
        case = await Repos(s).cases.get(1)
        assert case is not None and case.status == "waiting", "nothing changed"
    confirmed = await _post(client, "/cases/1/block", token, reason="угрозы", days="1",
                            confirmed="1")
    assert confirmed.headers["Location"] == "/?done=blocked"


async def test_the_supervisor_sees_who_holds_what_and_todays_report(
    app: App,
    client: TestClient[Any, Any],
    anna: Counsellor,
    sofia: Counsellor,
    inbox: ChildInbox,
) -> None:
    for n in range(6):
        await Child(app, user=f"child-{n}").asks_for_a_person()
    await Child(app, user="child-danger").in_danger()
    for case_id in (1, 2):
        assert (await app.desk.take(anna, case_id)).ok
        assert (await app.desk.reply(anna, case_id, "Привет")).ok
    supervisor = await new_client(app)
    try:
        await sign_in(supervisor, "sofia")
        page = await supervisor.get("/supervisor")
        text = await page.text()
    finally:
        await supervisor.close()
    assert page.status == 200
    assert 'href="/cases/1"' in text and 'href="/cases/2"' in text and "anna" in text
    assert '<dd id="fig-opened">7</dd>' in text and '<dd id="fig-waiting">5</dd>' in text
    assert "<svg" in text and "&lt;5" in text, "the report's small counts stay hidden"
    assert "child-" not in text


async def test_a_critical_case_is_taken_over_capacity_and_the_supervisor_sees_it(
    app: App, client: TestClient[Any, Any], anna: Counsellor, sofia: Counsellor,
    inbox: ChildInbox,
) -> None:
    """Issue 17: capacity never stops a critical take; it is counted and supervisors see it."""
    capacity = app.desk.config.capacity
    for n in range(capacity):
        await Child(app, user=f"child-{n}").asks_for_a_person()
    await sign_in(client, "anna")
    token = await csrf_of(client)
    for case_id in range(1, capacity + 1):
        await _post(client, f"/cases/{case_id}/take", token)
    await Child(app, user="child-danger").in_danger()
    critical = capacity + 1
    taken = await _post(client, f"/cases/{critical}/take", token)
    assert taken.headers["Location"].endswith("?done=taken_over")
    page = await (await client.get(taken.headers["Location"])).text()
    assert "сверх лимита; супервизоры предупреждены" in page
    assert len(await app.desk.held(anna)) == capacity + 1
    supervisor = await new_client(app)
    try:
        await sign_in(supervisor, "sofia")
        board = await (await supervisor.get("/supervisor")).text()
    finally:
        await supervisor.close()
    assert f"{capacity + 1} из {capacity}" in board and "сверх лимита" in board
