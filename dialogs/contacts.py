"""Emergency contacts by region: one reviewed table (``data/contacts.yaml``), one renderer.

The region is the help line's (a setting), never the child's interface language: an
English-speaking child of a Russian help line sees the Russian numbers, labelled in English.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import yaml

_DATA = Path(__file__).parent / "data" / "contacts.yaml"


@dataclass(frozen=True, slots=True)
class Contact:
    number: str
    labels: dict[str, str]
    source: str
    checked: date

    def label(self, locale: str) -> str:
        return self.labels["ru" if locale.startswith("ru") else "en"]


class ContactsError(ValueError):
    """The contacts file is malformed or names an unknown region."""


@cache
def _load(path: Path = _DATA) -> dict[str, tuple[Contact, ...]]:
    with path.open(encoding="utf-8") as fh:
        data: dict[str, Any] = yaml.safe_load(fh)
    regions: dict[str, tuple[Contact, ...]] = {}
    for region, entries in data["regions"].items():
        contacts = []
        for raw in entries:
            missing = {"number", "ru", "en", "source", "checked"} - set(raw)
            if missing:
                raise ContactsError(f"contacts.yaml: {region}: missing {sorted(missing)}")
            checked = raw["checked"]
            if not isinstance(checked, date):
                raise ContactsError(f"contacts.yaml: {region}: checked must be a date")
            contacts.append(
                Contact(
                    number=str(raw["number"]),
                    labels={"ru": str(raw["ru"]), "en": str(raw["en"])},
                    source=str(raw["source"]),
                    checked=checked,
                )
            )
        regions[str(region)] = tuple(contacts)
    return regions


def regions() -> list[str]:
    return list(_load())


def contacts(region: str) -> tuple[Contact, ...]:
    """The region's contacts, most urgent first."""
    table = _load()
    if region not in table:
        raise ContactsError(f"no emergency contacts for region {region!r}: {sorted(table)}")
    return table[region]


def render(region: str, locale: str) -> str:
    """The contacts as a bulleted list in the child's language."""
    return "\n".join(f"• {c.label(locale)}" for c in contacts(region))


def stale(today: date, max_age_days: int = 365) -> list[str]:
    """Entries whose last check is older than ``max_age_days`` (for ``helpline kb check``)."""
    return [
        f"{region}: {c.number} checked {c.checked.isoformat()}"
        for region, entries in _load().items()
        for c in entries
        if (today - c.checked).days > max_age_days
    ]
