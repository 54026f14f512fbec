"""Canned replies: ready, reviewed answers a counsellor sends often (`/reply KEY`).

They live in a data file (`dialogs/data/canned.yaml`) so that reviewers read them like articles.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from dialogs.catalogue import LOCALES

_DATA = Path(__file__).parent / "data" / "canned.yaml"


@dataclass(frozen=True, slots=True)
class CannedReply:
    key: str
    titles: dict[str, str]
    texts: dict[str, str]

    def title(self, locale: str) -> str:
        return self.titles.get(locale) or self.titles["en"]

    def text(self, locale: str) -> str:
        return self.texts.get(locale) or self.texts["en"]


class CannedReplies:
    """The set of canned replies; a missing locale or title is a bug and raises at load."""

    def __init__(self, path: Path = _DATA) -> None:
        with path.open(encoding="utf-8") as fh:
            raw: dict[str, Any] = yaml.safe_load(fh) or {}
        replies: dict[str, CannedReply] = {}
        for key, entry in raw.items():
            titles = entry.get("title") or {}
            missing = [loc for loc in LOCALES if not entry.get(loc) or not titles.get(loc)]
            if missing:
                raise ValueError(f"{path}: canned reply {key!r} lacks {', '.join(missing)}")
            replies[str(key)] = CannedReply(
                key=str(key),
                titles={loc: str(titles[loc]) for loc in LOCALES},
                texts={loc: str(entry[loc]).strip() for loc in LOCALES},
            )
        self._replies = replies

    def get(self, key: str) -> CannedReply | None:
        return self._replies.get(key.strip().lstrip("/").lower())

    def all(self) -> list[CannedReply]:
        return list(self._replies.values())

    def keys(self) -> list[str]:
        return list(self._replies)


@cache
def default_canned() -> CannedReplies:
    return CannedReplies()


__all__ = ["CannedReplies", "CannedReply", "default_canned"]
