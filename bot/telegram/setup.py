"""Start-up: the command menus, and a check that each staff group can work as a desk."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from aiogram import Bot
from aiogram.enums import ChatMemberStatus, ChatType
from aiogram.exceptions import TelegramAPIError
from aiogram.types import BotCommand, BotCommandScopeChat, ChatMemberAdministrator

from dialogs.catalogue import LOCALES, Catalogue

log = logging.getLogger(__name__)

CHILD_COMMANDS = ("start", "menu", "help", "lang", "forget")
STAFF_COMMANDS = ("queue", "note", "close", "release", "risk")


async def set_commands(bot: Bot, texts: Catalogue, desk_texts: Catalogue, default_locale: str,
                       staff_chat_ids: Sequence[int]) -> None:
    """The command menu in each locale (and a default for other languages); the desk's commands
    in each staff group. A failure is logged: the bot works without menus."""
    try:
        for locale in (*LOCALES, None):
            lang = locale or default_locale
            await bot.set_my_commands(
                [BotCommand(command=c, description=texts.t(f"command.{c}", lang))
                 for c in CHILD_COMMANDS],
                language_code=locale,
            )
            for staff_chat_id in staff_chat_ids:
                await bot.set_my_commands(
                    [BotCommand(command=c, description=desk_texts.t(f"command.desk.{c}", lang))
                     for c in STAFF_COMMANDS],
                    scope=BotCommandScopeChat(chat_id=staff_chat_id),
                    language_code=locale,
                )
    except TelegramAPIError as exc:
        log.error("the command menus were not set: %s", exc.message)


async def check_staff_chats(bot: Bot, chat_ids: Sequence[int]) -> list[str]:
    """`check_staff_chat` for every staff group, each problem naming its group."""
    problems: list[str] = []
    for index, chat_id in enumerate(chat_ids, start=1):
        name = (None if len(chat_ids) == 1 else
                f"TELEGRAM_STAFF_CHAT_ID group {index} of {len(chat_ids)} ({chat_id})")
        problems.extend(await check_staff_chat(bot, chat_id, name=name))
    return problems


def stray_groups(open_cases: Mapping[int | None, int], chat_ids: Sequence[int]) -> list[str]:
    """Groups no longer in TELEGRAM_STAFF_CHAT_ID that still hold open cases (`open_cases`: per
    stored group), each as an instruction, logged as an error: a case stays in its group."""
    problems = [
        f"{count} open case(s) live in the staff group {chat}, which is no longer in "
        "TELEGRAM_STAFF_CHAT_ID: add it back (at the end of the list) so that counsellors can "
        "work on them there, or handle them in the web console."
        for chat, count in open_cases.items() if chat is not None and chat not in chat_ids
    ]
    for problem in problems:
        log.error("Telegram desk: %s", problem)
    return problems


async def check_staff_chat(bot: Bot, chat_id: int, *, name: str | None = None) -> list[str]:
    """What is wrong with one staff group, each as an instruction (empty when all is well).
    Each problem is logged as an error; the children's side runs regardless. `name`: how the
    problems name the group (default "TELEGRAM_STAFF_CHAT_ID=<id>")."""
    problems: list[str] = []
    variable = name or f"TELEGRAM_STAFF_CHAT_ID={chat_id}"
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
