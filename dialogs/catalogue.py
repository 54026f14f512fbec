"""One catalogue of user-facing texts in Russian and English, read from a reviewed data file."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml

LOCALES = ("ru", "en")
_DATA = Path(__file__).parent / "data" / "texts.yaml"


def normalise_locale(value: str | None, default: str = "ru") -> str:
    """Map a platform language code ("ru-RU", "en", "uk", None) to one of our locales."""
    if not value:
        return default
    code = value.lower().split("-")[0].split("_")[0]
    if code in LOCALES:
        return code
    # Children writing from Belarus, Kazakhstan, Kyrgyzstan mostly read Russian.
    if code in {"be", "kk", "ky", "uk"}:
        return "ru"
    return "en"


class Catalogue:
    """`t(key, locale, **values)`; a missing key or locale is a bug and raises at load or call."""

    def __init__(self, path: Path = _DATA) -> None:
        with path.open(encoding="utf-8") as fh:
            raw: dict[str, dict[str, str]] = yaml.safe_load(fh)
        for key, entry in raw.items():
            missing = [loc for loc in LOCALES if loc not in entry]
            if missing:
                raise ValueError(f"{path}: text {key!r} lacks {', '.join(missing)}")
        self._texts = raw

    def has(self, key: str) -> bool:
        return key in self._texts

    def t(self, key: str, locale: str, *, parent: bool = False, **values: object) -> str:
        if parent and f"{key}.parent" in self._texts:
            key = f"{key}.parent"
        text = self._texts[key][locale if locale in LOCALES else "en"]
        return text.format(**values) if values else text

    def keys(self) -> list[str]:
        return list(self._texts)


@cache
def default_catalogue() -> Catalogue:
    return Catalogue()
