"""Staff-group updates kept in the database until handled (`storage.models.DeskUpdate`).

Long polling confirms an update to Telegram by asking past it. A counsellor's action is
handled in the staff lane beside the children's intake; were it confirmed only once handled,
every later update would wait behind it, because Telegram answers `getUpdates` with at most
100 updates from the offset: under load a slow Take or a stuck Bot API call kept a child's
danger message out of reach for seconds. Kept here first, it is confirmed at once, handled
in order, deleted once handled, and handled at the next start if a crash came between.
"""

from __future__ import annotations

from typing import Any

from storage.db import Database
from storage.lane import Lane, lane
from storage.repositories import Repos

CHANNEL = "telegram"


class StaffKeeper:
    """The poller's `StaffJournal` over the database."""

    def __init__(self, db: Database, channel: str = CHANNEL) -> None:
        self.db = db
        self.channel = channel

    async def keep(self, update_id: int, raw: dict[str, Any]) -> bool:
        """Store one; False when it is stored already (sent again after a restart)."""
        with lane(Lane.INTAKE):
            async with self.db.single() as s:
                return await Repos(s).desk_updates.keep(self.channel, str(update_id), raw)

    async def done(self, update_id: int) -> None:
        with lane(Lane.INTAKE):
            async with self.db.single() as s:
                await Repos(s).desk_updates.done(self.channel, str(update_id))

    async def waiting(self) -> list[tuple[int, dict[str, Any]]]:
        async with self.db.session() as s:
            rows = await Repos(s).desk_updates.waiting(self.channel)
        return [(int(update_id), body) for update_id, body in rows]


__all__ = ["StaffKeeper"]
