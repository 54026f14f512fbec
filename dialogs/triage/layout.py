"""Russian typed with the English keyboard layout: "z ,jkmit yt [jxe ;bnm" is "я больше не хочу
жить". A child who forgot to switch the layout is read as the Russian they meant.

A message with no Cyrillic letter is read back through the ЙЦУКЕН layout and kept so only when
the Russian reading is far likelier than the English one, by letter-pair frequencies learnt from
the shipped corpus (its Russian lines for Russian, its English lines for English), and its words
agree: they read as words the corpus knows in Russian ("z jgznm ct,z ht;e": "я опять себя режу")
and are none it knows in Latin letters. With several known Russian words and no known English
one, a small margin is enough, so short messages are read back too. English, Russian in Latin
letters ("ya hochu umeret"), names, addresses, code and words of three letters or fewer ("ok",
"ytn") stay as they are.

In a message with Cyrillic words ("я опять ct,z ht;e"), each run of Latin words is read back on
its own when its words read as known Russian words and none is a known English word or an
acronym ("скинь в tg", "я в шоке lol" stay).

The mirror: English typed with the Russian layout ("ш вщте цфте ещ дшму" is "i dont want to
live"; a bilingual child in Russia whose keyboard was left on Russian). A message with no Latin
letter is read as the English it spells on the QWERTY layout when its words read as known English
words and none of them is a known Russian word, and the letter pairs agree by the same margins;
in a message with Latin words ("i cant ащкпуе ершы"), a run of Cyrillic words only when every one
of its words reads as English and none is Russian. Russian (known words, slang, names, typos)
stays as it is.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from functools import cache
from pathlib import Path

from . import segment
from .normalize import stem
from .segment import known

CORPUS_DIR = Path(__file__).parent / "data" / "corpus"

_EN = "qwertyuiop[]asdfghjkl;'zxcvbnm,.`"
_RU = "йцукенгшщзхъфывапролджэячсмитьбюё"
_EN_SHIFT = 'QWERTYUIOP{}ASDFGHJKL:"ZXCVBNM<>~'
# On the Russian layout "," and "." are letters (б, ю): its full stop and comma sit where the
# English layout has "/" and "?", its question mark on "&".
_TO_RU = str.maketrans(_EN + _EN_SHIFT + "/?&", _RU + _RU.upper() + ".,?")
# And back: the English a key on the Russian layout stands for ("ю" is ".", "э" is "'").
_TO_EN = str.maketrans(_RU + _RU.upper(), _EN + _EN_SHIFT)

# The Russian reading must beat the English one by this much (mean log-probability per letter
# pair): wrong-layout Russian scores 2.7-4.7 better, English and transliteration 2-5 worse.
MARGIN = 2.0
MIN_LETTERS = 6
# Known words vote too (the corpus's words, `segment`): wrong-layout Russian reads as known
# Russian words and its Latin letters as none; English and transliteration the other way round.
# A message whose words vote Russian (more than WORD_RATIO to one, and a majority of its words)
# needs a margin of WORD_MARGIN only; Latin words among Cyrillic ones, MIXED_MARGIN.
MIN_WORD_LETTERS = 4
WORD_RATIO = 3
WORD_MARGIN = 0.5
MIXED_MARGIN = -1.0
MIN_MIXED_LETTERS = 3
SHORT_MIXED_MARGIN = 1.5  # a run of three letters ("exe" reads "учу")
STRONG_MARGIN = 3.0
MIN_STRONG_LETTERS = 5
STEM_FROM = 5  # words this long count as known when their stem is a known word's
SAMPLE_CHARS = 400_000  # per language: letter-pair frequencies settle long before this

_CYRILLIC = re.compile(r"[а-яё]", re.IGNORECASE)
_LATIN = re.compile(r"[a-z]", re.IGNORECASE)
_NOT_RU = re.compile(r"[^а-яё ]+")
_NOT_EN = re.compile(r"[^a-z' ]+")
_RU_WORD = re.compile(r"[а-я]+")  # in folded text
_LAT_WORD = re.compile(r"[a-z]+")
_RU_WHOLE = re.compile(r"[а-я]+(?:-[а-я]+)*")  # one word, in folded text
_CODE = re.compile(r"[\d\\_=<>{}@#$%^*+|]")  # digits and symbols of code, not of words
_ACRONYM = re.compile(r"\W*[A-Z]{2,4}\W*")
_EDGES = re.compile(r"^[^\w-]+|[^\w-]+$")
_CHUNK = re.compile(r"\S+")
# Keys that are letters on the Russian layout and punctuation on the English one, between two
# letters ("ct,z", "ht;e"): the English reading drops them rather than cut a word in two.
_INNER_KEYS = re.compile(r"(?<=[a-z])[\[\];,.`]+(?=[a-z])")


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
    _russian_stems()


def _fold(text: str) -> str:
    return text.casefold().replace("ё", "е")


def _margin(latin: str) -> float:
    """How much likelier `latin` reads as the Russian it spells on the ЙЦУКЕН layout than as
    English (mean log-probability per letter pair; minus infinity when either has no letter)."""
    ru_read = _NOT_RU.sub(" ", latin.translate(_TO_RU).casefold()).strip()
    en_read = _NOT_EN.sub(" ", _INNER_KEYS.sub("", latin.casefold())).strip()
    if not ru_read or not en_read:
        return -math.inf
    ru, en = _models()
    return ru.score(ru_read) - en.score(en_read)


def _margin_en(cyrillic: str) -> float:
    """How much likelier `cyrillic` reads as the English it spells on the QWERTY layout than as
    the Russian it is (the mirror of :func:`_margin`)."""
    en_read = _NOT_EN.sub(" ", cyrillic.translate(_TO_EN).casefold()).strip()
    ru_read = _NOT_RU.sub(" ", _fold(cyrillic)).strip()
    if not ru_read or not en_read:
        return -math.inf
    ru, en = _models()
    return en.score(en_read) - ru.score(ru_read)


def _english_votes(chunks: list[str]) -> tuple[int, int, int]:
    """Of these Cyrillic words: those that read on the QWERTY layout as a known Latin word of
    three letters or more and are no known Russian word; those that are a known Russian word
    (or a stem of one) and read as no known Latin word; and all words with two letters in a
    row. Short words ("ещ" for "to", "ш" for "i") vote for neither."""
    english = russian = words = 0
    for chunk in chunks:
        folded = _EDGES.sub("", _fold(chunk))
        cyr = [w for w in _RU_WORD.findall(folded) if len(w) > 1]
        if not cyr:
            continue
        words += 1
        reading = [w for w in _LAT_WORD.findall(chunk.translate(_TO_EN).casefold()) if len(w) > 1]
        en_known = any(len(w) >= 3 and known(w) for w in reading)
        ru_known = any(_known_russian(w) for w in cyr)
        english += en_known and not ru_known
        russian += ru_known and not en_known
    return english, russian, words


def _reads_english(chunks: list[str], among_latin: bool) -> bool:
    """Whether these Cyrillic words were meant as English on the QWERTY layout. `among_latin`:
    they stand in a message with Latin words."""
    span = " ".join(chunks)
    letters = len(_CYRILLIC.findall(span))
    if letters < MIN_WORD_LETTERS:
        return False
    english, russian, words = _english_votes(chunks)
    if russian or not english:
        return False
    margin = _margin_en(span)
    if among_latin:
        return 2 * english >= words and margin >= MARGIN
    if margin >= MARGIN and letters >= MIN_LETTERS:
        return True
    return 2 * english >= words and margin >= WORD_MARGIN


@cache
def _russian_stems() -> frozenset[str]:
    """Stems of the corpus's Russian words, so that "школ" and "режет" count as known."""
    return frozenset(stem(w) for w in segment.vocabulary() if len(w) >= STEM_FROM and w[0] >= "а")


def _known_russian(word: str) -> bool:
    return known(word) or (len(word) >= STEM_FROM and stem(word) in _russian_stems())


def _word_votes(chunks: list[str], among_russian: bool) -> tuple[int, int, int]:
    """Of these words (text between spaces): those that read on the ЙЦУКЕН layout as a known
    Russian word of three letters or more and are no known Latin word; those that are a known
    Latin word (English, or Russian in Latin letters) and read as no known Russian word; and
    all words with two letters in a row. A word known both ways ("her", "tv"), short words
    ("yt", "vs": "не", "мы"; English has too many two-letter words) and words with digits or
    symbols inside ("n00ds") vote for neither."""
    russian = english = words = 0
    for chunk in chunks:
        reading = _fold(chunk.translate(_TO_RU))
        lat = [w for w in _LAT_WORD.findall(chunk.casefold()) if len(w) > 1]
        if not lat and not any(len(w) > 1 for w in _RU_WORD.findall(reading)):
            continue
        words += 1
        word = _EDGES.sub("", reading)
        ru_known = (
            len(word) >= 3
            and _RU_WHOLE.fullmatch(word) is not None
            and all(_known_russian(part) for part in word.split("-"))
        )
        # Among Cyrillic words, an acronym ("TLS", "USB") is English, whatever it spells.
        lat_known = any(known(w) for w in lat) or (
            among_russian and _ACRONYM.fullmatch(chunk) is not None
        )
        russian += ru_known and not lat_known
        english += lat_known and not ru_known
    return russian, english, words


def _reads_russian(chunks: list[str], among_russian: bool) -> bool:
    """Whether these words, typed in Latin letters, were meant as Russian on the ЙЦУКЕН layout.
    `among_russian`: they stand in a message with Cyrillic words."""
    span = " ".join(chunks)
    letters = len(_CYRILLIC.findall(span.translate(_TO_RU)))
    if letters < (MIN_MIXED_LETTERS if among_russian else MIN_WORD_LETTERS):
        return False
    russian, english, words = _word_votes(chunks, among_russian)
    margin = _margin(span)
    if among_russian:
        if english:
            return False
        if russian:
            floor = MIXED_MARGIN if letters >= MIN_WORD_LETTERS else SHORT_MIXED_MARGIN
            return (2 * russian >= words and margin >= floor) or margin >= MARGIN
        # No known word (misspelt, "cdjdj" for "свово"): the letter pairs alone, far apart.
        return (
            margin >= STRONG_MARGIN
            and len(_LATIN.findall(span)) >= MIN_STRONG_LETTERS
            and not _CODE.search(span)
        )
    latin = len(_LATIN.findall(span))
    if margin >= MARGIN and latin >= MIN_LETTERS and russian >= max(english, 1):
        return True
    return (
        russian >= 1
        and russian >= WORD_RATIO * english
        and 2 * (russian - english) >= words
        and margin >= WORD_MARGIN
    )


_Run = tuple[int, int, list[str]]


def _runs(text: str, script: re.Pattern[str], other: re.Pattern[str]) -> list[_Run]:
    """Start, end and words of each run of words in a row with letters of `script` and none of
    `other` (Latin words among Cyrillic ones, or Cyrillic among Latin)."""
    runs: list[_Run] = []
    words: list[str] = []
    start = end = 0
    for match in _CHUNK.finditer(text):
        word = match.group()
        if script.search(word) and not other.search(word):
            if not words:
                start = match.start()
            words.append(word)
            end = match.end()
        elif words:
            runs.append((start, end, words))
            words = []
    if words:
        runs.append((start, end, words))
    return runs


def _read_back(
    text: str,
    script: re.Pattern[str],
    other: re.Pattern[str],
    reads: Callable[[list[str], bool], bool],
    table: dict[int, int],
) -> str:
    """`text` read back through `table` where it was typed with the other layout: the whole
    message when it has no letter of `other`, or, among `other`'s words, each run of `script`
    words that `reads` so."""
    if not other.search(text):
        return text.translate(table) if reads(text.split(), False) else text
    out: list[str] = []
    last = 0
    for start, end, words in _runs(text, script, other):
        if reads(words, True):
            out += [text[last:start], text[start:end].translate(table)]
            last = end
    return "".join(out) + text[last:] if out else text


def as_typed(text: str) -> str:
    """`text`, or what it spells when it was typed with the other layout: English typed with
    the Russian layout read as English, and Russian typed with the English layout read as
    Russian; the whole message, or, among words of the other script, each run that reads so."""
    if _CYRILLIC.search(text):
        english = _read_back(text, _CYRILLIC, _LATIN, _reads_english, _TO_EN)
        if english != text:
            return english
    if not _LATIN.search(text):
        return text
    return _read_back(text, _LATIN, _CYRILLIC, _reads_russian, _TO_RU)


__all__ = ["as_typed", "warm"]
