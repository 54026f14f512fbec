"""Shared fixtures: a fresh database per test, the real knowledge base and triage, and a `Chat`
that drives the engine like a child would."""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from dialogs.engine import DialogEngine, EngineConfig
from dialogs.escalation import Desk
from dialogs.messages import (
    DESK,
    Attachment,
    Button,
    Channel,
    ContentKind,
    Inbound,
    Outbound,
)
from knowledge_base import KnowledgeBase
from storage import crypto
from storage.db import Database
from storage.models import Counsellor, utcnow

# Tests run at any hour of the day: unless a test says otherwise, the desk is open. (Settings
# read it from the environment, and so do the `helpline` subprocesses tests start.)
os.environ.setdefault(
    "HOURS_FILE", str(Path(__file__).parent / "data" / "hours_always_open.yaml")
)

# Fixed test keys: encryption at rest is on in every test, as in production.
crypto.configure(
    crypto.Cipher([crypto.new_key(), crypto.new_key()], "test-id-hash-key-0123456789")
)


def database_url(tmp_path: Path) -> str:
    """SQLite by default; HELPLINE_TEST_DATABASE_URL (set by scripts/with-postgres.sh) runs
    the suite on PostgreSQL."""
    base = os.environ.get("HELPLINE_TEST_DATABASE_URL")
    if base:
        return base
    return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"


@pytest.fixture(scope="session")
def kb() -> KnowledgeBase:
    return KnowledgeBase.load()


# Every other session on the test database: a connection an earlier test left open (a worker
# it never stopped) would keep its chat claims and presence (session-level advisory locks) and
# make every later test's bot wait on a chat it can never claim.
_OTHER_SESSIONS = text(
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
)


async def _end_other_sessions(database: Database) -> None:
    async with database.engine.connect() as conn:
        ended = len((await conn.execute(_OTHER_SESSIONS)).all())
    if ended:
        warnings.warn(f"{ended} sessions of an earlier test were still open on the test "
                      "database: ended", stacklevel=2)


async def fresh_database(url: str) -> Database:
    """A database with an empty schema: on PostgreSQL one database serves the whole run, so
    each test starts from a clean schema."""
    database = Database(url)
    if not database.is_sqlite:
        await _end_other_sessions(database)
        await database.drop_all()
    await database.create_all()
    return database


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await fresh_database(database_url(tmp_path))
    yield database
    await database.dispose()


class Clock:
    """A clock tests can move forward."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def engine(db: Database, kb: KnowledgeBase, clock: Clock) -> DialogEngine:
    return DialogEngine(db, kb=kb, config=EngineConfig(), clock=clock)


@pytest.fixture
def desk(engine: DialogEngine) -> Desk:
    return Desk(engine)


class Chat:
    """One user talking to the engine. Reads like a conversation in tests."""

    def __init__(
        self,
        engine: DialogEngine,
        user: str = "child-1",
        locale: str = "ru",
        channel: Channel = Channel.CONSOLE,
    ) -> None:
        self.engine = engine
        self.user = user
        self.locale = locale
        self.channel = channel
        self.replies: list[Outbound] = []
        self.desk: list[Outbound] = []
        self.history: list[Outbound] = []

    async def _send(self, **kwargs: Any) -> list[Outbound]:
        inbound = Inbound(
            channel=self.channel,
            user_id=self.user,
            chat_id=f"chat-{self.user}",
            locale_hint=self.locale,
            update_id=uuid.uuid4().hex,
            **kwargs,
        )
        out = await self.engine.handle(inbound)
        self.replies = [o for o in out if o.to.channel != DESK]
        self.desk = [o for o in out if o.to.channel == DESK]
        self.history.extend(out)
        return out

    async def say(self, text: str) -> list[Outbound]:
        return await self._send(text=text)

    async def edit(self, text: str) -> list[Outbound]:
        """The child edits an earlier message: the platform sends the new text again."""
        return await self._send(text=text, edited=True)

    async def press(self, label: str) -> list[Outbound]:
        """Press the button whose label contains `label` in the latest replies."""
        return await self._send(payload=self.button(label).payload)

    async def payload(self, payload: str) -> list[Outbound]:
        return await self._send(payload=payload)

    async def send_photo(self, file_ref: str = "photo-1", caption: str | None = None) -> None:
        await self._send(
            text=caption,
            attachments=(Attachment(ContentKind.PHOTO, file_ref, 1000, "image/jpeg"),),
            kind=ContentKind.PHOTO,
        )

    async def send_kind(self, kind: ContentKind) -> None:
        await self._send(kind=kind)

    def button(self, label: str) -> Button:
        for message in reversed(self.replies):
            for row in message.buttons:
                for b in row:
                    if label.casefold() in b.label.casefold():
                        return b
        raise AssertionError(f"no button {label!r} in {self.buttons}")

    @property
    def buttons(self) -> list[str]:
        return [b.label for m in self.replies for row in m.buttons for b in row]

    @property
    def text(self) -> str:
        return "\n".join(m.text for m in self.replies)

    async def start_as_child(self) -> None:
        await self.say("привет" if self.locale == "ru" else "hi")
        await self.press("ребёнок" if self.locale == "ru" else "child")


@pytest.fixture
def chat_factory(engine: DialogEngine) -> Callable[..., Chat]:
    def make(user: str = "child-1", locale: str = "ru") -> Chat:
        return Chat(engine, user=user, locale=locale)

    return make


@pytest.fixture
async def counsellor(desk: Desk) -> Counsellor:
    return await desk.add_counsellor("anna", "console", "anna")
