"""The triage verdict on one message: danger, signals, category and risk."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dialogs.taxonomy import Risk, Signal, is_category

from .lexicon import DATA_DIR, Entry, LexiconError, compile_lexicons
from .matcher import Matcher
from .normalize import tokenize


@dataclass(frozen=True, slots=True)
class Assessment:
    """What triage makes of one message.

    ``matched`` holds the ids of the lexicon entries that fired, most serious first: it
    explains the verdict without repeating the child's words.
    """

    danger: bool
    signals: tuple[Signal, ...]
    category: str
    risk: Risk
    matched: tuple[str, ...]

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict (for ``helpline triage --json`` and logs)."""
        return {
            "danger": self.danger,
            "signals": [s.value for s in self.signals],
            "category": self.category,
            "risk": self.risk.value,
            "matched": list(self.matched),
        }


@dataclass(frozen=True, slots=True)
class _Policy:
    lexicons: tuple[Path, ...]
    signals: Mapping[Signal, tuple[str, Risk]]  # in priority order
    combined_risk: Risk
    category_priority: Mapping[str, int]
    default_category: str
    default_risk: Risk


def _load_policy(path: Path) -> _Policy:
    with path.open(encoding="utf-8") as fh:
        data: dict[str, Any] = yaml.safe_load(fh)
    signals = {
        Signal(name): (str(v["category"]), Risk(v["risk"])) for name, v in data["signals"].items()
    }
    missing = set(Signal) - set(signals)
    if missing:
        raise LexiconError(f"{path.name}: signals without policy: {sorted(missing)}")
    priority = [str(c) for c in data["category_priority"]]
    for category in [*priority, *(c for c, _ in signals.values())]:
        if not is_category(category):
            raise LexiconError(f"{path.name}: {category!r} is not a taxonomy category")
    return _Policy(
        lexicons=tuple(DATA_DIR / str(name) for name in data["lexicons"]),
        signals=signals,
        combined_risk=Risk(data["combined_risk"]),
        category_priority={c: i for i, c in enumerate(priority)},
        default_category=str(data["default"]["category"]),
        default_risk=Risk(data["default"]["risk"]),
    )


class Triage:
    """Compiled lexicons plus the policy that combines what fires."""

    def __init__(self, policy_path: Path = DATA_DIR / "policy.yaml") -> None:
        self.policy = _load_policy(policy_path)
        self.matcher = Matcher(compile_lexicons(self.policy.lexicons, self.policy.signals))
        self._signal_rank = {s: i for i, s in enumerate(self.policy.signals)}

    def _rank(self, entry: Entry) -> tuple[bool, int, int, int]:
        """Sort key: danger first, then risk, signal priority and category priority."""
        signal_rank = self._signal_rank[entry.signal] if entry.signal is not None else len(Signal)
        category_rank = self.policy.category_priority.get(entry.category, 99)
        return entry.signal is None, entry.risk.rank, signal_rank, category_rank

    def assess(self, text: str, locale: str) -> Assessment:
        """Assess one message (see :func:`assess`)."""
        fired = sorted(self.matcher.fired(tokenize(text, locale)), key=self._rank)
        if not fired:
            return Assessment(
                danger=False,
                signals=(),
                category=self.policy.default_category,
                risk=self.policy.default_risk,
                matched=(),
            )
        signals = tuple(s for s in self.policy.signals if any(e.signal is s for e in fired))
        risk = min((e.risk for e in fired), key=lambda r: r.rank)
        if len(signals) > 1 and self.policy.combined_risk.rank < risk.rank:
            risk = self.policy.combined_risk
        return Assessment(
            danger=bool(signals),
            signals=signals,
            category=fired[0].category,
            risk=risk,
            matched=tuple(dict.fromkeys(e.id for e in fired)),
        )


_TRIAGE = Triage()  # lexicons are compiled once, at import; a broken file fails loudly here


def assess(text: str, locale: str = "ru") -> Assessment:
    """Assess one message written by a child (or a parent) in ``locale`` ("ru", "en", ...).

    Both lexicons apply whatever the locale; the locale decides how ambiguous mixed-script
    words are read and whether all-Latin words are also read as transliterated Russian.
    """
    return _TRIAGE.assess(text, locale)
