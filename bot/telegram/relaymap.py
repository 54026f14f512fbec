"""Which child message a counsellor's message in the staff group became, so that an edit of the
counsellor's message can be relayed as an edit of the child's copy.

Kept in memory (a bounded LRU), not in the database, on purpose: an edit is only worth relaying
while the exchange is fresh, the map holds no text, and after a restart (or for an evicted entry)
the counsellor is simply told the edit did not reach the child and to send a new message. With
several webhook workers an edit may reach a worker that did not relay the original: same answer.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RelayTarget:
    case_id: int
    chat_id: str
    message_ids: tuple[int, ...]
    media: bool


class RelayMap:
    """desk message id -> the child's copy; the least recently used entries are dropped."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._items: OrderedDict[int, RelayTarget] = OrderedDict()

    def remember(self, desk_message_id: int, target: RelayTarget) -> None:
        self._items[desk_message_id] = target
        self._items.move_to_end(desk_message_id)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def get(self, desk_message_id: int) -> RelayTarget | None:
        target = self._items.get(desk_message_id)
        if target is not None:
            self._items.move_to_end(desk_message_id)
        return target

    def __len__(self) -> int:
        return len(self._items)
