"""Logging: JSON lines in production, readable lines in a terminal.

Log lines name a case number or a pseudonymous id, never message text or platform user ids; the
`PrivacyFilter` is a last line of defence that drops any record carrying a `text` or `user_id`
extra, so a careless `extra=` cannot leak them. Paths that would print what a child wrote are
closed too: a Python warning (a library warning about an unknown update prints the update) is
logged as its category and place only; a traceback keeps its frames and exception types but not
the exceptions' messages (a validation error quotes its `input_value`); SQL parameters are
never logged (`storage.db` hides them, DEBUG included).
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
import warnings
from datetime import UTC, datetime
from types import TracebackType

_FORBIDDEN_EXTRAS = ("text", "user_id", "chat_id", "address", "external_id")
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class PrivacyFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for name in _FORBIDDEN_EXTRAS:
            if name in record.__dict__:
                record.__dict__[name] = "[redacted]"
        return True


# Lines of a traceback that hold no data: the header, frames (indented), the chain's links.
_KEPT = ("Traceback", "  ", "During handling", "The above exception")
ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


def private_traceback(exc_info: ExcInfo) -> str:
    """A traceback with its frames and exception types, but none of the exceptions' messages
    (they may quote a child's message: a validation error's `input_value`, a bad update)."""
    _kind, exc, tb = exc_info
    lines: list[str] = []
    for part in traceback.TracebackException(type(exc), exc, tb).format():
        if part.startswith(_KEPT) or not part.strip():
            lines.append(part)
        else:  # the "Kind: message" line of an exception in the chain
            kind = part.split(":", 1)[0].strip()
            lines.append(f"{kind}: [message withheld]\n")
    return "".join(lines).rstrip("\n")


class _PrivateText(logging.Formatter):
    def formatException(self, ei: ExcInfo) -> str:  # type: ignore[override]
        return private_traceback(ei)


def _warning_to_log(message: Warning | str, category: type[Warning], filename: str,
                    lineno: int, file: object = None, line: str | None = None) -> None:
    """Python warnings are logged as their category and place, never their text."""
    logging.getLogger("py.warnings").warning("%s at %s:%d", category.__name__, filename, lineno)


class JsonFormatter(_PrivateText):
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
        if record.exc_info and record.exc_info[0] is not None:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def setup_logging(level: str = "INFO", *, json_lines: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(PrivacyFilter())
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            _PrivateText("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiogram logs every update with user ids at INFO; keep it to warnings.
    logging.getLogger("aiogram.event").setLevel(logging.WARNING)
    # aiosqlite logs every statement with its parameters at DEBUG.
    logging.getLogger("aiosqlite").setLevel(logging.WARNING)
    warnings.showwarning = _warning_to_log
