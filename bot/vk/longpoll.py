"""The Bots Long Poll in its own thread (vk-api is synchronous and a poll blocks for `wait` s).

vk-api's `VkBotLongPoll.check` already follows VK's `failed` answers
(https://dev.vk.com/ru/api/bots-long-poll/getting-started): 1 - take the new `ts` and go on;
2 - the key expired: a new key, the same `ts`; 3 - information lost: a new key and `ts`. This
thread adds what it does not do: surviving a network drop or a bad answer (the same `ts` is asked
again, so nothing is lost or repeated), backing off, and stopping on request.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import requests
from vk_api.bot_longpoll import VkBotEvent, VkBotLongPoll
from vk_api.exceptions import ApiError, ApiHttpError

log = logging.getLogger(__name__)

DEFAULT_WAIT = 25
# Errors that no retry cures: authorization failed (5), access denied (15), community
# authorization failed (27), a bad parameter such as the group id (100, 125).
FATAL_CODES = {5, 15, 27, 100, 125}
BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0)


@dataclass(frozen=True, slots=True)
class PolledEvent:
    """One long poll event and the id the engine's dedupe knows it by."""

    type: str
    object: Mapping[str, Any]
    update_id: str


def update_id(raw: Mapping[str, Any], group_id: int, ts: object, index: int) -> str:
    """VK's `event_id` (API 5.103+); without one, the event's place: group, `ts` asked, index."""
    event_id = raw.get("event_id")
    if isinstance(event_id, str) and event_id:
        return event_id
    return f"{group_id}:{ts}:{index}"


class HelplineLongPoll(VkBotLongPoll):  # type: ignore[misc]
    """`VkBotLongPoll` that names each event and skips one it cannot parse (vk-api would raise
    after moving `ts` on, losing the rest of the batch)."""

    def _parse_event(self, raw_event: Any) -> VkBotEvent | None:
        try:
            return super()._parse_event(raw_event)
        except (KeyError, TypeError, AttributeError, ValueError):
            log.warning("a malformed long poll event was skipped")
            return None

    def poll(self) -> list[PolledEvent]:
        """One long poll request; the events it brought."""
        ts = self.ts
        events: Sequence[VkBotEvent | None] = self.check()
        polled = []
        for index, event in enumerate(events):
            if event is None:
                continue
            kind = event.type.value if hasattr(event.type, "value") else str(event.type)
            polled.append(
                PolledEvent(
                    kind,
                    dict(event.raw.get("object") or {}),
                    update_id(event.raw, self.group_id, ts, index),
                )
            )
        return polled


class LongPollThread(threading.Thread):
    """Polls until `stop()`; hands every event to `deliver` (which must be thread-safe, e.g.
    `loop.call_soon_threadsafe(queue.put_nowait, event)`)."""

    def __init__(
        self,
        vk: Any,
        group_id: int,
        deliver: Callable[[PolledEvent], None],
        *,
        wait: int = DEFAULT_WAIT,
        backoff: Sequence[float] = BACKOFF,
    ) -> None:
        super().__init__(name="vk-long-poll", daemon=True)
        self.vk = vk
        self.group_id = group_id
        self.deliver = deliver
        self.wait = wait
        self.backoff = tuple(backoff) or (1.0,)
        self.failures = 0
        self._stopping = threading.Event()

    def stop(self) -> None:
        """Ask the thread to end; it does after the poll in progress (at most `wait` s)."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def run(self) -> None:
        longpoll: HelplineLongPoll | None = None
        while not self._stopping.is_set():
            try:
                if longpoll is None:
                    longpoll = HelplineLongPoll(self.vk, self.group_id, wait=self.wait)
                elif self.failures > 1:
                    # Failing again and again: the server may have moved. A new key and server,
                    # the same ts: VK still has the events we have not seen.
                    longpoll.update_longpoll_server(update_ts=False)
                events = longpoll.poll()
            except ApiError as exc:
                self._backoff(f"VK error {exc.code}", fatal=exc.code in FATAL_CODES)
                continue
            except (requests.RequestException, ApiHttpError, ValueError, KeyError) as exc:
                self._backoff(type(exc).__name__)
                continue
            if self.failures:
                log.info("VK long poll reconnected after %d failure(s)", self.failures)
            self.failures = 0
            for event in events:
                try:
                    self.deliver(event)
                except RuntimeError:  # the event loop is closed: we are shutting down
                    log.warning("VK long poll: event loop closed, stopping")
                    self._stopping.set()
                    return

    def _backoff(self, reason: str, *, fatal: bool = False) -> None:
        delay = self.backoff[min(self.failures, len(self.backoff) - 1)]
        self.failures += 1
        # A revoked token or a disabled long poll needs a person: say so loudly, keep trying.
        log.log(
            logging.ERROR if fatal else logging.WARNING,
            "VK long poll failed (%s); retrying in %.1f s",
            reason,
            delay,
        )
        self._stopping.wait(delay)
