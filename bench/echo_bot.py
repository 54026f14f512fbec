"""The yardstick of bench/load.py: a bare aiogram echo bot, nothing else.

    .venv/bin/python bench/echo_bot.py http://127.0.0.1:PORT TOKEN

Long polling with aiogram's defaults (updates handled as concurrent tasks), one `sendMessage` per
text message, no database. The help-line bot's throughput is reported as a ratio of this bot's
against the same fake Bot API on the same machine: that ratio is the figure that travels.
"""

from __future__ import annotations

import asyncio
import sys

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import Message


async def main(url: str, token: str) -> None:
    bot = Bot(token, session=AiohttpSession(api=TelegramAPIServer.from_base(url)))
    dp = Dispatcher()

    @dp.message()
    async def echo(message: Message) -> None:
        await message.answer(message.text or "…")

    await dp.start_polling(bot)  # SIGTERM stops it


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
