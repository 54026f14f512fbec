"""The web console over a temporary database: the real engine, desk and delivery, a console
child played through `App.handle`, and an aiohttp test client that signs in like a browser."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.app import App
from bot.delivery import Delivery
from bot.settings import Settings
from bot.web import auth, build_console
from dialogs.engine import DialogEngine
from dialogs.escalation import Desk
from dialogs.messages import Channel, Inbound, Outbound
from knowledge_base import KnowledgeBase
from storage.db import Database
from storage.models import Counsellor

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def web_settings(db: Database, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": db.url,
        "evidence_dir": tmp_path / "evidence",
        "web_cookie_secure": False,
        "default_locale": "ru",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


class ChildInbox:
    """The console channel's sender in tests: what the child receives."""

    def __init__(self) -> None:
        self.received: list[Outbound] = []

    async def send(self, message: Outbound) -> None:
        self.received.append(message)

    @property
    def texts(self) -> list[str]:
        return [m.text for m in self.received]


@dataclass
class Child:
    """A child writing on the console channel, through `App.handle` (so deliveries happen)."""

    app: App
    user: str = "child-1"
    last: list[Outbound] = field(default_factory=list)

    async def send(self, text: str | None = None, payload: str | None = None) -> None:
        self.last = await self.app.handle(
            Inbound(
                channel=Channel.CONSOLE,
                user_id=self.user,
                chat_id=self.user,
                text=text,
                payload=payload,
                locale_hint="ru",
                update_id=uuid.uuid4().hex,
            )
        )

    async def press(self, label: str) -> None:
        for message in reversed(self.last):
            for row in message.buttons:
                for button in row:
                    if label.casefold() in button.label.casefold():
                        await self.send(payload=button.payload)
                        return
        raise AssertionError(f"no button {label!r}")

    async def asks_for_a_person(self) -> None:
        await self.send("привет")
        await self.press("ребёнок")
        await self.press("человеком")

    async def in_danger(self) -> None:
        await self.send("хочу умереть")


@pytest.fixture
def make_app(
    db: Database, engine: DialogEngine, kb: KnowledgeBase, tmp_path: Path
) -> Any:
    def make(**overrides: Any) -> App:
        settings = web_settings(db, tmp_path, **overrides)
        return App(
            settings=settings,
            db=db,
            kb=kb,
            engine=engine,
            desk=Desk(engine),
            delivery=Delivery(db),
        )

    return make


@pytest.fixture
def app(make_app: Any) -> App:
    application: App = make_app()
    return application


@pytest.fixture
def inbox(app: App) -> ChildInbox:
    box = ChildInbox()
    app.delivery.register(str(Channel.CONSOLE), box)
    return box


@pytest.fixture
def child(app: App, inbox: ChildInbox) -> Child:
    return Child(app)


async def add_staff(app: App, name: str, role: str = "counsellor") -> Counsellor:
    counsellor = await app.desk.add_counsellor(name, "web", name, role)
    await auth.set_password(app.db, name, PASSWORD)
    return counsellor


@pytest.fixture
async def anna(app: App) -> Counsellor:
    return await add_staff(app, "anna")


@pytest.fixture
async def boris(app: App) -> Counsellor:
    return await add_staff(app, "boris")


@pytest.fixture
async def sofia(app: App) -> Counsellor:
    """A supervisor."""
    return await add_staff(app, "sofia", "supervisor")


@pytest.fixture
async def client(app: App) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(build_console(app, poll_seconds=0.2))) as c:
        yield c


async def new_client(app: App) -> TestClient[Any, Any]:
    """Another browser on the same console (for a second counsellor)."""
    c: TestClient[Any, Any] = TestClient(TestServer(build_console(app, poll_seconds=0.2)))
    await c.start_server()
    return c


async def sign_in(
    client: TestClient[Any, Any], name: str, password: str = PASSWORD, code: str = ""
) -> Any:
    page = await client.get("/signin")
    token = CSRF.search(await page.text())
    assert token is not None
    return await client.post(
        "/signin",
        data={"csrf": token.group(1), "name": name, "password": password, "code": code},
        allow_redirects=False,
    )


async def csrf_of(client: TestClient[Any, Any], path: str = "/") -> str:
    page = await client.get(path)
    found = CSRF.search(await page.text())
    assert found is not None, await page.text()
    return found.group(1)


async def audit_actions(app: App, case_id: int) -> list[tuple[str | None, str]]:
    return [(who, action) for _, who, action, _ in await app.desk.audit_trail(case_id)]
