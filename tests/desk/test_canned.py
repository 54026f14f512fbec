"""Canned replies: a reviewed set in both languages, sent in the child's language."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from dialogs.canned import CannedReplies, default_canned
from dialogs.escalation import Desk, DeskError
from storage.models import Counsellor
from tests.conftest import Chat
from tests.desk.conftest import join_queue

REQUIRED = {
    "greeting",
    "more_details",
    "safety_check",
    "block_report",
    "save_evidence",
    "helplines",
    "closing",
}


def test_the_set_is_complete_in_both_languages() -> None:
    canned = default_canned()
    assert len(canned.keys()) >= 12
    assert set(canned.keys()) >= REQUIRED
    for reply in canned.all():
        for locale in ("ru", "en"):
            assert 40 < len(reply.text(locale)) < 1000, (reply.key, locale)
            assert reply.title(locale)
    helplines = canned.get("helplines")
    assert helplines is not None
    for locale in ("ru", "en"):
        assert "8-800-2000-122" in helplines.text(locale) and "112" in helplines.text(locale)
    assert "виноват" not in default_canned().get("greeting").text("ru")  # type: ignore[union-attr]


def test_a_reply_missing_a_language_stops_loading(tmp_path: Path) -> None:
    path = tmp_path / "canned.yaml"
    path.write_text("hi:\n  title: {ru: Привет, en: Hi}\n  ru: Привет!\n", encoding="utf-8")
    with pytest.raises(ValueError, match="lacks en"):
        CannedReplies(path)


@pytest.mark.parametrize(
    ("locale", "expected"),
    [("ru", "Я консультант линии помощи"), ("en", "I'm a help-line counsellor")],
)
async def test_the_child_gets_it_in_their_language(
    chat_factory: Callable[..., Chat],
    desk: Desk,
    counsellor: Counsellor,
    locale: str,
    expected: str,
) -> None:
    chat = chat_factory(locale=locale)
    await join_queue(chat)
    [case] = await desk.queue()
    assert (await desk.take(counsellor, case.id)).ok
    result = await desk.reply_canned(counsellor, case.id, "/greeting")
    assert result.ok
    [message] = result.outbound
    assert expected in message.text and message.to.chat_id == "chat-child-1"
    view = await desk.view(counsellor, case.id)
    assert not isinstance(view, DeskError)
    assert view.transcript[-1].sender == "counsellor" and expected in view.transcript[-1].text


async def test_the_locale_recorded_on_the_case_wins(
    chat_factory: Callable[..., Chat], desk: Desk, counsellor: Counsellor
) -> None:
    chat = chat_factory(locale="en")
    await join_queue(chat)
    [case] = await desk.queue()
    await chat.say("/lang")  # the child switches the bot to Russian later
    await chat.press("Русский")
    assert (await desk.take(counsellor, case.id)).ok
    [message] = (await desk.reply_canned(counsellor, case.id, "helplines")).outbound
    assert message.text.startswith("Numbers that help")


async def test_unknown_keys_and_strangers_are_refused(
    chat_factory: Callable[..., Chat], desk: Desk, counsellor: Counsellor, boris: Counsellor
) -> None:
    await join_queue(chat_factory())
    [case] = await desk.queue()
    unknown = await desk.reply_canned(counsellor, case.id, "bogus")
    assert unknown.error is DeskError.NO_CANNED and "greeting" in unknown.detail
    assert (await desk.take(counsellor, case.id)).ok
    stranger = await desk.reply_canned(boris, case.id, "greeting")
    assert stranger.error is DeskError.NOT_YOURS and not stranger.outbound
