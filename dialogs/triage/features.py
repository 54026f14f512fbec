"""What the triage model reads of a message: normalised words, their Cyrillic readings, stems.

The model sees the same normalisation as the lexicons (``normalize.tokenize``: look-alikes,
digits as letters, repeats squeezed, slang expanded) plus three things that make a character
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
from dataclasses import dataclass
from functools import lru_cache

from .normalize import _translit, stem, tokenize
from .segment import split_run

# Four or more single letters separated by spaces or symbols, the same separator throughout:
# a word spelt out ("у м е р е т ь"; in "т и х и й  д о м" the double space ends a word).
_SPACED = re.compile(r"(?<!\w)[^\W\d_]([\s.\-_*·•,/|]{1,3})(?:[^\W\d_]\1){2,}[^\W\d_](?!\w)")
# Two or three single letters split by dots, dashes or other symbols (not spaces: "и в", "а я
# в" are ordinary words): "о.н", "m-e", "т*ы".
_SPELT_SHORT = re.compile(r"(?<![\w.\-])[^\W\d_]([.\-_*·•/|])(?:[^\W\d_]\1)?[^\W\d_](?![\w\-])")
# A symbol standing for (or between) letters inside a word: "ре*жу", "с_у_и_ц_и_д".
_INNER_SYMBOL = re.compile(r"(?<=[^\W\d_])[*_·•#~^]+(?=[^\W\d_])")
_GAPS = re.compile(r"[\s.\-_*·•,/|]")

WINDOW = 24  # words per window for long messages
STRIDE = 12


@dataclass(frozen=True, slots=True)
class Doc:
    """One piece of text as the model reads it."""

    chars: str  # words and Cyrillic readings, space-joined: for character n-grams
    stems: str  # stems, space-joined: for word n-grams


# "I" and "я" spelt out with the word after them: "i o v e r d o s e d", "я г о л о д а ю".
_PRONOUNS = frozenset({"i", "я"})


def _joined(spelt: str) -> str:
    word = _GAPS.sub("", spelt)
    split = split_run(word)  # several words spelt out in a row: "я у ш л а и з д о м а"
    if split != word:
        return split
    if word[0].casefold() in _PRONOUNS and len(word) >= 6:
        return f"{word[0]} {word[1:]}"
    return word


def join_spelled(text: str) -> str:
    """Join words spelt out with spaces or symbols: "у м е р е т ь" -> "умереть"; several
    words spelt out in a row are split again into the words they are ("я у ш л а и з д о м а"
    -> "я ушла из дома", `segment`); else a leading "i" or "я" stays a word of its own
    ("я г о л о д а ю" -> "я голодаю")."""
    text = _SPACED.sub(lambda m: _joined(m.group()), text)
    text = _SPELT_SHORT.sub(lambda m: _GAPS.sub("", m.group()), text)
    return _INNER_SYMBOL.sub("", text)


@lru_cache(maxsize=65536)
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
