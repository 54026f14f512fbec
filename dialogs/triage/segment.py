"""Words spelt out and run together: "я у ш л а и з д о м а" is joined to "яушлаиздома" by
`features.join_spelled`, and read here as "я ушла из дома".

A joined run that is not itself a known word is split into known words, the split that the
corpus makes likeliest (unigram word frequencies of the shipped corpus, both languages). A run
with no such split stays as it is, so a rare word spelt out ("с у и ц и д н у т ь с я") is not
cut into pieces that happen to be words. Known words are those seen at least twice; a word of
one or two letters only when it is common ("я", "в", "из", "i", "to", "a"), so that a rare scrap
("ть") never makes a split. A piece that reads as the ending of the word before it (the two
joined are a known word with that word's stem: "так и" for "таки", "проиграл и" for
"проиграли") costs extra, so the split prefers the whole word; not after a word of one or two
letters ("он и" is as likely as "они").
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import KeysView
from functools import cache, lru_cache
from pathlib import Path

from .normalize import WORDS_KEPT, stem

CORPUS_DIR = Path(__file__).parent / "data" / "corpus"

MIN_COUNT = 2
MIN_SHORT_COUNT = 20  # a word of one or two letters must be a common one ("из", "to", "я")
MIN_RUN = 5  # shorter joined runs are left as they are
LONGEST = 20  # the longest word tried
ONE_LETTER = frozenset("явскуоаиia")  # Cyrillic "я в с к у о а и", Latin "i" and "a"
ENDING_COST = 4.0  # a piece that is the ending of the word before it (nats, as word costs)
SHORT_EXEMPT = 2  # ... unless that word has at most this many letters
LEADING_ONLY = frozenset({"a"})  # an article never ends a run: "isabella" is no "is a bell a"
_WORD = re.compile(r"[^\W\d_]+")


@cache
def _vocabulary() -> dict[str, float]:
    """Known words with their negative log-probabilities."""
    counts: Counter[str] = Counter()
    for path in sorted(CORPUS_DIR.glob("*.tsv")):
        for raw in path.read_text(encoding="utf-8").splitlines():
            if raw.startswith("#") or raw.count("\t") != 2:
                continue
            counts.update(_WORD.findall(raw.split("\t")[2].casefold().replace("ё", "е")))
    known = {
        w: n for w, n in counts.items()
        if len(w) <= LONGEST
        and (n >= MIN_COUNT if len(w) > 2 else n >= MIN_SHORT_COUNT)
        and (len(w) > 1 or w in ONE_LETTER)
    }
    total = sum(known.values()) or 1
    return {w: -math.log(n / total) for w, n in known.items()}


def warm() -> None:
    """Read the corpus's words now (once per process), not on the first message."""
    _vocabulary()


def vocabulary() -> KeysView[str]:
    """The corpus's known words (a view, not a copy)."""
    return _vocabulary().keys()


def word_cost(word: str) -> float | None:
    """A known word's negative log-probability in the corpus; None for an unknown word."""
    return _vocabulary().get(word)


@cache
def _bigrams() -> dict[str, float]:
    """Letter pairs (with "^" and "$" for a word's edges) and their negative log-probabilities
    among the corpus's known words."""
    counts: Counter[str] = Counter()
    for word in _vocabulary():
        padded = f"^{word}$"
        counts.update(padded[i:i + 2] for i in range(len(padded) - 1))
    total = sum(counts.values()) or 1
    return {pair: -math.log(n / total) for pair, n in counts.items()}


def spelling_cost(word: str) -> float:
    """How unlike the corpus's words a spelling is: the mean cost of its letter pairs (a pair
    never seen costs more than any seen one): "заблочил" is likelier than "зчблочил"."""
    pairs = _bigrams()
    unseen = max(pairs.values(), default=0.0) + 2.0
    padded = f"^{word}$"
    costs = [pairs.get(padded[i:i + 2], unseen) for i in range(len(padded) - 1)]
    return sum(costs) / len(costs)


def known(word: str) -> bool:
    """Whether `word` (lower case, "ё" read as "е") is one of the corpus's known words."""
    return word in _vocabulary()


@lru_cache(maxsize=WORDS_KEPT)
def _ending(before: str, piece: str) -> bool:
    """Whether `piece` reads as an ending of `before`: the two joined have `before`'s stem."""
    joined = before + piece
    return len(before) > SHORT_EXEMPT and joined in _vocabulary() and stem(joined) == stem(before)


@lru_cache(maxsize=4096)
def split_run(run: str) -> str:
    """`run` (letters only, spelt out and joined) as the known words it is made of, space-joined;
    `run` itself when it is a known word, too short, or has no split into known words."""
    word = run.casefold().replace("ё", "е")
    costs = _vocabulary()
    if len(word) < MIN_RUN or word in costs or not word.isalpha():
        return run
    # best[end][start]: the cheapest split of word[:end] whose last word is word[start:end], as
    # (total cost, start of the word before it): a word's cost depends on the word before it.
    best: list[dict[int, tuple[float, int]]] = [{0: (0.0, 0)}] + [{} for _ in word]
    for end in range(1, len(word) + 1):
        for start in range(max(0, end - LONGEST), end):
            piece = word[start:end]
            cost = costs.get(piece)
            if cost is None or not best[start] or (piece in LEADING_ONLY and end == len(word)):
                continue
            best[end][start] = min(
                (total + cost + ENDING_COST * _ending(word[before:start], piece), before)
                for before, (total, _) in best[start].items()
            )
    if not best[-1]:
        return run
    pieces: list[str] = []
    end, start = len(word), min(best[-1], key=lambda s: best[-1][s][0])
    while end > 0:
        pieces.append(run[start:end])
        end, start = start, best[end][start][1]
    return " ".join(reversed(pieces))
