"""Slang and synonym table (from data/synonyms.yaml), matched on stems of whole phrases."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from knowledge_base.text import (
    DATA_DIR,
    Stemmer,
    default_stemmer,
    load_word_data,
    stopwords,
    tokenize,
)

DEFAULT_PATH = DATA_DIR / "synonyms.yaml"

Phrase = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Synonyms:
    """Maps a phrase (as stems) to the phrases a query should also search for.

    Keys keep stop words ("не хочу жить", "kill myself"); alternatives drop them, because
    stop words are not indexed.
    """

    table: dict[Phrase, tuple[Phrase, ...]]
    max_len: int
    key_stems: frozenset[str]
    words: frozenset[str]  # surface words of all keys: candidates for typo repair

    @classmethod
    def load(cls, path: Path | None = None, stemmer: Stemmer | None = None) -> Synonyms:
        """Read and stem the reviewed synonym file."""
        raw: dict[str, Any] = load_word_data(path or DEFAULT_PATH) or {}
        return cls.build(raw.get("groups") or [], raw.get("expand") or {}, stemmer)

    @classmethod
    def build(
        cls,
        groups: Sequence[Sequence[str]],
        expand: dict[str, Sequence[str]],
        stemmer: Stemmer | None = None,
    ) -> Synonyms:
        """Build the table from symmetric groups and one-way expansions."""
        stem = stemmer or default_stemmer()
        stop = stopwords()

        def key_of(phrase: str) -> Phrase:
            return tuple(stem.stems(tokenize(str(phrase))))

        def alt_of(phrase: str) -> Phrase:
            return tuple(stem.stems(t for t in tokenize(str(phrase)) if t not in stop))

        collected: dict[Phrase, list[Phrase]] = {}
        words: set[str] = set()

        def add(key: Phrase, alts: Sequence[Phrase]) -> None:
            if not key:
                return
            bucket = collected.setdefault(key, [])
            for alt in alts:
                if alt and alt != key and alt not in bucket:
                    bucket.append(alt)

        for group in groups:
            members = [str(m) for m in group]
            words.update(t for m in members for t in tokenize(m))
            alts = [alt_of(m) for m in members]
            for member in members:
                add(key_of(member), alts)
        for key, values in expand.items():
            words.update(tokenize(str(key)))
            add(key_of(key), [alt_of(v) for v in values])

        table = {key: tuple(alts) for key, alts in collected.items() if alts}
        return cls(
            table=table,
            max_len=max((len(k) for k in table), default=0),
            key_stems=frozenset(s for k in table for s in k),
            words=frozenset(words),
        )

    def match(self, stems: Sequence[str], start: int) -> tuple[int, tuple[Phrase, ...]] | None:
        """The longest key starting at `start`: (its length in words, its alternatives)."""
        longest = min(self.max_len, len(stems) - start)
        for length in range(longest, 0, -1):
            alts = self.table.get(tuple(stems[start : start + length]))
            if alts is not None:
                return length, alts
        return None
