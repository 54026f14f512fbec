"""Canary privacy test (issue 18): a whole case, through the real channel stacks against the fake
platforms, carries unique strings (texts, a link, a photo's caption and bytes, a counsellor's
note, reply and risk reason, the child's rating comment, the child's name and platform id).

1. No canary is ever in clear in a file the service writes: the SQLite database with its -wal
   and -shm files (read raw, while the service runs, nothing checkpointed), the evidence store,
   and the DEBUG log (the production logging set-up, JSON lines, into a file).
2. After the child's /forget, no canary is left anywhere in the database, read decrypted.
3. After `helpline purge --days 0` on a closed case, no canary is left anywhere either.

The child writes on Telegram or on VK (each test runs for both); the counsellor works in the
Telegram staff group, with desk commands (/note, /risk, /close).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import pytest
from sqlalchemy import func, select

from bot.app import App
from bot.cli import main as helpline
from bot.logs import setup_logging
from bot.settings import Settings
from knowledge_base import KnowledgeBase
from storage import crypto
from storage.db import Database
from storage.migrate import upgrade
from storage.models import Attachment, Base, InboxUpdate, OutboxMessage
from tests.telegram.conftest import Harness, make_settings
from tests.telegram.conftest import start_channel as start_telegram
from tests.telegram.conftest import stop_channel as stop_telegram
from tests.telegram.fake_api import STAFF_CHAT, Call, FakeTelegram
from tests.vk.conftest import VkChild, until
from tests.vk.conftest import start_channel as start_vk
from tests.vk.conftest import stop_channel as stop_vk
from tests.vk.fake_vk import GROUP_ID, FakeVk
from tests.vk.fake_vk import TOKEN as VK_TOKEN

CHANNELS = ["telegram", "vk"]
SVETA = 503  # a supervisor in the staff group: lowering a critical risk is a supervisor's

KEYS = {"encryption_keys": crypto.new_key(), "id_hash_key": "canary-id-hash-key-0123456789"}


@dataclass(frozen=True)
class Canaries:
    """One child's unique strings. `named`: the platform sends the child's name with every
    message (Telegram does; VK's events carry no name, and the bot never asks VK for one)."""

    suffix: str
    platform_id: int
    named: bool

    @property
    def text(self) -> str:
        return f"CANARY-TEXT-{self.suffix}"

    @property
    def danger(self) -> str:
        return f"CANARY-DANGER-{self.suffix}"

    @property
    def link(self) -> str:
        return f"https://canary-link-{self.suffix}.example/x"

    @property
    def caption(self) -> str:
        return f"CANARY-CAPTION-{self.suffix}"

    @property
    def photo(self) -> bytes:
        return b"\x89PNG\r\n" + f"CANARY-PHOTO-BYTES-{self.suffix}".encode() * 20

    @property
    def note(self) -> str:
        return f"CANARY-NOTE-{self.suffix}"

    @property
    def risk(self) -> str:
        return f"CANARY-RISK-{self.suffix}"

    @property
    def reply(self) -> str:
        return f"CANARY-REPLY-{self.suffix}"

    @property
    def rating(self) -> str:
        return f"CANARY-RATING-{self.suffix}"

    @property
    def name(self) -> str:
        return f"Canaryname{self.suffix}"

    def strings(self) -> dict[str, str]:
        """What to look for, by label. The platform id as a decimal string."""
        found = {
            "text": self.text,
            "danger text": self.danger,
            "link": self.link,
            "caption": self.caption,
            "photo bytes": f"CANARY-PHOTO-BYTES-{self.suffix}",
            "note": self.note,
            "risk reason": self.risk,
            "counsellor reply": self.reply,
            "rating comment": self.rating,
            "platform id": str(self.platform_id),
        }
        if self.named:
            found["name"] = self.name
        return found

    def stored(self) -> set[str]:
        """The canaries a whole case keeps in the database (decrypted) until it is erased:
        all but the photo's bytes (in the evidence store, encrypted) and the name (the
        channels never keep it: it is looked for as a leak only)."""
        return set(self.strings()) - {"photo bytes", "name"}


def canaries(channel: str, suffix: str) -> Canaries:
    # Distinctive platform ids: 10 digits on Telegram, 9 on VK, never a count or a time.
    if channel == "telegram":
        return Canaries(suffix, 7_395_018_264 if suffix == "7f3a" else 6_284_017_359, True)
    return Canaries(suffix, 583_920_174 if suffix == "7f3a" else 594_031_285, False)


# ---------------------------------------------------------------------- finding canaries
def hits_in(data: bytes, strings: dict[str, str]) -> list[str]:
    """The labels of the canaries in `data` (bytes, utf-8, ASCII case ignored: a lowercased
    copy made by triage's normalisation counts too)."""
    low = data.lower()
    return [label for label, s in strings.items() if s.lower().encode() in low]


def clear_hits(root: Path, strings: dict[str, str]) -> dict[str, list[str]]:
    """Every file under `root`, read raw: {file: labels of canaries found in clear}."""
    found: dict[str, list[str]] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            labels = hits_in(path.read_bytes(), strings)
            if labels:
                found[str(path.relative_to(root))] = labels
    return found


def _as_text(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


async def decrypted_hits(db: Database, strings: dict[str, str]) -> dict[str, list[str]]:
    """Every row of every table, read through the models' column types (which decrypt):
    {label: ["table.column", ...]} for every canary found."""
    found: dict[str, list[str]] = {}
    async with db.session() as session:
        for table in Base.metadata.sorted_tables:
            for row in (await session.execute(select(table))).mappings():
                for column, value in row.items():
                    if value is None or isinstance(value, bool | float):
                        continue
                    for label in hits_in(_as_text(value).encode(), strings):
                        found.setdefault(label, []).append(f"{table.name}.{column}")
    return found


def test_the_searches_find_a_planted_canary(tmp_path: Path) -> None:
    """The searches this test relies on would see a leak: planted in a file, in any case."""
    c = canaries("telegram", "7f3a")
    (tmp_path / "evidence").mkdir()
    (tmp_path / "evidence" / "f.bin").write_bytes(b"\x00" + c.caption.lower().encode() + b"\x01")
    (tmp_path / "log").write_text(f'{{"msg": "user {c.platform_id} said {c.link}"}}')
    assert clear_hits(tmp_path, c.strings()) == {
        "evidence/f.bin": ["caption"], "log": ["link", "platform id"]}


# ---------------------------------------------------------------------- the service's log
@pytest.fixture
def service_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The production logging set-up (`bot.cli` → `bot.logs.setup_logging`, with its
    PrivacyFilter and formatter) at LOG_LEVEL=DEBUG, LOG_JSON=true, whose stream (stderr) is a
    file in tmp_path; `helpline purge` run in the test sets itself up the same way."""
    path = tmp_path / "helpline.log"
    stream: TextIO = path.open("a", encoding="utf-8", buffering=1)
    monkeypatch.setattr(sys, "stderr", stream)
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, warnings.showwarning)
    quiet = {name: logging.getLogger(name).level for name in ("aiogram.event", "aiosqlite")}
    settings = Settings(_env_file=None, log_level="DEBUG", log_json=True)  # type: ignore[call-arg]
    setup_logging(settings.log_level, json_lines=settings.log_json)
    try:
        yield path
    finally:
        root.handlers[:], root.level, warnings.showwarning = saved
        for name, level in quiet.items():
            logging.getLogger(name).setLevel(level)
        stream.close()


# ---------------------------------------------------------------------- the stacks
class CanaryTelegram(FakeTelegram):
    """The fake Bot API, whose children carry their canary names."""

    def __init__(self, names: dict[int, str]) -> None:
        super().__init__()
        self.names = names

    def user(self, user_id: int, lang: str = "ru", name: str = "Маша") -> dict[str, Any]:
        return super().user(user_id, lang, self.names.get(user_id, name))

    def private_message(self, user_id: int, lang: str = "ru", **content: Any) -> dict[str, Any]:
        update = super().private_message(user_id, lang, **content)
        update["message"]["chat"]["first_name"] = self.names.get(user_id, "Маша")
        return update


SENDS = ("sendMessage", "sendPhoto", "sendDocument")


class Child:
    """The child's side on one platform: writes (and waits until it is handled), presses a
    button of the bot's latest messages, sends a photo, reads the bot's words."""

    async def say(self, text: str) -> None:
        raise NotImplementedError

    async def tell(self, text: str) -> None:
        """Words in a live chat: relayed to the counsellor, nothing comes back."""
        raise NotImplementedError

    async def press(self, label: str) -> None:
        raise NotImplementedError

    async def send_photo(self, data: bytes, caption: str) -> None:
        raise NotImplementedError

    async def reads(self, contains: str) -> str:
        """Wait for a message to the child, since their last action, containing `contains`."""
        raise NotImplementedError


class TelegramChild(Child):
    def __init__(self, fake: FakeTelegram, c: Canaries) -> None:
        self.fake, self.id = fake, c.platform_id
        self.since = time.monotonic()

    def _sent(self) -> list[Call]:
        return [call for call in self.fake.calls if call.method in SENDS
                and call.status == 200 and call.chat_id == self.id and call.at >= self.since]

    async def _wait(self, match: Callable[[Call], bool], what: str) -> Call:
        for _ in range(500):
            found = [call for call in self._sent() if match(call)]
            if found:
                return found[-1]
            await asyncio.sleep(0.01)
        raise AssertionError(f"the child never got {what}: {[c.text for c in self._sent()]}")

    async def _act(self, update: dict[str, Any]) -> None:
        """An update from the child; waits for the bot's first answer to it."""
        self.since = time.monotonic()
        await self.fake.push(update)
        await self._wait(lambda call: True, "an answer")

    async def say(self, text: str) -> None:
        await self._act(self.fake.private_message(self.id, text=text))

    async def tell(self, text: str) -> None:
        self.since = time.monotonic()
        await self.fake.child_says(self.id, text)

    async def press(self, label: str) -> None:
        call = await self._wait(
            lambda call: any(label.casefold() in b.casefold() for b, _ in call.buttons),
            f"a button {label!r}")
        await self._act(self.fake.press(self.id, call.button(label)))

    async def send_photo(self, data: bytes, caption: str) -> None:
        self.since = time.monotonic()
        await self.fake.child_sends_photo(self.id, data, caption=caption)

    async def reads(self, contains: str) -> str:
        call = await self._wait(lambda call: contains.casefold() in call.text.casefold(),
                                repr(contains))
        return call.text


class VkSide(Child):
    def __init__(self, fake: FakeVk, child: VkChild) -> None:
        self.fake, self.child = fake, child

    async def say(self, text: str) -> None:
        await self.child.say(text)

    async def tell(self, text: str) -> None:
        await self.child.say(text)

    async def press(self, label: str) -> None:
        await self.child.press(label)

    async def send_photo(self, data: bytes, caption: str) -> None:
        photo = self.fake.photo(f"photo-{len(self.fake.state.files)}.jpg", data)
        await self.child.say(caption, attachments=[photo])

    async def reads(self, contains: str) -> str:
        child = self.child
        before = child.replies

        def arrived() -> bool:
            new = self.fake.sent_to(child.peer_id)[child.seen:]
            return any(contains.casefold() in m.text.casefold() for m in [*before, *new])

        await until(arrived)
        child.replies = [*before, *child.take_replies()]
        return child.text


@dataclass
class Stack:
    """The running service: the Telegram channel (the staff group, and the child's chat on
    Telegram), and on VK the VK channel too, over one app."""

    tg: Harness
    child: Child
    url: str

    @property
    def app(self) -> App:
        return self.tg.app

    @property
    def fake(self) -> FakeTelegram:
        return self.tg.fake


async def settle(app: App) -> None:
    """Everything accepted is handled and everything to send is sent."""
    for _ in range(500):
        await app.drain()
        async with app.db.session() as s:
            open_updates = await s.scalar(
                select(func.count()).select_from(InboxUpdate)
                .where(InboxUpdate.processed_at.is_(None)))
            unsent = await s.scalar(
                select(func.count()).select_from(OutboxMessage)
                .where(OutboxMessage.delivered_at.is_(None), OutboxMessage.failed_at.is_(None)))
        if not open_updates and not unsent:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"not settled: {open_updates} updates, {unsent} messages open")


@asynccontextmanager
async def running(channel: str, tmp_path: Path, kb: KnowledgeBase,
                  c: Canaries) -> AsyncIterator[Stack]:
    tg_fake = CanaryTelegram({c.platform_id: c.name})
    await tg_fake.start()
    vk_fake = FakeVk().start() if channel == "vk" else None
    overrides: dict[str, Any] = {"keys_file": tmp_path / "keys.json", "log_level": "DEBUG",
                                 "log_json": True, **KEYS}
    if vk_fake is not None:
        overrides.update(vk_token=VK_TOKEN, vk_group_id=GROUP_ID, vk_api_url=vk_fake.base_url)
    url = make_settings(tg_fake, tmp_path, **overrides).database_url
    # The schema as production makes it (`helpline run` migrates the embedded database).
    await asyncio.to_thread(upgrade, url)
    tg, tg_task = await start_telegram(tg_fake, tmp_path, Database(url), kb, **overrides)
    await tg.app.desk.add_counsellor("sveta", "telegram", str(SVETA), role="supervisor")
    vk_task = None
    try:
        if vk_fake is not None:
            vk, vk_task = await start_vk(tg.app, vk_fake)
            child: Child = VkSide(vk_fake, VkChild(vk_fake, vk, peer_id=c.platform_id))
        else:
            child = TelegramChild(tg_fake, c)
        yield Stack(tg, child, url)
    finally:
        if vk_fake is not None and vk_task is not None:
            await stop_vk(vk, vk_task, vk_fake)
        await stop_telegram(tg, tg_task)
        await tg.app.close()
        if vk_fake is not None:
            vk_fake.close()
        await tg_fake.stop()


# ---------------------------------------------------------------------- the case
async def evidence_kept(app: App) -> bool:
    async with app.db.session() as s:
        rows = (await s.execute(select(Attachment))).scalars().all()
    return bool(rows) and all(r.stored_path for r in rows)


async def whole_case(stack: Stack, c: Canaries) -> int:
    """The child writes, says they are in danger (a critical case opens), sends a photo with a
    caption and a link; a supervisor takes the case in the staff group, writes a note, lowers
    the risk with a reason, replies and closes; the child rates the help with a comment.
    Returns the case id."""
    child, fake = stack.child, stack.fake
    await child.say("привет")
    await child.press("ребёнок")
    await child.say(f"{c.text} меня дразнят в школе")
    since = time.monotonic()
    await child.say(f"я больше не хочу жить {c.danger}")
    topic = await fake.next_call("createForumTopic", chat_id=STAFF_CHAT,
                                 where=lambda call: call.at >= since)
    assert "CRITICAL" in topic["name"], topic["name"]
    case_id = int(topic["name"].split()[0].lstrip("#"))
    thread = next(t for t, name in fake.topics.items() if name == topic["name"])
    card = await fake.next_call("sendMessage", chat_id=STAFF_CHAT, message_thread_id=thread)

    await child.send_photo(c.photo, f"{c.caption} {c.link}")
    await fake.text_to(STAFF_CHAT, c.caption, thread=thread)
    for _ in range(250):
        if await evidence_kept(stack.app):
            break
        await asyncio.sleep(0.02)
    assert await evidence_kept(stack.app), "the photo was stored as evidence"

    await fake.staff_presses(SVETA, card.button("Взять"), thread=thread,
                             message_id=card.message_id)
    await child.reads("Консультант подключился")
    await child.tell(f"вот ещё {c.link}")
    await fake.text_to(STAFF_CHAT, "вот ещё", thread=thread)

    await fake.staff_says(SVETA, f"/note {c.note}", thread)
    await fake.text_to(STAFF_CHAT, "Заметка сохранена", thread=thread)
    await fake.staff_says(SVETA, f"/risk high {c.risk} ребёнок дома, рядом мама", thread)
    await fake.text_to(STAFF_CHAT, "→", thread=thread)
    await fake.staff_says(SVETA, f"{c.reply} Я рядом, давай поговорим.", thread)
    await child.reads(c.reply)
    await fake.staff_says(SVETA, "/close advice-given", thread)
    await child.reads("Оцени")
    await child.press("5")
    await child.say(c.rating)
    await child.reads("Спасибо, это поможет")
    await settle(stack.app)
    case = await stack.tg.case(case_id)
    assert (case.status, case.risk, case.outcome, case.rating) == (
        "closed", "high", "advice-given", 5)
    return case_id


# ---------------------------------------------------------------------- the tests
@pytest.fixture(autouse=True)
def _keep_the_test_keys() -> Iterator[None]:
    """The service configures encryption at rest from its settings (KEYS): the rest of the
    suite keeps its own keys."""
    cipher = crypto.current()
    yield
    crypto.configure(cipher)


def evidence_files(tmp_path: Path) -> list[Path]:
    return [p for p in (tmp_path / "evidence").rglob("*") if p.is_file()]


def database_files(url: str) -> list[Path]:
    path = Path(url.split("///", 1)[1])
    return [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]


@pytest.mark.parametrize("channel", CHANNELS)
async def test_no_canary_is_in_clear_in_any_file(
    channel: str, tmp_path: Path, kb: KnowledgeBase, service_log: Path
) -> None:
    c = canaries(channel, "7f3a")
    async with running(channel, tmp_path, kb, c) as stack:
        await whole_case(stack, c)
        # The canaries are there (decrypted): the search below looks for something real.
        assert set(await decrypted_hits(stack.app.db, c.strings())) == c.stored()
        # Read raw while the service runs: nothing checkpointed, the WAL holds the case.
        db, wal, shm = database_files(stack.url)
        assert db.stat().st_size and wal.stat().st_size and shm.exists()
        assert evidence_files(tmp_path), "the photo is in the evidence store"
        live = clear_hits(tmp_path, c.strings())
    stopped = clear_hits(tmp_path, c.strings())
    log = await asyncio.to_thread(service_log.read_text, encoding="utf-8")
    assert '"level": "debug"' in log, "DEBUG was logged"
    assert live == {}, f"canaries in clear while the service ran: {live}"
    assert stopped == {}, f"canaries in clear after it stopped: {stopped}"


@pytest.mark.parametrize("channel", CHANNELS)
async def test_forget_leaves_no_canary_anywhere(
    channel: str, tmp_path: Path, kb: KnowledgeBase, service_log: Path
) -> None:
    c = canaries(channel, "7f3a")
    async with running(channel, tmp_path, kb, c) as stack:
        await whole_case(stack, c)
        assert set(await decrypted_hits(stack.app.db, c.strings())) == c.stored()
        await stack.child.say("/forget")
        await stack.child.press("Да, стереть")
        await stack.child.reads("всё стёр")
        await settle(stack.app)
        left = await decrypted_hits(stack.app.db, c.strings())
    assert left == {}, f"left after /forget (decrypted): {left}"
    assert evidence_files(tmp_path) == [], "the evidence files are deleted"
    assert clear_hits(tmp_path, c.strings()) == {}


@pytest.mark.parametrize("channel", CHANNELS)
async def test_purge_leaves_no_canary_anywhere(
    channel: str, tmp_path: Path, kb: KnowledgeBase, service_log: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    c = canaries(channel, "9c2e")
    async with running(channel, tmp_path, kb, c) as stack:
        await whole_case(stack, c)
        assert set(await decrypted_hits(stack.app.db, c.strings())) == c.stored()
        url = stack.url
    # `helpline purge --days 0`, configured as a deployment is: from the environment.
    for name, value in {
        "DATABASE_URL": url,
        "ENCRYPTION_KEYS": KEYS["encryption_keys"],
        "ID_HASH_KEY": KEYS["id_hash_key"],
        "EVIDENCE_DIR": str(tmp_path / "evidence"),
        "KEYS_FILE": str(tmp_path / "keys.json"),
        "LOG_LEVEL": "DEBUG",
        "LOG_JSON": "true",
        "TELEGRAM_BOT_TOKEN": "",
        "VK_TOKEN": "",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)  # no .env, and nothing written beside the project
    assert await asyncio.to_thread(helpline, ["purge", "--days", "0"]) == 0
    db = Database(url)
    try:
        left = await decrypted_hits(db, c.strings())
    finally:
        await db.dispose()
    assert left == {}, f"left after purge --days 0 (decrypted): {left}"
    assert evidence_files(tmp_path) == [], "the evidence files are deleted"
    assert clear_hits(tmp_path, c.strings()) == {}
