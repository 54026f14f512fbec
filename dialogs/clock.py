"""The dialogs' notion of now: timezone-aware UTC, as every stored timestamp is."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)
