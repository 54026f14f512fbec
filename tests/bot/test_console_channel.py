"""The console is a real channel: typed lines go through the journal and the engine like any
platform's updates, and replies come back through `Delivery` to the `ConsoleSender`."""

from __future__ import annotations

import io
from datetime import timedelta

from bot.app import App
from bot.console import ConsoleChat
from bot.delivery import Delivery
from bot.settings import Settings
from dialogs.engine import DialogEngine
from dialogs.escalation import Desk
from knowledge_base import KnowledgeBase
from storage.db import Database
from storage.models import utcnow
from storage.repositories import Repos


async def test_a_typed_danger_line_is_journalled_answered_and_reaches_the_queue(
    db: Database, kb: KnowledgeBase, engine: DialogEngine, desk: Desk
) -> None:
    settings = Settings.model_construct(default_locale="ru")
    app = App(settings=settings, db=db, kb=kb, engine=engine, desk=desk, delivery=Delivery(db))
    out = io.StringIO()
    chat = ConsoleChat(app, user="masha", out=out)
    await chat.send_line("привет")
    assert "Кто ты?" in out.getvalue()
    await chat.send_line("1")  # a button by its number
    await chat.send_line("я больше не хочу жить")
    printed = out.getvalue()
    assert "8-800-2000-122" in printed and "Я передал это консультанту" in printed
    assert [m.to.chat_id for m in chat.sender.received] == ["masha"] * len(chat.sender.received)
    [case] = await desk.queue()
    assert case.risk == "critical"
    async with db.session() as s:
        repos = Repos(s)
        assert not await repos.outbox.pending("console", "masha")
        # every line journalled, and closed once handled
        assert not list(await repos.inbox.unprocessed(utcnow() + timedelta(minutes=1)))
    # A counsellor's reply, sent from another process, is delivered by the chat's poll.
    counsellor = await desk.add_counsellor("anna", "console", "anna")
    assert (await desk.take(counsellor, case.id)).ok
    reply = await desk.reply(counsellor, case.id, "Я здесь, расскажи")
    await Delivery(db).deliver(reply.outbound)  # the desk process: no console sender there
    await chat.poll_outbox()
    assert "counsellor> Я здесь, расскажи" in out.getvalue()
