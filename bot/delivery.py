"""Delivery of the engine's outbound messages to whichever channel each one is addressed to.

A VK child's case can be handled from the Telegram staff group: routing is by
`Outbound.to.channel`, and desk notices ("desk") go to every registered desk channel.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Protocol

from dialogs.messages import DESK, Outbound

log = logging.getLogger(__name__)


class Sender(Protocol):
    """A channel that can deliver an outbound message to a user (or, for desks, to staff)."""

    async def send(self, message: Outbound) -> None: ...


class Delivery:
    def __init__(self) -> None:
        self._senders: dict[str, Sender] = {}
        self._desks: list[Sender] = []

    def register(self, channel: str, sender: Sender) -> None:
        self._senders[channel] = sender

    def register_desk(self, desk: Sender) -> None:
        self._desks.append(desk)

    async def deliver(self, messages: Iterable[Outbound]) -> None:
        """Send in order. A failure is logged with the case number and never hides the rest."""
        for message in messages:
            targets = (
                self._desks
                if message.to.channel == DESK
                else [s for s in (self._senders.get(message.to.channel),) if s is not None]
            )
            if not targets:
                log.error("no channel for %s (case %s)", message.to.channel, message.case_id)
                continue
            for target in targets:
                try:
                    await target.send(message)
                except Exception:
                    log.exception("delivery failed (case %s)", message.case_id)
