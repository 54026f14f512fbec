"""`helpline chat` closed and started again: a number the child types means the button it meant
before (the options shown last wait in the conversation data, never in a file), and the chat's
terminal shows the conversation only, never a log line."""

from __future__ import annotations

import asyncio
import io
import os
import re
from pathlib import Path

from bot.app import App
from bot.console import PARKED_OPTIONS, ConsoleChat
from bot.delivery import Delivery
from bot.settings import Settings
from dialogs.catalogue import default_catalogue
from dialogs.engine import DialogEngine
from dialogs.escalation import Desk, DeskError
from dialogs.messages import Channel, Inbound
from knowledge_base import KnowledgeBase
from storage.db import Database
from storage.repositories import Repos
from tests.bot.test_cli import helpline

TEXTS = default_catalogue()
# Up to an article's answer, whose first option ("Read more") is the article's own button, so
# the numbers shown are not the numbers of the step's options: only the shown list knows them.
TO_AN_ARTICLE = ["привет", "1", "2", "как защитить аккаунт от взлома"]


def terminal(db: Database, kb: KnowledgeBase, engine: DialogEngine, desk: Desk) -> App:
    """What one start of `helpline chat` builds: a new app and delivery on the same database."""
    settings = Settings.model_construct(default_locale="ru")
    return App(settings=settings, db=db, kb=kb, engine=engine, desk=desk, delivery=Delivery(db))


async def conversation_data(db: Database, user: str) -> dict[str, object]:
    async with db.session() as s:
        repos = Repos(s)
        found = await repos.users.find(str(Channel.CONSOLE), user)
        assert found is not None
        conv = await repos.conversations.for_user(found.id)
        assert conv is not None
        return dict(conv.data or {})


async def test_a_number_means_the_same_button_after_the_chat_is_started_again(
    db: Database, kb: KnowledgeBase, engine: DialogEngine, desk: Desk, tmp_path: Path
) -> None:
    first = ConsoleChat(terminal(db, kb, engine, desk), user="masha", out=io.StringIO())
    for line in TO_AN_ARTICLE:
        await first.send_line(line)
    shown = list(first.buttons)
    helped = TEXTS.t("question.helped", "ru")
    number = [b.label for b in shown].index(helped) + 1
    assert shown[0].label == TEXTS.t("article.more", "ru") and number == 3
    # Between the two starts the options wait in the (encrypted) conversation data, not in a file.
    parked = (await conversation_data(db, "masha"))[PARKED_OPTIONS]
    assert parked == [[b.label, b.payload] for b in shown]
    assert set(await asyncio.to_thread(os.listdir, tmp_path)) <= {
        "test.db", "test.db-wal", "test.db-shm"
    }

    out = io.StringIO()
    second = ConsoleChat(terminal(db, kb, engine, desk), user="masha", out=out)
    sent: list[Inbound] = []
    accept = second.app.accept

    async def spy(inbound: Inbound) -> None:
        sent.append(inbound)
        await accept(inbound)

    second.app.accept = spy  # type: ignore[method-assign]
    await second.restore()
    again = out.getvalue()
    assert TEXTS.t("console.options_again", "ru") in again
    assert f"{number}. {helped}" in again, "the options are shown again with their numbers"
    await second.send_line(str(number))
    assert sent[-1].payload == shown[number - 1].payload and sent[-1].text is None
    assert TEXTS.t("question.helped.reply", "ru").splitlines()[0] in out.getvalue()


async def test_a_restarted_chat_that_types_first_finds_its_options_too(
    db: Database, kb: KnowledgeBase, engine: DialogEngine, desk: Desk
) -> None:
    first = ConsoleChat(terminal(db, kb, engine, desk), user="petya", out=io.StringIO())
    for line in TO_AN_ARTICLE:
        await first.send_line(line)
    out = io.StringIO()
    second = ConsoleChat(terminal(db, kb, engine, desk), user="petya", out=out)
    await second.send_line("3")  # no restore() first: a test or a piped chat
    assert TEXTS.t("question.helped.reply", "ru").splitlines()[0] in out.getvalue()


async def test_the_kept_options_never_become_a_case_answer(
    db: Database, kb: KnowledgeBase, engine: DialogEngine, desk: Desk
) -> None:
    first = ConsoleChat(terminal(db, kb, engine, desk), user="olya", out=io.StringIO())
    for line in TO_AN_ARTICLE:
        await first.send_line(line)
    person = [b.label for b in first.buttons].index(TEXTS.t("menu.person", "ru")) + 1
    second = ConsoleChat(terminal(db, kb, engine, desk), user="olya", out=io.StringIO())
    await second.restore(show=False)
    await second.send_line(str(person))
    [case] = await desk.queue()
    view = await desk.view(await desk.add_counsellor("anna", "console", "anna"), case.id)
    assert not isinstance(view, DeskError) and PARKED_OPTIONS not in view.answers
    # Still kept for the next start: the options shown last (the queue's "end the chat").
    assert (await conversation_data(db, "olya"))[PARKED_OPTIONS]


# ---------------------------------------------------------------- the terminal itself


CONVERSATION_LINE = re.compile(r"^(bot> |counsellor> | {5})")
LOG_LINE = re.compile(r"\b(DEBUG|INFO)\b|\"level\": \"(debug|info)\"")


def test_the_chat_shows_the_conversation_only_and_keeps_numbers_across_starts(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "VK_"))}
    env.update(
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}",
        EVIDENCE_DIR=str(tmp_path / "evidence"),
        KEYS_FILE=str(tmp_path / "keys.json"),
        LOG_LEVEL="DEBUG",  # even so: the chat's terminal gets warnings at most
    )
    env.pop("LOG_JSON", None)
    first = helpline("chat", "--user", "masha", stdin="\n".join(TO_AN_ARTICLE) + "\n", env=env)
    assert first.returncode == 0, first.stderr[-2000:]
    second = helpline("chat", "--user", "masha", stdin="3\n", env=env)
    assert second.returncode == 0, second.stderr[-2000:]
    for run in (first, second):
        lines = [line for line in run.stdout.splitlines() if line.strip()]
        assert lines and all(CONVERSATION_LINE.match(line) for line in lines), run.stdout
        assert not [line for line in run.stderr.splitlines() if LOG_LINE.search(line)], (
            run.stderr[-2000:]
        )
    assert "3. " + TEXTS.t("question.helped", "ru") in second.stdout
    assert TEXTS.t("question.helped.reply", "ru").splitlines()[0] in second.stdout
    # The database and SQLite's files beside it (its write-ahead log, its shared memory, the
    # empty file whose lock says which processes use it), nothing else.
    kept = {p.name for p in tmp_path.iterdir()}
    assert kept <= {"chat.db", "chat.db-wal", "chat.db-shm", "chat.db-workers", "keys.json",
                    "evidence"}, kept
    assert (tmp_path / "chat.db-workers").stat().st_size == 0
