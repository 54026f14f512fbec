"""SEND_PACING=off: benchmarks run the bot as shipped against a fake API server, and the bot
refuses the setting against Telegram's or VK's real API."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from bot.app import build_app
from bot.pacing import Pacer, Unpaced, telegram_pacer, vk_pacer
from bot.settings import Settings
from bot.telegram import build_telegram


def settings(tmp_path: Path, **values: Any) -> Settings:
    base: dict[str, Any] = {"database_url": f"sqlite+aiosqlite:///{tmp_path / 't.db'}",
                            "evidence_dir": tmp_path / "evidence"}
    return Settings(_env_file=None, **{**base, **values})  # type: ignore[call-arg]


@pytest.mark.parametrize("values", [
    {"telegram_bot_token": "1:x"},  # the default URL is api.telegram.org
    {"telegram_bot_token": "1:x", "telegram_api_url": "https://API.Telegram.org/"},
    {"vk_token": "vk1", "vk_group_id": 1},  # the default URL is api.vk.com
    {"vk_token": "vk1", "vk_group_id": 1, "vk_api_url": "https://api.vk.com/method"},
])
def test_pacing_cannot_be_lifted_against_a_real_platform(tmp_path: Path,
                                                         values: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="SEND_PACING=off is only for fake API servers"):
        settings(tmp_path, send_pacing=False, **values)
    assert settings(tmp_path, **values).send_pacing  # paced, the default, is fine


def test_pacing_can_be_lifted_against_a_fake_server(tmp_path: Path) -> None:
    lifted = settings(tmp_path, send_pacing="off", telegram_bot_token="1:x",
                      telegram_api_url="http://127.0.0.1:8081",
                      vk_token="vk1", vk_group_id=1, vk_api_url="http://127.0.0.1:8082/method")
    assert lifted.send_pacing is False
    # A host that only looks like Telegram's is not Telegram.
    assert settings(tmp_path, send_pacing=False, telegram_bot_token="1:x",
                    telegram_api_url="http://api.telegram.org.fake.test").send_pacing is False


async def test_unpaced_never_waits_where_the_published_limits_would() -> None:
    paced, unpaced = telegram_pacer(), telegram_pacer(paced=False)
    assert isinstance(unpaced, Unpaced) and isinstance(vk_pacer(paced=False), Unpaced)
    waited = [await paced.wait("42") for _ in range(4)]  # 1 a second per chat, burst 3
    assert max(waited) > 0.5
    began = time.monotonic()
    assert [await unpaced.wait("42") for _ in range(500)] == [0.0] * 500
    assert time.monotonic() - began < 1.0


async def test_the_telegram_channel_uses_the_setting(tmp_path: Path) -> None:
    def pacer_of(**values: Any) -> Pacer:
        app = build_app(settings(tmp_path, telegram_bot_token="1:x",
                                 telegram_api_url="http://127.0.0.1:9", **values))
        build_telegram(app)
        return app.delivery._pacers["telegram"]

    assert isinstance(pacer_of(send_pacing=False), Unpaced)
    shipped = pacer_of()
    assert not isinstance(shipped, Unpaced) and shipped.chat_rate == 1
