"""VK's limits, handled rather than hit: text parts, labels, payloads, keyboard sizes."""

from __future__ import annotations

import json

from bot.vk.render import (
    MAX_LABEL,
    MAX_TEXT,
    decode_payload,
    encode_payload,
    keyboard,
    render,
    split_text,
    truncate_label,
)
from dialogs.messages import Address, Button, Outbound
from tests.vk.fake_vk import _keyboard_problem


def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def test_long_text_is_split_between_paragraphs() -> None:
    paragraphs = [f"Абзац {i}. " + "слово " * 150 for i in range(12)]
    text = "\n\n".join(p.strip() for p in paragraphs)
    parts = split_text(text)
    assert len(parts) > 1
    assert all(len(p) <= MAX_TEXT for p in parts)
    # Every part is made of whole paragraphs, and nothing is lost or reordered.
    assert "\n\n".join(parts) == text
    assert all(p.startswith("Абзац") for p in parts)


def test_a_paragraph_longer_than_the_limit_is_cut_between_words() -> None:
    text = "короткий абзац\n\n" + "длинное " * 1000
    parts = split_text(text.strip())
    assert parts[0].startswith("короткий абзац")
    assert all(len(p) <= MAX_TEXT for p in parts)
    assert " ".join(" ".join(parts).split()) == " ".join(text.split())


def test_text_without_spaces_is_cut_anywhere() -> None:
    parts = split_text("я" * 9000)
    assert [len(p) for p in parts] == [4096, 4096, 808]


def test_short_labels_are_kept_and_long_ones_cut_safely() -> None:
    assert truncate_label("Я ребёнок или подросток") == "Я ребёнок или подросток"
    long = "Незнакомец просит фото или встречу в реальной жизни"
    cut = truncate_label(long)
    assert cut.endswith("…") and _utf16(cut) <= MAX_LABEL
    assert long.startswith(cut[:-1].rstrip())
    # An emoji (two UTF-16 units) is never split in half, nor a family emoji at a joiner.
    emoji = truncate_label("😊" * 30)
    assert _utf16(emoji) <= MAX_LABEL and "\ud83d" not in emoji
    family = truncate_label("а" * 36 + "👨\u200d👩\u200d👧")
    assert not family[:-1].endswith("\u200d") and _utf16(family) <= MAX_LABEL
    accent = truncate_label("е" * 38 + "ё́" + "ж")  # a letter with a combining accent
    assert accent == "е" * 38 + "…"


def test_payload_round_trip_and_limit() -> None:
    encoded = encode_payload("cr|what|insults")
    assert encoded == '{"p":"cr|what|insults"}'
    assert decode_payload(encoded) == "cr|what|insults"
    assert decode_payload({"p": "g|menu"}) == "g|menu"  # callback payloads arrive as objects
    assert decode_payload('{"command":"start"}') is None
    assert decode_payload("not json") is None
    assert encode_payload("x" * 250) is None


def _rows(n: int, per_row: int = 1) -> tuple[tuple[Button, ...], ...]:
    buttons = [Button(f"Вариант {i}", f"cr|what|v{i}") for i in range(n)]
    return tuple(tuple(buttons[i : i + per_row]) for i in range(0, n, per_row))


def test_inline_keyboard_reflows_rows_beyond_six() -> None:
    markup = keyboard(_rows(9), inline=True, callback=True)
    assert markup is not None
    data = json.loads(markup)
    assert data["inline"] is True and len(data["buttons"]) <= 6
    assert sum(len(r) for r in data["buttons"]) == 9
    assert _keyboard_problem(data) is None
    action = data["buttons"][0][0]["action"]
    assert action["type"] == "callback" and json.loads(action["payload"]) == {"p": "cr|what|v0"}


def test_too_many_buttons_or_long_payloads_give_no_keyboard() -> None:
    assert keyboard(_rows(11), inline=True, callback=True) is None
    big = ((Button("Да", "x" * 300),),)
    assert keyboard(big, inline=False, callback=False) is None
    ordinary = keyboard(_rows(11), inline=False, callback=False)
    assert ordinary is not None and json.loads(ordinary)["one_time"] is True


def test_render_degrades_to_numbered_text() -> None:
    message = Outbound(Address("vk", "1"), "Кто ты?", _rows(2))
    [plain] = render(message, keyboard_ok=False, inline=False, callback=False)
    assert plain.keyboard is None
    assert plain.text == "Кто ты?\n  1. Вариант 0\n  2. Вариант 1"
    [inline] = render(message, keyboard_ok=True, inline=True, callback=True)
    assert inline.text == "Кто ты?" and inline.keyboard is not None
    # Eleven options do not fit an inline keyboard: an ordinary one is used instead.
    many = Outbound(Address("vk", "1"), "Выбери", _rows(11))
    [part] = render(many, keyboard_ok=True, inline=True, callback=True)
    assert part.keyboard is not None and json.loads(part.keyboard)["inline"] is False


def test_render_puts_the_keyboard_on_the_last_part() -> None:
    text = "\n\n".join(["абзац " * 300] * 4)
    parts = render(
        Outbound(Address("vk", "1"), text, _rows(2)), keyboard_ok=True, inline=True, callback=True
    )
    assert len(parts) > 1
    assert [p.keyboard is not None for p in parts] == [False] * (len(parts) - 1) + [True]
