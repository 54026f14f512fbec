"""Fixtures for the desk's operations: a configurable policy, staff, and a child in the queue."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from dialogs.engine import DialogEngine
from dialogs.escalation import CaseSummary, Desk
from dialogs.hours import OpeningHours, load_hours
from dialogs.operations import DeskConfig, DeskPolicy
from storage.models import Counsellor
from tests.conftest import Chat

Configure = Callable[..., DeskConfig]


@pytest.fixture
def configure(engine: DialogEngine) -> Configure:
    """Give the engine (and so the desk) a `DeskConfig` built from keyword arguments."""

    def apply(**values: object) -> DeskConfig:
        config = DeskConfig(**values)  # type: ignore[arg-type]
        engine.policy = DeskPolicy(config)
        return config

    return apply


@pytest.fixture
def hours_yaml(tmp_path: Path) -> Callable[[str], OpeningHours]:
    """Opening hours from a YAML text, read the way the running bot reads its file."""

    def load(text: str) -> OpeningHours:
        path = tmp_path / "hours.yaml"
        path.write_text(text, encoding="utf-8")
        return load_hours(path)

    return load


@pytest.fixture
async def supervisor(desk: Desk) -> Counsellor:
    return await desk.add_counsellor("sveta", "console", "sveta", role="supervisor")


@pytest.fixture
async def boris(desk: Desk) -> Counsellor:
    return await desk.add_counsellor("boris", "console", "boris")


async def join_queue(chat: Chat) -> None:
    """Start as a child and ask for a person."""
    await chat.start_as_child()
    await chat.press("человеком" if chat.locale == "ru" else "person")


async def case_of(desk: Desk, chat_count: int = 1) -> CaseSummary:
    queue = await desk.queue()
    assert len(queue) >= chat_count
    return queue[-1]
