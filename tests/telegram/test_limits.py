"""Telegram's limits as pure functions: message length, callback data size."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.telegram.limits import (
    MAX_TEXT,
    CallbackDataTooLong,
    fits_callback,
    keyboard,
    split_text,
)
from dialogs.messages import Button


def test_short_text_is_one_part() -> None:
    assert split_text("hello") == ["hello"]


def test_long_text_is_split_on_paragraph_boundaries() -> None:
    paragraphs = [f"Paragraph {i}. " + "word " * 180 for i in range(12)]
    text = "\n\n".join(p.strip() for p in paragraphs)
    parts = split_text(text)
    assert len(parts) > 1
    assert all(len(p) <= MAX_TEXT for p in parts)
    # Every part starts with a paragraph: no paragraph is cut in two.
    assert all(p.startswith("Paragraph") for p in parts)
    assert "\n\n".join(parts) == text


def test_a_paragraph_longer_than_the_limit_is_cut_at_a_space() -> None:
    text = "слово " * 2000
    parts = split_text(text)
    assert all(len(p) <= MAX_TEXT for p in parts)
    assert all(not p.endswith("сло") for p in parts)
    assert " ".join(parts).split() == text.split()


@given(st.text(min_size=0, max_size=12000))
def test_split_never_exceeds_the_limit_nor_loses_words(text: str) -> None:
    parts = split_text(text, 500)
    assert all(len(p) <= 500 for p in parts)
    assert "".join("".join(parts).split()) == "".join(text.split())


def test_callback_data_is_measured_in_bytes() -> None:
    assert fits_callback("cr|what|insults")
    assert fits_callback("x" * 64)
    assert not fits_callback("x" * 65)
    assert not fits_callback("я" * 33)  # 66 bytes in UTF-8
    assert not fits_callback("")


def test_keyboard_refuses_a_payload_telegram_would_refuse() -> None:
    markup = keyboard(((Button("Yes", "cr|safe_now|yes"), Button("No", "cr|safe_now|no")),))
    assert markup is not None
    assert [b.callback_data for b in markup.inline_keyboard[0]] == [
        "cr|safe_now|yes", "cr|safe_now|no"]
    with pytest.raises(CallbackDataTooLong):
        keyboard(((Button("Long", "cr|" + "x" * 70),),))
    assert keyboard(()) is None
