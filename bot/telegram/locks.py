"""Kept for imports inside the Telegram package; the lock lives in `bot.locks`."""

from bot.locks import KeyedLocks

__all__ = ["KeyedLocks"]
