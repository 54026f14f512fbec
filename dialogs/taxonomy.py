"""The case taxonomy: categories, outcomes and risk levels, loaded from one reviewed data file."""

from __future__ import annotations

from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any

import yaml

_DATA = Path(__file__).parent / "data" / "taxonomy.yaml"


@cache
def _load() -> dict[str, Any]:
    with _DATA.open(encoding="utf-8") as fh:
        data: dict[str, Any] = yaml.safe_load(fh)
    return data


class Risk(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"

    @property
    def rank(self) -> int:
        """0 for critical .. 3 for low: the queue sorts by this first."""
        return int(_load()["risks"][self.value]["rank"])

    def label(self, locale: str) -> str:
        return str(_load()["risks"][self.value][_loc(locale)])


class Signal(StrEnum):
    """Kinds of danger triage can recognise."""

    SELF_HARM = "self-harm"
    SUICIDE = "suicide"
    ABUSE = "abuse"
    SEXTORTION = "sextortion"
    GROOMING = "grooming"
    THREAT_TO_LIFE = "threat-to-life"
    RUNNING_AWAY = "running-away"
    EATING_DISORDER = "eating-disorder"
    DANGEROUS_CHALLENGE = "dangerous-challenge"
    SEXUAL_ABUSE = "sexual-abuse"
    VIOLENCE_TO_OTHERS = "violence-to-others"
    OVERDOSE = "overdose"
    EXPLOITATION = "exploitation"


def _loc(locale: str) -> str:
    return "ru" if locale.startswith("ru") else "en"


def categories() -> list[str]:
    return list(_load()["categories"])


def outcomes() -> list[str]:
    return list(_load()["outcomes"])


def category_label(category: str, locale: str) -> str:
    entry = _load()["categories"].get(category)
    return str(entry[_loc(locale)]) if entry else category


def category_chi_group(category: str) -> str:
    entry = _load()["categories"].get(category)
    return str(entry["chi"]) if entry else "other"


def outcome_label(outcome: str, locale: str) -> str:
    entry = _load()["outcomes"].get(outcome)
    return str(entry[_loc(locale)]) if entry else outcome


def is_category(value: str) -> bool:
    return value in _load()["categories"]


def is_victim_category(category: str) -> bool:
    """Is the child of a case in this category the victim of abuse (`victim: true`)?"""
    entry = _load()["categories"].get(category)
    return bool(entry and entry.get("victim"))


def is_outcome(value: str) -> bool:
    return value in _load()["outcomes"]


def chi_groups() -> list[str]:
    """The CHI main categories our categories are counted under, in the data file's order."""
    return list(_load().get("chi_groups", {}))


def chi_group_label(group: str, locale: str) -> str:
    entry = _load().get("chi_groups", {}).get(group)
    return str(entry[_loc(locale)]) if entry else group


def outcome_chi(outcome: str) -> str:
    """The CHI intervention type an outcome is counted under."""
    entry = _load()["outcomes"].get(outcome)
    return str(entry.get("chi", "other")) if entry else "other"


def risks() -> list[str]:
    """Risk levels, highest first."""
    return sorted(_load()["risks"], key=lambda r: int(_load()["risks"][r]["rank"]))
