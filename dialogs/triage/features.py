"""What the triage model reads of a message: normalised words, their Cyrillic readings, stems.

The model sees the same normalisation as the lexicons (``normalize.tokenize``: look-alikes,
digits as letters, repeats squeezed, slang expanded; not the readings only the lexicons get,
``lexical``: clock times, quantities, leet slang) plus three things that make a character
n-gram model survive how children type:

- letters spaced out or split by symbols are joined first ("у м е р е т ь", "s.u.i.c.i.d.e",
  "ре*жу"), so they read as the word they spell, and several words spelt out in a row as the
  words they are ("i w a n t t o d i e");
- every all-Latin word also gets its Cyrillic reading, whatever the interface language, so
  Russian typed in Latin letters ("ya ne hochu zhit") meets the Cyrillic training lines;
- long messages are also read in overlapping windows, so one clause in the middle of a long
  text about something else is not diluted by the rest.

Both training (``dialogs.triage.train``) and run time (``dialogs.triage.model``) call
:func:`features`: one definition, so the two can never drift apart.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

from .normalize import WORDS_KEPT, _translit, stem, tokenize
from .segment import known, split_run

# Two letters each followed by a dot: an abbreviation ("u.s.", "e.g.", "т.е.", "т.к."), not a
# word spelt out, unless more letters split by dots follow ("о.н. б.ь.ё.т").
_ABBREVIATION = r"[^\W\d_]\.[^\W\d_]\.(?!\w)(?!\s*[^\W\d_][.\-][^\W\d_])"
# Where a run of single letters may start: not inside a word, nor right after a word and an
# apostrophe ("i'm n o t s a f e": "m" belongs to "i'm"), nor on an abbreviation or the second
# letter of one.
_START = rf"(?<!\w)(?<!\w['’ʼ`´])(?<!\w\.)(?!{_ABBREVIATION})"
_LETTER = r"[^\W\d_]"
_GAP = r"[\s.\-_*·•,/|]"
# Four or more single letters separated by spaces or symbols, the same separator throughout:
# a word spelt out ("у м е р е т ь"; in "т и х и й  д о м" the double space ends a word).
_SPACED = re.compile(rf"{_START}{_LETTER}({_GAP}{{1,3}})(?:{_LETTER}\1){{2,}}{_LETTER}(?!\w)")
# Two or three single letters split by dots, dashes or other symbols (not spaces: "и в", "а я
# в" are ordinary words): "о.н", "m-e", "т*ы"; not an abbreviation ("u.s.", "т.е." stay).
_SPELT_SHORT = re.compile(
    rf"(?<![\w.\-])(?<!\w['’ʼ`´])(?!{_ABBREVIATION})[^\W\d_]([.\-_*·•/|])(?:[^\W\d_]\1)?[^\W\d_](?![\w\-])"
)
# Single letters with separators between them, of one kind or two: letters split by one
# separator and words by a wider one ("о н  с т о и т", "i  w a n t  t o  d i e",
# "i w a n t / t o / d i e", "о.н с.т.о.и.т", "i-w-a-n-t--t-o").
_LETTERS = re.compile(rf"{_START}{_LETTER}(?:{_GAP}{{1,6}}{_LETTER})+(?!\w)")
# A symbol standing for (or between) letters inside a word: "ре*жу", "с_у_и_ц_и_д".
_INNER_SYMBOL = re.compile(r"(?<=[^\W\d_])[*_·•#~^]+(?=[^\W\d_])")
_GAPS = re.compile(r"[\s.\-_*·•,/|]")
_SEPARATORS = re.compile(r"[\s.\-_*·•,/|]+")

WINDOW = 24  # words per window for long messages
STRIDE = 12


@dataclass(frozen=True, slots=True)
class Doc:
    """One piece of text as the model reads it."""

    chars: str  # words and Cyrillic readings, space-joined: for character n-grams
    stems: str  # stems, space-joined: for word n-grams


# "I" and "я" spelt out with the word after them: "i o v e r d o s e d", "я г о л о д а ю".
_PRONOUNS = frozenset({"i", "я"})


def _word(word: str) -> str:
    """Letters spelt out and joined (`word`), as the word or words they spell: a known word as
    it is ("inside", "яблоко"); else several words spelt out in a row, split again into the
    words they are ("я у ш л а и з д о м а" -> "я ушла из дома", `segment`); else a leading "i"
    or "я" as a word of its own ("я г о л о д а ю" -> "я голодаю"); else two or three letters
    that are no word but each a one-letter word as those words ("ая" in "а я  в ш о к е")."""
    folded = word.casefold().replace("ё", "е")
    if known(folded):
        return word
    split = split_run(word)
    if split != word:
        return split
    if folded[0] in _PRONOUNS and len(word) >= 6:
        return f"{word[0]} {word[1:]}"
    if 1 < len(word) <= 3 and all(known(ch) for ch in folded):
        return " ".join(word)
    return word


def _joined(spelt: str) -> str:
    return _word(_GAPS.sub("", spelt))


def _wider(gap: str, narrow: str) -> bool:
    """Whether `gap` ends a word where `narrow` splits letters: it is longer ("  " after " "), or
    holds a separator `narrow` does not ("/" or " " where letters are split by " " or ".")."""
    return gap != narrow and (len(gap) > len(narrow) or not set(gap) <= set(narrow))


def _spelt_words(spelt: str) -> str | None:
    """Letters split by one separator and words by wider ones, as the words they spell
    ("о н  с т о и т" -> "он стоит", "i w a n t / t o / d i e" -> "i want to die"); None when
    the gaps are not of two such kinds (then the rules for one kind of gap read it). The
    narrow separator is the commonest one, and splits letters at least twice and at least as
    often as words are split."""
    gaps = _SEPARATORS.findall(spelt)
    counts = Counter(gaps)
    narrow = min(counts, key=lambda g: (-counts[g], len(g), g))
    wide = len(gaps) - counts[narrow]
    if not wide or counts[narrow] < max(2, wide):
        return None
    if not all(g == narrow or _wider(g, narrow) for g in gaps):
        return None
    letters = _SEPARATORS.split(spelt)
    spelt_words = [letters[0]]
    for gap, letter in zip(gaps, letters[1:], strict=True):
        if gap == narrow:
            spelt_words[-1] += letter
        else:
            spelt_words.append(letter)
    return " ".join(_word(w) for w in spelt_words)


def _letters(run: str) -> str:
    """A run of single letters: words spelt out with wider gaps between words, or else the
    words spelt out with one separator throughout that it holds."""
    spelt = _spelt_words(run)
    return spelt if spelt is not None else _SPACED.sub(lambda m: _joined(m.group()), run)


def join_spelled(text: str) -> str:
    """Join words spelt out with spaces or symbols: "у м е р е т ь" -> "умереть"; several
    words spelt out in a row are split again into the words they are ("я у ш л а и з д о м а"
    -> "я ушла из дома", `segment`), and so are words spelt out with wider gaps between them
    ("i  w a n t  t o  d i e"); else a leading "i" or "я" stays a word of its own ("я г о л о
    д а ю" -> "я голодаю") unless the whole is a known word ("i n s i d e")."""
    text = _LETTERS.sub(lambda m: _letters(m.group()), text)
    text = _SPELT_SHORT.sub(lambda m: _GAPS.sub("", m.group()), text)
    return _INNER_SYMBOL.sub("", text)


@lru_cache(maxsize=WORDS_KEPT)
def _reading(word: str) -> str:
    """The Cyrillic reading of an all-Latin word ("" when there is none)."""
    if not (word.isascii() and word.isalpha() and len(word) > 1):
        return ""
    read = _translit(word)
    return read if read != word else ""


def words(text: str, locale: str) -> list[str]:
    """The normalised words of ``text``."""
    return [t.text for t in tokenize(join_spelled(text), locale)]


def doc(tokens: list[str]) -> Doc:
    """The model's view of a run of normalised words."""
    readings = [r for r in (_reading(w) for w in tokens) if r]
    every = tokens + readings
    return Doc(chars=" ".join(every), stems=" ".join(stem(w) for w in every))


def features(text: str, locale: str) -> list[Doc]:
    """The whole message first, then (for long ones) overlapping windows of it."""
    tokens = words(text, locale)
    docs = [doc(tokens)]
    if len(tokens) > WINDOW:
        for start in range(0, len(tokens) - STRIDE, STRIDE):
            docs.append(doc(tokens[start : start + WINDOW]))
    return docs
