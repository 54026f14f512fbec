"""Telegram's platform limits, handled rather than hit.

- A message is at most 4096 characters, a media caption 1024
  (https://core.telegram.org/bots/api#sendmessage, #sendphoto).
- Callback data is 1-64 *bytes* (https://core.telegram.org/bots/api#inlinekeyboardbutton).
- A 429 answer carries `parameters.retry_after`: wait that long, then repeat the call
  (https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.exceptions import TelegramRetryAfter
from aiogram.methods.base import TelegramType
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from dialogs.messages import Button

if TYPE_CHECKING:
    from aiogram import Bot
    from aiogram.methods import Response, TelegramMethod

log = logging.getLogger(__name__)

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_BYTES = 64
MAX_TOPIC_NAME = 128


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Cut a text into parts of at most `limit` characters: at a paragraph break if one is in
    the second half of the part, else at a line break, else at a space, else anywhere."""
    if limit <= 0:
        raise ValueError("limit must be positive")
    parts: list[str] = []
    rest = text
    while len(rest) > limit:
        window = rest[:limit]
        cut = -1
        for sep in ("\n\n", "\n", " "):
            at = window.rfind(sep)
            if at >= limit // 2:
                cut = at
                break
        if cut <= 0:
            cut = limit
        part = rest[:cut].rstrip()
        if part:
            parts.append(part)
        rest = rest[cut:].lstrip("\n ")
    if rest.strip() or not parts:
        parts.append(rest)
    return parts


class CallbackDataTooLong(ValueError):
    """A button payload that Telegram would refuse (over 64 bytes in UTF-8)."""


def fits_callback(payload: str) -> bool:
    return 0 < len(payload.encode("utf-8")) <= MAX_CALLBACK_BYTES


def keyboard(rows: Sequence[Sequence[Button]]) -> InlineKeyboardMarkup | None:
    """Inline keyboard for button rows; raises `CallbackDataTooLong` rather than let Telegram
    refuse the whole message."""
    if not any(rows):
        return None
    for row in rows:
        for button in row:
            if not fits_callback(button.payload):
                raise CallbackDataTooLong(button.payload[:20])
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text=b.label, callback_data=b.payload) for b in row]
            for row in rows
            if row
        ]
    )


class RetryAfterMiddleware(BaseRequestMiddleware):
    """Every Bot API call of this bot: on 429, wait `retry_after` seconds and call again.

    Gives up (re-raising `TelegramRetryAfter`) after `attempts` tries or when Telegram asks for a
    wait longer than `max_wait` seconds, so that a flood ban never hangs a handler for minutes.
    """

    def __init__(self, attempts: int = 4, max_wait: float = 60.0) -> None:
        self.attempts = attempts
        self.max_wait = max_wait

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        attempt = 1
        while True:
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as exc:
                if attempt >= self.attempts or exc.retry_after > self.max_wait:
                    log.error("flood limit on %s: giving up after %d attempt(s)",
                              method.__api_method__, attempt)
                    raise
                log.warning("flood limit on %s: waiting %s s (attempt %d)",
                            method.__api_method__, exc.retry_after, attempt)
                await asyncio.sleep(exc.retry_after)
                attempt += 1
