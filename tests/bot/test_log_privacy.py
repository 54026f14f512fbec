"""Logs never carry what a child wrote, from any path: a library's warning that prints an update,
a traceback whose exception quotes its input, SQL parameters at DEBUG. And the embedded
database's files are readable by the service's user only; `purge --days 0` purges everything
closed."""

from __future__ import annotations

import argparse
import io
import logging
import stat
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from bot.cli import _purge
from bot.logs import setup_logging
from bot.settings import Settings
from storage import crypto
from storage.db import Database
from storage.models import Message
from storage.repositories import Repos

CANARY = "канарейка-7731 мой адрес Ленина 5"
TEST_ID_KEY = "test-id-hash-key-0123456789"  # tests/conftest.py


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    out = io.StringIO()
    monkeypatch.setattr("sys.stderr", out)
    shown = warnings.showwarning
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    setup_logging("DEBUG")
    try:
        yield out
    finally:
        warnings.showwarning = shown
        root.handlers[:], root.level = saved  # type: ignore[assignment]


def test_a_warning_that_quotes_an_update_is_logged_without_it(captured: io.StringIO) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn(f"Detected unknown update type: {{'text': '{CANARY}'}}",
                      RuntimeWarning, stacklevel=1)
    said = captured.getvalue()
    assert "RuntimeWarning" in said and "test_log_privacy.py" in said
    assert "канарейка" not in said


class Update(BaseModel):
    update_id: int


def test_a_traceback_keeps_its_frames_but_not_the_input(captured: io.StringIO) -> None:
    try:
        try:
            Update.model_validate({"update_id": CANARY})
        except ValidationError as exc:
            raise RuntimeError(f"could not read {CANARY}") from exc
    except RuntimeError:
        logging.getLogger("bot.test").exception("an update could not be read")
    said = captured.getvalue()
    assert "an update could not be read" in said
    assert "ValidationError" in said and "RuntimeError" in said, "the kinds stay"
    assert "test_log_privacy.py" in said, "the frames stay"
    assert "канарейка" not in said and "input_value" not in said


async def test_sql_parameters_stay_out_of_debug_logs(
    captured: io.StringIO, tmp_path: Path
) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'h.db'}", echo=True)
    await db.create_all()
    try:
        async with db.session() as s:
            user, _ = await Repos(s).users.get_or_create("console", "c-1", "c-1", "ru")
            await Repos(s).messages.add(user.id, "child", CANARY)
            await s.execute(Message.__table__.select().where(Message.sender == CANARY))
    finally:
        await db.dispose()
    said = captured.getvalue()
    assert "INSERT INTO messages" in said, "the statements are logged at DEBUG"
    assert "канарейка" not in said


async def test_the_database_files_are_the_service_users_only(tmp_path: Path) -> None:
    path = tmp_path / "var" / "helpline.db"
    db = Database(f"sqlite+aiosqlite:///{path}")
    await db.create_all()
    try:
        async with db.session() as s:
            await Repos(s).users.get_or_create("console", "child-1", "child-1", "ru")
        files = [p for p in path.parent.iterdir() if p.name.startswith("helpline.db")]
        assert {p.name for p in files} >= {"helpline.db", "helpline.db-wal", "helpline.db-shm"}
        for file in files:
            assert stat.S_IMODE(file.stat().st_mode) == 0o600, file.name
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    finally:
        await db.dispose()


async def test_purge_days_zero_purges_everything_closed(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'p.db'}"
    db = Database(url)
    await db.create_all()
    async with db.session() as s:
        repos = Repos(s)
        user, _ = await repos.users.get_or_create("console", "c", "c", "ru")
        case = await repos.cases.open(user_id=user.id, channel="console", category="bullying",
                                      risk="medium", risk_rank=2, answers={}, signals={})
        await repos.messages.add(user.id, "child", CANARY, case_id=case.id)
        counsellor = await repos.counsellors.add("Анна", "console", "anna", "counsellor")
        assert await repos.cases.take(case.id, counsellor.id)
        assert await repos.cases.close(case.id, counsellor.id, "advice-given")
    await db.dispose()
    cipher = crypto.current()  # the test keys, handed to the command as a deployment would
    settings = Settings(_env_file=None, database_url=url,  # type: ignore[call-arg]
                        encryption_keys=",".join(cipher.key_strings),
                        id_hash_key=TEST_ID_KEY)
    try:
        assert await _purge(settings, argparse.Namespace(days=0)) == 0
    finally:
        crypto.configure(cipher)
    db = Database(url)
    try:
        async with db.session() as s:
            left = (await s.execute(Message.__table__.select())).all()
    finally:
        await db.dispose()
    assert left == [], "the closed case's transcript is gone"
