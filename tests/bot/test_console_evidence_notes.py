"""A case's answers on the terminal desk read as text: the links and notes a child sent as
evidence are lines of text, never a Python list."""

from __future__ import annotations

import io
from collections.abc import Callable

from bot.app import App
from bot.console import ConsoleDesk, answer_text
from bot.delivery import Delivery
from bot.settings import Settings
from dialogs.engine import DialogEngine
from dialogs.escalation import Desk
from knowledge_base import KnowledgeBase
from storage.db import Database
from storage.models import Counsellor
from tests.conftest import Chat

LINK = "https://vk.com/wall-1_2"
NOTE = "беседа класса 7Б, сообщения от 3 ноября"


async def test_evidence_notes_read_as_text_on_the_terminal_desk(
    db: Database,
    kb: KnowledgeBase,
    engine: DialogEngine,
    desk: Desk,
    chat_factory: Callable[..., Chat],
    counsellor: Counsellor,
) -> None:
    chat = chat_factory(user="lena")
    await chat.start_as_child()
    await chat.press("случилось в сети")
    await chat.press("Оскорбляют")
    await chat.press("ВКонтакте")
    await chat.press("Да")  # still going on
    await chat.press("Да")  # safe now
    await chat.say(LINK)
    await chat.say(NOTE)
    await chat.press("Готово")
    await chat.press("Нет")  # no adult knows
    await chat.press("человеком")
    [case] = await desk.queue()
    app = App(
        settings=Settings.model_construct(default_locale="ru"),
        db=db, kb=kb, engine=engine, desk=desk, delivery=Delivery(db),
    )
    out = io.StringIO()
    await ConsoleDesk(app, counsellor, out=out).command(f"view {case.id}")
    shown = out.getvalue()
    assert f"evidence_notes: {LINK}; {NOTE}" in shown, shown
    assert "['" not in shown and "[]" not in shown and "']" not in shown, shown
    assert "safe_now: Да" in shown and "what: Оскорбляют или смеются" in shown, shown


def test_answers_are_words() -> None:
    assert answer_text("evidence_notes", [], "ru") == "-"
    assert answer_text("evidence_notes", ["a", "b"], "en") == "a; b"
    assert answer_text("hits", ("x",), "en") == "x"
    assert answer_text("safe_now", False, "en") == "No"
    assert answer_text("what", "threats", "en") == "Threats"
    assert answer_text("custom", "plain text", "en") == "plain text"
