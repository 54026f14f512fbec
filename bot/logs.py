"""Logging: JSON lines in production, readable lines in a terminal.

Log lines name a case number or a pseudonymous id, never message text or platform user ids; the
`PrivacyFilter` is a last line of defence that drops any record carrying a `text` or `user_id`
extra, so a careless `extra=` cannot leak them.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

_FORBIDDEN_EXTRAS = ("text", "user_id", "chat_id", "address", "external_id")
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class PrivacyFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for name in _FORBIDDEN_EXTRAS:
            if name in record.__dict__:
                record.__dict__[name] = "[redacted]"
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def setup_logging(level: str = "INFO", *, json_lines: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(PrivacyFilter())
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiogram logs every update with user ids at INFO; keep it to warnings.
    logging.getLogger("aiogram.event").setLevel(logging.WARNING)
