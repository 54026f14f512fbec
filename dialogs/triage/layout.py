"""Russian typed with the English keyboard layout: "z ,jkmit yt [jxe ;bnm" is "я больше не хочу
жить". A child who forgot to switch the layout is read as the Russian they meant.

A message with no Cyrillic letter is read back through the ЙЦУКЕН layout and kept so only when
the Russian reading is far likelier than the English one, by letter-pair frequencies learnt from
the shipped corpus (its Russian lines for Russian, its English lines for English): English,
Russian in Latin letters ("ya hochu umeret") and short words stay as they are.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from functools import cache
from pathlib import Path

CORPUS_DIR = Path(__file__).parent / "data" / "corpus"

_EN = "qwertyuiop[]asdfghjkl;'zxcvbnm,.`"
_RU = "йцукенгшщзхъфывапролджэячсмитьбюё"
_EN_SHIFT = 'QWERTYUIOP{}ASDFGHJKL:"ZXCVBNM<>~'
# On the Russian layout "," and "." are letters (б, ю): its full stop and comma sit where the
# English layout has "/" and "?", its question mark on "&".
_TO_RU = str.maketrans(_EN + _EN_SHIFT + "/?&", _RU + _RU.upper() + ".,?")

# The Russian reading must beat the English one by this much (mean log-probability per letter
# pair): wrong-layout Russian scores 2.7-4.7 better, English and transliteration 2-5 worse.
MARGIN = 2.0
MIN_LETTERS = 6
SAMPLE_CHARS = 400_000  # per language: letter-pair frequencies settle long before this

_CYRILLIC = re.compile(r"[а-яё]", re.IGNORECASE)
_LATIN = re.compile(r"[a-z]", re.IGNORECASE)
_NOT_RU = re.compile(r"[^а-яё ]+")
_NOT_EN = re.compile(r"[^a-z' ]+")


class _Pairs:
    """Letter-pair log-probabilities of one language (add-half smoothing)."""

    def __init__(self, counts: Counter[str]) -> None:
        total = sum(counts.values())
        denominator = total + 0.5 * (len(counts) + 1)
        self.logp = {pair: math.log((n + 0.5) / denominator) for pair, n in counts.items()}
        self.unseen = math.log(0.5 / denominator)

    def score(self, text: str) -> float:
        padded = f" {' '.join(text.split())} "
        pairs = [padded[i : i + 2] for i in range(len(padded) - 1)]
        return sum(self.logp.get(p, self.unseen) for p in pairs) / len(pairs)


def _sample(locale: str, keep: re.Pattern[str]) -> Counter[str]:
    counts: Counter[str] = Counter()
    size = 0
    for path in sorted(CORPUS_DIR.glob(f"{locale}_*.tsv")):
        for raw in path.read_text(encoding="utf-8").splitlines():
            if raw.startswith("#") or raw.count("\t") != 2:
                continue
            text = f" {' '.join(keep.sub(' ', raw.split(chr(9))[2].casefold()).split())} "
            counts.update(text[i : i + 2] for i in range(len(text) - 1))
            size += len(text)
            if size >= SAMPLE_CHARS:
                return counts
    return counts


@cache
def _models() -> tuple[_Pairs, _Pairs]:
    return _Pairs(_sample("ru", _NOT_RU)), _Pairs(_sample("en", _NOT_EN))


def warm() -> None:
    """Build the letter-pair tables now (once per process), not on the first message."""
    _models()


def as_typed(text: str) -> str:
    """`text`, or the Russian it spells when it was typed with the English layout."""
    if _CYRILLIC.search(text) or len(_LATIN.findall(text)) < MIN_LETTERS:
        return text
    russian = text.translate(_TO_RU)
    ru_read = _NOT_RU.sub(" ", russian.casefold()).strip()
    en_read = _NOT_EN.sub(" ", text.casefold()).strip()
    if not ru_read or not en_read:
        return text
    ru, en = _models()
    return russian if ru.score(ru_read) - en.score(en_read) >= MARGIN else text


__all__ = ["as_typed", "warm"]
