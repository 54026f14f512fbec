"""A whole case: a child in VK reports bullying with a screenshot, asks for a person, and a
counsellor at the desk (the Desk API the console desk uses) helps them to the end."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from bot.app import App
from bot.evidence import read_evidence
from dialogs.messages import DeskEvent
from storage.models import Attachment
from storage.repositories import Repos
from tests.vk.conftest import DeskSpy, VkChild, report_insults_for_a_person
from tests.vk.fake_vk import FakeVk

SCREENSHOT = b"\xff\xd8\xff\xe0 a screenshot of the insults"
DOCUMENT = b"%PDF-1.4 the chat, exported"


def read(path: str) -> bytes:
    return read_evidence(Path(path))


async def evidence(app: App, case_id: int) -> list[Attachment]:
    async with app.db.session() as s:
        rows = await s.execute(select(Attachment).where(Attachment.case_id == case_id))
        return list(rows.scalars())


async def test_a_vk_child_is_helped_by_a_counsellor(
    child: VkChild, fake_vk: FakeVk, vk_app: App, desk_spy: DeskSpy
) -> None:
    desk = vk_app.desk
    await report_insults_for_a_person(child, fake_vk.photo("insults.jpg", SCREENSHOT))

    # The desk sees the case, from VK, and its evidence was downloaded when it opened (beside
    # the child's chat: the desk's side never holds up the child's next turn).
    await vk_app.drain()
    [summary] = await desk.queue()
    assert (summary.channel, summary.category) == ("vk", "cyberbullying")
    opened = [n for n in desk_spy.notices if n.desk_event is DeskEvent.CASE_OPENED]
    assert [n.case_id for n in opened] == [summary.id]
    [photo] = await evidence(vk_app, summary.id)
    assert photo.file_ref.endswith("/files/insults.jpg")  # the largest size, not a thumbnail
    assert photo.stored_path is not None
    assert read(photo.stored_path) == SCREENSHOT
    assert "small-insults.jpg" not in fake_vk.state.file_requests

    anna = await desk.add_counsellor("anna", "console", "anna")
    taken = await desk.take(anna, summary.id)
    await vk_app.delivery.deliver(taken.outbound)
    child.take_replies()
    assert child.text == "Консультант подключился. Пиши: он тебя читает."

    # Both ways: the child's words reach the transcript, the counsellor's reach VK.
    await child.say("они пишут это каждый день")
    assert child.replies == []  # relayed to the desk, nothing in between
    await child.say("", attachments=[fake_vk.doc("chat.pdf", DOCUMENT)])
    reply = await desk.reply(anna, summary.id, "Спасибо, что рассказал. Ты молодец.")
    await vk_app.delivery.deliver(reply.outbound)
    child.take_replies()
    assert child.text == "Спасибо, что рассказал. Ты молодец."
    view = await desk.view(anna, summary.id)
    assert not isinstance(view, str)
    assert [(line.sender, line.text) for line in view.transcript][-2:] == [
        ("child", "они пишут это каждый день"),
        ("counsellor", "Спасибо, что рассказал. Ты молодец."),
    ]
    await vk_app.drain()
    _, doc_row = await evidence(vk_app, summary.id)
    assert doc_row.stored_path is not None and doc_row.stored_path.endswith(".pdf")
    assert read(doc_row.stored_path) == DOCUMENT

    closed = await desk.close(anna, summary.id, "advice-given")
    await vk_app.delivery.deliver(closed.outbound)
    child.take_replies()
    assert "Оцени" in child.text
    await child.press("5")
    await child.press("Пропустить")
    assert "Спасибо, это поможет нам стать лучше" in child.text
    async with vk_app.db.session() as s:
        case = await Repos(s).cases.get(summary.id)
        assert case is not None and case.rating == 5 and case.status == "closed"
    # Nothing was shown twice along the way.
    rids = [m.random_id for m in fake_vk.state.sent]
    assert len(rids) == len(set(rids))


async def test_danger_opens_a_critical_case_at_once(
    child: VkChild, vk_app: App, desk_spy: DeskSpy
) -> None:
    await child.say("привет")
    await child.say("я больше не хочу жить")
    [summary] = await vk_app.desk.queue()
    assert summary.risk == "critical" and summary.channel == "vk"
    assert any(n.critical for n in desk_spy.notices)
    assert child.replies  # the child got the emergency contacts at once
