"""The VK channel: long poll events in, the engine, replies out.

The long poll runs in its own thread (`LongPollThread`) and hands each event to the event loop
with `loop.call_soon_threadsafe(queue.put_nowait, event)`; every VK call from the loop goes
through `asyncio.to_thread`, so the synchronous vk-api never blocks it. Events of one person are
handled one after another, in order; different people are handled side by side.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import requests
from vk_api.exceptions import ApiError, ApiHttpError

from bot.app import send_buckets
from bot.evidence import EvidenceStore
from bot.pacing import vk_pacer
from bot.vk.api import RedirectSession
from bot.vk.evidence import VkEvidenceCollector
from bot.vk.inbound import (
    ClientInfo,
    ClientRegistry,
    callback_inbound,
    is_private_peer,
    message_inbound,
)
from bot.vk.longpoll import BACKOFF, DEFAULT_WAIT, FATAL_CODES, LongPollThread, PolledEvent
from bot.vk.sender import CHANNEL, RetryPolicy, VkSender

if TYPE_CHECKING:
    from collections.abc import Sequence

    from bot.app import App

log = logging.getLogger(__name__)

MESSAGE_NEW = "message_new"
MESSAGE_EVENT = "message_event"


class VkStartupError(RuntimeError):
    """VK refused the community token or group: the channel cannot work."""


def _peer(event: PolledEvent) -> str | None:
    obj = event.object
    if event.type == MESSAGE_NEW:
        message = obj.get("message", obj)
        peer = message.get("peer_id") if isinstance(message, Mapping) else None
    elif event.type == MESSAGE_EVENT:
        peer = obj.get("peer_id")
    else:
        return None
    return str(peer) if isinstance(peer, int) and is_private_peer(peer) else None


class VkChannel:
    """Everything the VK community bot needs, wired to one `App`."""

    def __init__(
        self,
        app: App,
        vk: Any,
        *,
        group_id: int,
        wait: int = DEFAULT_WAIT,
        policy: RetryPolicy | None = None,
        backoff: Sequence[float] = BACKOFF,
        store: EvidenceStore | None = None,
        download_session: requests.Session | None = None,
        join_timeout: float = 2.0,
    ) -> None:
        settings = app.settings
        self.app = app
        self.vk = vk
        self.group_id = group_id
        self.wait = wait
        self.backoff = tuple(backoff)
        self.join_timeout = join_timeout
        self.policy = policy or RetryPolicy()
        self.clients = ClientRegistry()
        self.sender = VkSender(vk, self.clients, self.policy)
        self.evidence = VkEvidenceCollector(
            app,
            store or EvidenceStore(settings.evidence_dir, settings.evidence_max_bytes),
            download_session or RedirectSession(settings.vk_api_url),
        )
        self.queue: asyncio.Queue[PolledEvent] = asyncio.Queue()
        self.thread: LongPollThread | None = None
        self.processed = 0
        self._tails: dict[str, asyncio.Task[None]] = {}
        self._attached = False

    # ------------------------------------------------------------------ lifecycle
    def attach(self) -> None:
        """Register the sender for channel "vk" and the evidence collector as a desk listener."""
        if not self._attached:
            pacer = vk_pacer(send_buckets(self.app), paced=self.app.settings.send_pacing)
            self.app.delivery.register(CHANNEL, self.sender, pacer=pacer)
            self.app.delivery.register_desk(self.evidence)
            self._attached = True

    def start(self) -> None:
        """Attach and start the long poll thread (needs a running loop)."""
        self.attach()
        if self.thread is None:
            loop = asyncio.get_running_loop()

            def deliver(event: PolledEvent) -> None:
                loop.call_soon_threadsafe(self.queue.put_nowait, event)

            self.thread = LongPollThread(
                self.vk, self.group_id, deliver, wait=self.wait, backoff=self.backoff
            )
            self.thread.start()

    async def check(self) -> None:
        """Fail fast when VK refuses the token or the group; a network problem at start is
        left to the long poll's retries."""
        values = {"group_id": self.group_id}
        try:
            await asyncio.to_thread(self.vk.method, "groups.getLongPollServer", values)
        except ApiError as exc:
            if exc.code in FATAL_CODES:
                raise VkStartupError(
                    f"VK refused the community (error {exc.code}): check VK_TOKEN, VK_GROUP_ID "
                    "and that the community has the Bots Long Poll API enabled"
                ) from None
            log.warning("VK long poll server not available at start (VK error %s)", exc.code)
        except (ApiHttpError, requests.RequestException) as exc:
            log.warning("VK not reachable at start (%s); retrying", type(exc).__name__)

    async def run(self) -> None:
        """Check the token, then poll, handle and reply until cancelled."""
        await self.check()
        self.start()
        try:
            while True:
                event = await self.queue.get()
                # Backpressure: while this process is full (bot.mailbox), events wait here.
                await self.app.mailbox.room()
                self._dispatch(event)
        finally:
            await self.stop()

    async def stop(self) -> None:
        """Stop polling; let the updates in hand finish."""
        if self._tails:
            await asyncio.gather(*self._tails.values(), return_exceptions=True)
        if self.thread is not None:
            self.thread.stop()
            # A poll in progress ends within `wait` s; the thread is a daemon, so shutdown need
            # not wait for it.
            await asyncio.to_thread(self.thread.join, self.join_timeout)
            self.thread = None

    # ------------------------------------------------------------------ events
    def _dispatch(self, event: PolledEvent) -> None:
        peer = _peer(event)
        if peer is None:
            self.processed += 1
            return
        previous = self._tails.get(peer)
        task = asyncio.create_task(self._handle_after(previous, event))
        self._tails[peer] = task
        task.add_done_callback(lambda done: self._finished(peer, done))

    def _finished(self, peer: str, task: asyncio.Task[None]) -> None:
        if self._tails.get(peer) is task:
            del self._tails[peer]
        self.processed += 1
        if not task.cancelled() and task.exception() is not None:
            log.error("a VK update failed", exc_info=task.exception())

    async def _handle_after(self, previous: asyncio.Task[None] | None, event: PolledEvent) -> None:
        if previous is not None:
            await asyncio.wait([previous])
        await self.handle(event)

    async def handle(self, event: PolledEvent) -> None:
        """Handle one long poll event."""
        if event.type == MESSAGE_NEW:
            await self._message(event)
        elif event.type == MESSAGE_EVENT:
            await self._callback(event)

    async def _message(self, event: PolledEvent) -> None:
        obj = event.object
        message = obj.get("message", obj)
        raw_info = obj.get("client_info")
        info = ClientInfo.from_raw(raw_info if isinstance(raw_info, Mapping) else None)
        inbound = message_inbound(
            message,
            info,
            update_id=event.update_id,
            default_locale=self.app.settings.default_locale,
        )
        if inbound is None:
            return
        self.clients.remember(inbound.chat_id, info)
        await self.app.handle(inbound)

    async def _callback(self, event: PolledEvent) -> None:
        obj = event.object
        await self._answer(obj)
        inbound = callback_inbound(obj, update_id=event.update_id)
        if inbound is not None:
            await self.app.handle(inbound)

    async def _answer(self, obj: Mapping[str, Any]) -> None:
        """Stop the button's spinner (https://dev.vk.com/ru/method/messages.sendMessageEventAnswer)."""
        values = {
            "event_id": obj.get("event_id"),
            "user_id": obj.get("user_id"),
            "peer_id": obj.get("peer_id"),
        }
        try:
            await asyncio.to_thread(self.vk.method, "messages.sendMessageEventAnswer", values)
        except ApiError as exc:
            log.warning("callback answer refused (VK error %s)", exc.code)
        except (ApiHttpError, requests.RequestException) as exc:
            log.warning("callback answer failed (%s)", type(exc).__name__)
