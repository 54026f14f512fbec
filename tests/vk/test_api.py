"""The vk-api client as wired here: VK_API_URL, a community token's pace, VK errors, run_vk."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from vk_api.exceptions import ApiError

from bot.app import App, build_app
from bot.vk import VkSettingsError, VkStartupError, build_vk, make_vk_api, run_vk
from bot.vk.api import HelplineVkApi, RedirectSession
from knowledge_base import KnowledgeBase
from tests.vk.conftest import until, vk_settings
from tests.vk.fake_vk import GROUP_ID, TOKEN, FakeVk


def test_the_hard_coded_method_url_is_redirected() -> None:
    session = RedirectSession("http://127.0.0.1:9/method/")
    assert session.redirect("https://api.vk.ru/method/messages.send") == (
        "http://127.0.0.1:9/method/messages.send"
    )
    assert session.redirect("https://api.vk.com/method/groups.getLongPollServer") == (
        "http://127.0.0.1:9/method/groups.getLongPollServer"
    )
    # Long poll servers and file URLs are VK's own answers: left alone.
    assert session.redirect("https://lp.vk.com/wh123") == "https://lp.vk.com/wh123"
    official = RedirectSession()
    assert official.redirect("https://api.vk.ru/method/users.get") == (
        "https://api.vk.com/method/users.get"
    )


def test_pace_is_a_community_tokens_limit(fake_vk: FakeVk) -> None:
    vk = make_vk_api(TOKEN, api_url=fake_vk.base_url, api_version="5.199")
    assert isinstance(vk, HelplineVkApi)
    assert vk.RPS_DELAY == 1 / 20
    assert vk.api_version == "5.199"
    started = time.monotonic()
    for _ in range(6):
        vk.method("groups.getLongPollServer", {"group_id": GROUP_ID})
    assert time.monotonic() - started >= 5 * 0.05 * 0.9  # paced, but not at 0.34 s a call
    assert time.monotonic() - started < 5 * 0.34


def test_vk_errors_raise_the_real_api_error(fake_vk: FakeVk) -> None:
    vk = make_vk_api("wrong-token", api_url=fake_vk.base_url, api_version="5.199")
    with pytest.raises(ApiError) as error:
        vk.method("groups.getLongPollServer", {"group_id": GROUP_ID})
    assert error.value.code == 5
    # Error 6 is not retried forever by vk-api: it reaches the sender, which bounds it.
    good = make_vk_api(TOKEN, api_url=fake_vk.base_url, api_version="5.199")
    fake_vk.fail("messages.send", error=6)
    with pytest.raises(ApiError) as error:
        good.method("messages.send", {"peer_id": 1, "random_id": 1, "message": "x"})
    assert error.value.code == 6


async def test_build_vk_needs_a_token_and_a_group(
    tmp_path: Path, fake_vk: FakeVk, kb: KnowledgeBase
) -> None:
    app = build_app(vk_settings(tmp_path, fake_vk, vk_group_id=None), kb=kb)
    try:
        with pytest.raises(VkSettingsError):
            build_vk(app)
    finally:
        await app.close()


async def test_run_vk_wires_the_channel(vk_app: App, fake_vk: FakeVk) -> None:
    task = asyncio.create_task(run_vk(vk_app))
    await until(lambda: bool(fake_vk.state.polls))
    assert fake_vk.state.polls[0]["wait"] == "25"
    fake_vk.push(fake_vk.message_new(1001, "привет"))
    await until(lambda: len(fake_vk.sent_to(1001)) == 2)
    task.cancel()
    while not task.done():  # answer the 25 s poll so the thread ends at once
        fake_vk.wake()
        await asyncio.sleep(0.01)
    assert [m.text.split("\n")[0] for m in fake_vk.sent_to(1001)][1] == "Кто ты?"


async def test_a_token_vk_refuses_stops_the_channel_at_start(
    tmp_path: Path, fake_vk: FakeVk, kb: KnowledgeBase
) -> None:
    app = build_app(vk_settings(tmp_path, fake_vk, vk_token="revoked"), kb=kb)
    try:
        with pytest.raises(VkStartupError, match="error 5"):
            await asyncio.wait_for(run_vk(app), 5)
    finally:
        await app.close()
