"""Start-up: the command menus, and a check that the staff group can work as a desk."""

from __future__ import annotations

import logging

from aiogram import Bot
from aiogram.enums import ChatMemberStatus, ChatType
from aiogram.exceptions import TelegramAPIError
from aiogram.types import BotCommand, BotCommandScopeChat, ChatMemberAdministrator

from dialogs.catalogue import LOCALES, Catalogue

log = logging.getLogger(__name__)

CHILD_COMMANDS = ("start", "menu", "help", "lang", "forget")
STAFF_COMMANDS = ("queue", "note", "close", "release", "risk")


async def set_commands(bot: Bot, texts: Catalogue, desk_texts: Catalogue, default_locale: str,
                       staff_chat_id: int | None) -> None:
    """The command menu in each locale (and a default for other languages); the desk's commands
    in the staff group. A failure is logged: the bot works without menus."""
    try:
        for locale in (*LOCALES, None):
            lang = locale or default_locale
            await bot.set_my_commands(
                [BotCommand(command=c, description=texts.t(f"command.{c}", lang))
                 for c in CHILD_COMMANDS],
                language_code=locale,
            )
            if staff_chat_id is not None:
                await bot.set_my_commands(
                    [BotCommand(command=c, description=desk_texts.t(f"command.desk.{c}", lang))
                     for c in STAFF_COMMANDS],
                    scope=BotCommandScopeChat(chat_id=staff_chat_id),
                    language_code=locale,
                )
    except TelegramAPIError as exc:
        log.error("the command menus were not set: %s", exc.message)


async def check_staff_chat(bot: Bot, chat_id: int) -> list[str]:
    """What is wrong with the staff group, each as an instruction (empty when all is well).
    Each problem is logged as an error; the children's side runs regardless."""
    problems: list[str] = []
    variable = f"TELEGRAM_STAFF_CHAT_ID={chat_id}"
    try:
        chat = await bot.get_chat(chat_id)
        me = await bot.me()
        member = await bot.get_chat_member(chat_id, me.id)
    except TelegramAPIError as exc:
        problems.append(
            f"{variable}: the bot cannot see this chat ({exc.message}). Add the bot to the staff "
            "group as an administrator, and check the id (a supergroup id starts with -100)."
        )
    else:
        if chat.type != ChatType.SUPERGROUP or not chat.is_forum:
            problems.append(
                f"{variable} is not a forum: in the group's settings turn on \"Topics\" "
                "(this also makes it a supergroup; its id then starts with -100 and may change)."
            )
        if member.status == ChatMemberStatus.CREATOR:
            pass
        elif not isinstance(member, ChatMemberAdministrator):
            problems.append(
                f"{variable}: the bot is not an administrator of the staff group. Promote it "
                "with the rights \"Manage topics\" and \"Pin messages\" (admins also see all "
                "messages, which the desk needs)."
            )
        else:
            missing = [label for label, ok in (
                ("Manage topics", member.can_manage_topics),
                ("Pin messages", member.can_pin_messages),
            ) if not ok]
            if missing:
                problems.append(
                    f"{variable}: give the bot the administrator right(s) "
                    + ", ".join(f"\"{m}\"" for m in missing) + " in the staff group."
                )
    for problem in problems:
        log.error("Telegram desk: %s", problem)
    return problems
