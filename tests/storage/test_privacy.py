"""What a stolen database file would reveal: no child's words, no platform ids, no addresses."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from dialogs.escalation import Desk
from storage import crypto
from storage.db import Database
from storage.models import Counsellor
from storage.repositories import Repos
from storage.rotate import rotate_keys
from tests.conftest import Chat


async def _a_case(chat: Chat, desk: Desk, counsellor: Counsellor) -> int:
    await chat.start_as_child()
    await chat.press("человеком")
    await chat.say("одноклассник Петя выложил моё фото")
    [case] = await desk.queue()
    await desk.take(counsellor, case.id)
    await desk.note(counsellor, case.id, "Петя из 7Б")
    return case.id


async def test_the_database_file_holds_no_plain_text_or_ids(
    db: Database,
    chat_factory: Callable[..., Chat],
    desk: Desk,
    counsellor: Counsellor,
    tmp_path: Path,
) -> None:
    if not db.is_sqlite:
        return  # the file check is SQLite's; the same column types encrypt on PostgreSQL
    chat = chat_factory(user="tg-987654321")
    await _a_case(chat, desk, counsellor)
    await db.dispose()
    raw = b"".join(p.read_bytes() for p in sorted(tmp_path.glob("test.db*")))  # noqa: ASYNC240
    for secret in ("Петя", "987654321", "chat-tg-987654321", "одноклассник"):
        assert secret.encode() not in raw, secret


async def test_keys_rotate_without_losing_anything(
    db: Database, chat_factory: Callable[..., Chat], desk: Desk, counsellor: Counsellor
) -> None:
    old = crypto.current()
    case_id = await _a_case(chat_factory(), desk, counsellor)
    new_key = crypto.new_key()
    id_key = "test-id-hash-key-0123456789"
    try:
        crypto.configure(crypto.Cipher([new_key, *_keys(old)], id_key))
        assert await rotate_keys(db) > 0
        crypto.configure(crypto.Cipher([new_key], id_key))  # the old key is gone
        async with db.session() as s:
            texts = [m.text for m in await Repos(s).messages.for_case(case_id)]
        assert "одноклассник Петя выложил моё фото" in texts and "Петя из 7Б" in texts
    finally:
        crypto.configure(old)


def _keys(cipher: crypto.Cipher) -> list[str]:
    return list(cipher.key_strings)
