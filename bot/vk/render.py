"""Outbound messages as VK sees them: parts of at most 4096 characters, keyboards within VK's
limits, button payloads of at most 255 characters and labels of at most 40.

Limits (https://dev.vk.com/ru/api/bots/development/keyboard): a keyboard has at most 5 buttons in
a row; an ordinary keyboard at most 10 rows and 40 buttons, an inline one 6 rows and 10 buttons.
A child whose app shows no keyboard gets the options as numbered text, which the engine accepts.
"""

from __future__ import annotations

import json
import math
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from vk_api.keyboard import VkKeyboard

from dialogs.messages import Button, Outbound

MAX_TEXT = 4096
MAX_LABEL = 40
MAX_PAYLOAD = 255
MAX_PER_ROW = 5
LIMITS = {True: (6, 10), False: (10, 40)}  # inline?: (rows, buttons)
ELLIPSIS = "…"
ZWJ = "\u200d"


@dataclass(frozen=True, slots=True)
class Part:
    """One `messages.send`: text and an optional keyboard (JSON)."""

    text: str
    keyboard: str | None = None


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Cut a text into parts of at most `limit` characters between paragraphs; a paragraph
    longer than that between lines, then words, and only as a last resort anywhere."""
    if limit <= 0:
        raise ValueError("limit must be positive")
    if len(text) <= limit:
        return [text]
    for sep in ("\n\n", "\n", " "):
        pieces = text.split(sep)
        if len(pieces) > 1:
            break
    else:
        return [text[i : i + limit] for i in range(0, len(text), limit)]
    parts: list[str] = []
    current = ""
    for piece in pieces:
        candidate = f"{current}{sep}{piece}" if current else piece
        if len(candidate) <= limit:
            current = candidate
            continue
        if current:
            parts.append(current)
        if len(piece) <= limit:
            current = piece
        else:
            *whole, current = split_text(piece, limit)
            parts.extend(whole)
    if current:
        parts.append(current)
    return [p for p in parts if p.strip()] or [text[:limit]]


def truncate_label(label: str, limit: int = MAX_LABEL) -> str:
    """A button label of at most `limit` characters, counted as UTF-16 units to be safe, cut
    between whole characters (never inside an emoji's surrogate pair, nor between a character and
    its combining mark, skin tone or zero-width joiner) and ended with an ellipsis."""
    label = " ".join(label.split())
    if _utf16_len(label) <= limit:
        return label
    room = limit - _utf16_len(ELLIPSIS)
    n = used = 0
    for char in label:
        if used + _utf16_len(char) > room:
            break
        used += _utf16_len(char)
        n += 1
    while n and (_attaches(label[n]) or label[n - 1] == ZWJ):
        n -= 1
    return label[:n].rstrip() + ELLIPSIS


def _attaches(char: str) -> bool:
    """Whether a character belongs to the one before it (a mark, selector, tone or joiner)."""
    return (
        unicodedata.category(char) in ("Mn", "Mc", "Me")
        or char == ZWJ
        or 0x1F3FB <= ord(char) <= 0x1F3FF
    )


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def encode_payload(payload: str) -> str | None:
    """The button payload VK carries back: {"p": <the engine's payload>}; None if over 255."""
    encoded = json.dumps({"p": payload}, ensure_ascii=False, separators=(",", ":"))
    return encoded if len(encoded) <= MAX_PAYLOAD else None


def decode_payload(raw: object) -> str | None:
    """The engine's payload from a button press: a JSON string (text buttons) or an object
    (callback buttons); None for anything that is not ours."""
    data: object = raw
    if isinstance(raw, str):
        try:
            data = json.loads(raw)
        except ValueError:
            return None
    if isinstance(data, Mapping):
        value = data.get("p")
        if isinstance(value, str) and value:
            return value
    return None


def _layout(
    buttons: list[Button], rows: Sequence[Sequence[Button]], max_rows: int
) -> list[list[Button]]:
    """The engine's rows, each at most 5 wide; re-flowed into even rows if there are too many."""
    lines = [
        list(row[i : i + MAX_PER_ROW])
        for row in rows
        if row
        for i in range(0, len(row), MAX_PER_ROW)
    ]
    if len(lines) <= max_rows:
        return lines
    width = math.ceil(len(buttons) / max_rows)
    return [buttons[i : i + width] for i in range(0, len(buttons), width)]


def keyboard(rows: Sequence[Sequence[Button]], *, inline: bool, callback: bool) -> str | None:
    """A keyboard (JSON) for the rows, or None if they do not fit VK's limits: too many buttons,
    or a payload over 255 characters."""
    buttons = [b for row in rows for b in row]
    max_rows, max_buttons = LIMITS[inline]
    if not buttons or len(buttons) > max_buttons:
        return None
    payloads = {b.payload: encode_payload(b.payload) for b in buttons}
    if any(p is None for p in payloads.values()):
        return None
    kb = VkKeyboard(one_time=not inline, inline=inline)
    for index, line in enumerate(_layout(buttons, rows, max_rows)):
        if index:
            kb.add_line()
        for button in line:
            label = truncate_label(button.label)
            if callback:
                kb.add_callback_button(label, payload=payloads[button.payload])
            else:
                kb.add_button(label, payload=payloads[button.payload])
    return str(kb.get_keyboard())


def render(message: Outbound, *, keyboard_ok: bool, inline: bool, callback: bool) -> list[Part]:
    """The `messages.send` calls for one outbound message. Buttons go on the last part: as a
    keyboard when the child's app shows one (inline if it can, callback buttons if it can), else
    as numbered text."""
    markup = None
    if message.buttons and (keyboard_ok or inline):
        markup = keyboard(message.buttons, inline=inline, callback=callback and inline)
        if markup is None and inline and keyboard_ok:
            markup = keyboard(message.buttons, inline=False, callback=False)
    text = message.text if markup is not None or not message.buttons else message.plain_text
    parts = [Part(p) for p in split_text(text or "…")]
    if markup is not None:
        parts[-1] = Part(parts[-1].text, markup)
    return parts
