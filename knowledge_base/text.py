"""Text analysis shared by the index and the queries: normalising, tokenising, stemming."""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

import snowballstemmer
import yaml

DATA_DIR = Path(__file__).parent / "data"

_TOKEN_RE = re.compile(r"[0-9a-zа-я]+")
_CYRILLIC_RE = re.compile(r"[а-я]")
# Bound the stem cache: queries bring an open-ended vocabulary over a long-running process.
_STEM_CACHE_LIMIT = 200_000


def normalize(text: str) -> str:
    """Lower-case, compose Unicode, and fold "ё" into "е"."""
    return unicodedata.normalize("NFC", text).lower().replace("ё", "е")


def tokenize(text: str) -> list[str]:
    """Split text into normalised word tokens (letters and digits); one-letter tokens are dropped.

    A single digit carries no meaning for us, and single letters are prepositions ("в", "с") or
    pieces of contractions ("don't" -> "don", "t").
    """
    return [tok for tok in _TOKEN_RE.findall(normalize(text)) if len(tok) > 1]


class Stemmer:
    """Snowball stemming (Russian for Cyrillic words, English otherwise) with a shared cache.

    Snowball stemmer objects keep state while stemming, so cache misses take a lock: the bot may
    search from worker threads.
    """

    def __init__(self) -> None:
        self._ru = snowballstemmer.stemmer("russian")
        self._en = snowballstemmer.stemmer("english")
        self._cache: dict[str, str] = {}
        self._lock = threading.Lock()

    def stem(self, token: str) -> str:
        """Return the stem of one normalised token."""
        cached = self._cache.get(token)
        if cached is not None:
            return cached
        with self._lock:
            if len(self._cache) >= _STEM_CACHE_LIMIT:
                self._cache.clear()
            stemmer = self._ru if _CYRILLIC_RE.search(token) else self._en
            result: str = stemmer.stemWord(token) or token
            self._cache[token] = result
        return result

    def stems(self, tokens: Iterable[str]) -> list[str]:
        """Stem each token."""
        return [self.stem(tok) for tok in tokens]


try:  # libyaml's loader when PyYAML was built with it: parsing is several times faster.
    from yaml import CSafeLoader as SafeLoader
except ImportError:  # pragma: no cover - PyYAML without libyaml
    from yaml import SafeLoader  # type: ignore[assignment]


class _StringLoader(SafeLoader):
    """YAML loader that keeps every scalar a string: in word lists "no", "on" or "2" are words."""


_StringLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag == "tag:yaml.org,2002:merge"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_word_data(path: Path) -> Any:
    """Read a reviewed word-list data file, every scalar as a string."""
    with path.open(encoding="utf-8") as fh:
        return yaml.load(fh, Loader=_StringLoader)


@cache
def stopwords() -> frozenset[str]:
    """Words that carry no topic, in both languages (normalised surface forms)."""
    raw: dict[str, list[str]] = load_word_data(DATA_DIR / "stopwords.yaml")
    return frozenset(normalize(word) for words in raw.values() for word in words)


@cache
def default_stemmer() -> Stemmer:
    """The process-wide stemmer (and its cache)."""
    return Stemmer()
