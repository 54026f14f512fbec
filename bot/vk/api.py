"""The vk-api client as the help line uses it: our base URL, a community token's pace, timeouts.

- vk-api posts every method to a hard-coded `https://api.vk.ru/method/{name}` (older releases:
  `api.vk.com`); `RedirectSession` rewrites that prefix to `VK_API_URL`, so a fake server on
  127.0.0.1 can stand in for VK in tests.
- vk-api sleeps `RPS_DELAY = 0.34` s between calls (about 3 a second, a user token's pace); a
  community token may make 20 requests a second (https://dev.vk.com/ru/api/api-requests#Ограничения
  и рекомендации), so `HelplineVkApi` paces calls at 1/20 s.
- vk-api's own handler for error 6 ("too many requests per second") sleeps and calls again with no
  limit; the sender retries 6 itself, a bounded number of times, so the handler is removed.
- `requests` waits forever unless given a timeout, and vk-api gives none: the session adds one.
"""

from __future__ import annotations

from typing import Any

import requests
import vk_api
from vk_api.exceptions import TOO_MANY_RPS_CODE

OFFICIAL_METHOD_URLS = ("https://api.vk.ru/method/", "https://api.vk.com/method/")
DEFAULT_API_URL = "https://api.vk.com/method"
# A method call answers at once; 30 s covers a slow network without hanging a worker thread.
DEFAULT_TIMEOUT = 30.0
COMMUNITY_RPS = 20


class RedirectSession(requests.Session):
    """A `requests.Session` that sends VK method calls to `api_url` and never waits forever."""

    def __init__(
        self, api_url: str = DEFAULT_API_URL, *, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        super().__init__()
        self.api_url = api_url.rstrip("/") + "/"
        self.timeout = timeout

    def redirect(self, url: str) -> str:
        for prefix in OFFICIAL_METHOD_URLS:
            if url.startswith(prefix):
                return self.api_url + url[len(prefix) :]
        return url

    def request(
        self, method: str, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:
        if isinstance(url, str):
            url = self.redirect(url)
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        return super().request(method, url, *args, **kwargs)


class HelplineVkApi(vk_api.VkApi):  # type: ignore[misc]
    """`VkApi` with a community token's pace and no unbounded retry of error 6."""

    RPS_DELAY = 1 / COMMUNITY_RPS

    def __init__(self, token: str, *, session: requests.Session, api_version: str) -> None:
        super().__init__(token=token, session=session, api_version=api_version)
        self.error_handlers.pop(TOO_MANY_RPS_CODE, None)


def make_vk_api(
    token: str,
    *,
    api_url: str = DEFAULT_API_URL,
    api_version: str,
    timeout: float = DEFAULT_TIMEOUT,
) -> HelplineVkApi:
    """A client for a community token, talking to `api_url` through a `RedirectSession`."""
    return HelplineVkApi(
        token, session=RedirectSession(api_url, timeout=timeout), api_version=api_version
    )
