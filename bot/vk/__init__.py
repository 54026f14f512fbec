"""The VK channel: a community bot on the Bots Long Poll API, through vk-api.

`run_vk(app)` is what `helpline run` starts when `VK_TOKEN` is set; `build_vk(app, ...)` builds
the same channel for tests (a fake VK server, short waits).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from bot.vk.api import DEFAULT_TIMEOUT, HelplineVkApi, RedirectSession, make_vk_api
from bot.vk.channel import VkChannel, VkStartupError
from bot.vk.longpoll import BACKOFF, DEFAULT_WAIT
from bot.vk.sender import RetryPolicy, VkSender

if TYPE_CHECKING:
    from bot.app import App
    from bot.evidence import EvidenceStore


class VkSettingsError(ValueError):
    """VK_TOKEN or VK_GROUP_ID is missing."""


def build_vk(
    app: App,
    *,
    wait: int = DEFAULT_WAIT,
    policy: RetryPolicy | None = None,
    backoff: Sequence[float] = BACKOFF,
    store: EvidenceStore | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    join_timeout: float = 2.0,
) -> VkChannel:
    """The VK channel for `app`, from its settings (VK_TOKEN, VK_GROUP_ID, VK_API_URL,
    VK_API_VERSION); nothing is started."""
    settings = app.settings
    if settings.vk_token is None or settings.vk_group_id is None:
        raise VkSettingsError("VK_TOKEN and VK_GROUP_ID must both be set for the VK channel")
    vk = make_vk_api(
        settings.vk_token.get_secret_value(),
        api_url=settings.vk_api_url,
        api_version=settings.vk_api_version,
        timeout=timeout,
    )
    return VkChannel(
        app,
        vk,
        group_id=settings.vk_group_id,
        wait=wait,
        policy=policy,
        backoff=backoff,
        store=store,
        download_session=RedirectSession(settings.vk_api_url, timeout=timeout),
        join_timeout=join_timeout,
    )


async def run_vk(app: App) -> None:
    """Register the VK sender, start the long poll thread, handle events until cancelled."""
    await build_vk(app).run()


__all__ = [
    "HelplineVkApi",
    "RedirectSession",
    "RetryPolicy",
    "VkChannel",
    "VkSender",
    "VkSettingsError",
    "VkStartupError",
    "build_vk",
    "make_vk_api",
    "run_vk",
]
