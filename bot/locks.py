"""Locks of the bot process.

* `KeyedLocks`: one asyncio lock per key (a case id, a chat), dropped when nobody holds or waits
  for it.
* Chat claims (`ChatClaims`): who handles a chat's mailbox now (see `bot.mailbox`). On SQLite
  (one process) an in-process set is enough (`LocalClaims`); on PostgreSQL several workers share
  the chats, so a claim is a session-level advisory lock (`AdvisoryClaims`) held on one
  connection per process: a process that dies (even by SIGKILL) loses its connection and with it
  every claim, at once, so no chat waits for a dead worker's lease.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager
from typing import Protocol

from storage.advisory import ADVISORY_NAMESPACE, AdvisoryClaims, ChatKey, advisory_key

log = logging.getLogger(__name__)



class KeyedLocks:
    def __init__(self) -> None:
        self._locks: dict[Hashable, asyncio.Lock] = {}
        self._users: dict[Hashable, int] = {}

    @asynccontextmanager
    async def hold(self, key: Hashable) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._users[key] = self._users.get(key, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._users[key] -= 1
            if not self._users[key]:
                del self._users[key]
                del self._locks[key]


class ChatClaims(Protocol):
    """At most one holder per chat across every process on the database."""

    # Whether other processes claim too (then a released chat is looked at again in the
    # database, for what they journalled meanwhile).
    shared: bool

    async def try_claim(self, key: ChatKey) -> bool:
        """Take the chat if nobody holds it; never waits."""
        ...

    async def release(self, key: ChatKey) -> None: ...

    def holds(self, key: ChatKey) -> bool:
        """Is the claim still ours? (False once the claim connection was lost.)"""
        ...

    async def close(self) -> None: ...


class LocalClaims:
    """Claims inside one process: enough for SQLite, where one process serves the line."""

    shared = False

    def __init__(self) -> None:
        self._held: set[ChatKey] = set()

    async def try_claim(self, key: ChatKey) -> bool:
        if key in self._held:
            return False
        self._held.add(key)
        return True

    async def release(self, key: ChatKey) -> None:
        self._held.discard(key)

    def holds(self, key: ChatKey) -> bool:
        return key in self._held

    async def close(self) -> None:
        self._held.clear()


__all__ = ["ADVISORY_NAMESPACE", "AdvisoryClaims", "ChatClaims", "ChatKey", "KeyedLocks",
           "LocalClaims", "advisory_key"]
