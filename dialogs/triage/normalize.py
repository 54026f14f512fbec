"""The normalisation pipeline: from a child's message to tokens that lexicons can match.

Steps, in order (the tables are in ``data/normalize.yaml``):

1. Unicode NFKC; zero-width characters, variation selectors, skin tones and stray combining
   marks (stress marks) are dropped.
2. English contractions are expanded ("don't" -> "do not", "he'll" -> "he will").
3. The text is cut into tokens: words (letters, digits, "@", "$") and single emoji. All other
   punctuation separates tokens and is dropped.
4. Each word is read in its script. A word mixing Cyrillic and Latin letters ("yбить",
   "xoчу") is read both ways through the look-alike tables; digits and symbols next to a
   letter are read as letters ("су1цид", "k1ll", "р3жу"), every reading being kept.
5. Lower case, "ё" -> "е".
6. Repeated letters: runs of three or more become one ("хочууу" -> "хочу") and also two
   ("kiiill" -> "kiill"); a third form collapses every double ("kill" -> "kil") so that
   "killll" and "kill" meet.
7. Slang and shorthand are replaced ("kms" -> "kill myself", "wanna" -> "want to").
8. In Russian, an all-Latin word is also read as transliterated Russian ("hochu" -> "хочу").
9. Every form is stemmed (Snowball, Russian or English by script). A token's keys are its
   stems plus its exact forms prefixed with "=".
"""

from __future__ import annotations

import itertools
import math
import re
import threading
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import snowballstemmer
import yaml

_DATA = Path(__file__).parent / "data" / "normalize.yaml"

EXACT = "="  # prefix of an exact-form key, so that forms and stems never collide
_MAX_READINGS = 8  # cap on the readings of one word with several ambiguous digits
# What a process keeps of the words it has read, each cache by its entries' weight. A help line
# reads new words for ever (names, slang, every typo), so these caches fill: at 65,536 entries
# each they grew the process by about 156 MB (`bench/triage_memory.py`), more than the budget
# left beside aiogram; at these sizes by about 23 MB, the median message 0.79 -> 1.04 ms on
# the evaluation sets' words read once. A word's token (two sets of forms and keys, about 2 KB)
# is kept for fewer words than a stem or a reading (a short string).
TOKENS_KEPT = 2048
WORDS_KEPT = 8192


@dataclass(frozen=True, slots=True)
class Token:
    """One normalised token: its main form, all its forms, and the keys lexicons match."""

    text: str
    forms: frozenset[str]
    keys: frozenset[str]


@dataclass(frozen=True, slots=True)
class _Tables:
    lat_to_cyr: Mapping[str, str]
    cyr_to_lat: Mapping[str, str]
    digits_cyr: Mapping[str, tuple[str, ...]]
    digits_lat: Mapping[str, tuple[str, ...]]
    whole_contractions: Mapping[str, str]
    suffix_contractions: Mapping[str, str]
    slang: Mapping[str, tuple[str, ...]]
    slang_pairs: Mapping[tuple[str, str], tuple[str, ...]]
    translit: tuple[tuple[str, str], ...]


def _str_map(raw: Any, name: str) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise ValueError(f"normalize.yaml: {name} must be a mapping")
    return {str(k): str(v) for k, v in raw.items()}


def _list_map(raw: Any, name: str) -> dict[str, tuple[str, ...]]:
    if not isinstance(raw, dict):
        raise ValueError(f"normalize.yaml: {name} must be a mapping")
    return {str(k): tuple(str(x) for x in v) for k, v in raw.items()}


@cache
def _tables() -> _Tables:
    with _DATA.open(encoding="utf-8") as fh:
        data: dict[str, Any] = yaml.safe_load(fh)
    slang: dict[str, tuple[str, ...]] = {}
    pairs: dict[tuple[str, str], tuple[str, ...]] = {}
    for key, value in _str_map(data["slang"], "slang").items():
        words = key.split()
        if len(words) == 1:
            slang[words[0]] = tuple(value.split())
        elif len(words) == 2:
            pairs[(words[0], words[1])] = tuple(value.split())
        else:
            raise ValueError(f"normalize.yaml: slang key {key!r} has more than two words")
    translit = _str_map(data["translit"], "translit")
    contractions = data["contractions"]
    return _Tables(
        lat_to_cyr=_str_map(data["latin_to_cyrillic"], "latin_to_cyrillic"),
        cyr_to_lat=_str_map(data["cyrillic_to_latin"], "cyrillic_to_latin"),
        digits_cyr=_list_map(data["digits_cyrillic"], "digits_cyrillic"),
        digits_lat=_list_map(data["digits_latin"], "digits_latin"),
        whole_contractions=_str_map(contractions["whole"], "contractions.whole"),
        suffix_contractions=_str_map(contractions["suffix"], "contractions.suffix"),
        slang=slang,
        slang_pairs=pairs,
        translit=tuple(sorted(translit.items(), key=lambda kv: -len(kv[0]))),
    )


# --- characters --------------------------------------------------------------------------

_DROP = dict.fromkeys(
    [0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF, 0x00AD, 0xFE0E, 0xFE0F, *range(0x1F3FB, 0x1F400)]
)
_EMOJI = (
    "\u2190-\u21ff\u2300-\u23ff\u2460-\u24ff\u25a0-\u27bf\u2900-\u297f\u2b00-\u2bff"
    "\U0001f000-\U0001faff"
)
_TOKEN_RE = re.compile(rf"(?P<emoji>[{_EMOJI}])|(?P<word>(?:[^\W_]|[@$])+)")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u02bc": "'", "`": "'", "\u00b4": "'"})
_CLOCK = re.compile(r"(?:[1-9]|1[0-2])(?:am|pm)")
_QUANTITY = re.compile(
    r"(\d{1,4})(kg|kgs|kilos|lbs|lb|mg|ml|km|кг|мг|мл|км|кило"
    r"|й|я|е|ий|ый|ой|го|ого|th|st|nd|rd)")  # and ordinals: "3й день", "5th day"
_RUN3 = re.compile(r"(.)\1{2,}")
_RUN2 = re.compile(r"(.)\1+")


def _is_cyr(ch: str) -> bool:
    return "\u0400" <= ch <= "\u04ff"


def _is_lat(ch: str) -> bool:
    return ("a" <= ch <= "z") or ("A" <= ch <= "Z") or ("\u00c0" <= ch <= "\u024f")


def _is_letter(ch: str) -> bool:
    return ch.isalpha()


def _clean(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).translate(_DROP).translate(_APOSTROPHES)
    if any(unicodedata.combining(ch) for ch in text):
        text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return text


@cache
def _contraction_res() -> tuple[tuple[re.Pattern[str], str], ...]:
    tables = _tables()
    rules: list[tuple[re.Pattern[str], str]] = []
    for word, repl in tables.whole_contractions.items():
        rules.append((re.compile(rf"\b{re.escape(word)}\b", re.IGNORECASE), f" {repl} "))
    for suffix, repl in sorted(tables.suffix_contractions.items(), key=lambda kv: -len(kv[0])):
        rules.append((re.compile(rf"(?<=[A-Za-z]){re.escape(suffix)}\b", re.IGNORECASE), repl))
    return tuple(rules)


def _expand_contractions(text: str) -> str:
    if "'" not in text:
        return text
    for pattern, repl in _contraction_res():
        text = pattern.sub(repl, text)
    return text.replace("'", "")


# --- words -------------------------------------------------------------------------------


def _readings(word: str, to_cyr: bool) -> list[str]:
    """Spellings of ``word`` read in one script: look-alikes and digits replaced."""
    tables = _tables()
    glyphs = tables.lat_to_cyr if to_cyr else tables.cyr_to_lat
    digits = tables.digits_cyr if to_cyr else tables.digits_lat
    foreign = _is_lat if to_cyr else _is_cyr
    options: list[tuple[str, ...]] = []
    leet = _leet_positions(word, digits)
    for i, ch in enumerate(word):
        if foreign(ch) and ch in glyphs:
            options.append((glyphs[ch],))
        elif i in leet:
            options.append(digits[ch])
        else:
            options.append((ch,))
    readings = ["".join(p) for p in itertools.islice(itertools.product(*options), _MAX_READINGS)]
    return readings + [r for r in _uniform(word, leet, digits, options) if r not in readings]


def _uniform(word: str, leet: frozenset[int], digits: Mapping[str, tuple[str, ...]],
             options: list[tuple[str, ...]]) -> list[str]:
    """The readings where each digit stands for the same letter throughout the word: a word
    with five ambiguous digits has 32 readings, and the first `_MAX_READINGS` never reach
    "ф3н4з3п4м4" read as "феназепама" (every 3 an "е", every 4 an "а")."""
    if math.prod(len(opts) for opts in options) <= _MAX_READINGS:
        return []  # the first readings are all of them
    used = sorted({word[i] for i in leet if len(digits[word[i]]) > 1})
    readings = []
    for choice in itertools.product(*(digits[d] for d in used)):
        letter = dict(zip(used, choice, strict=True))
        readings.append("".join(
            letter.get(ch, opts[0]) if i in leet else opts[0]
            for i, (ch, opts) in enumerate(zip(word, options, strict=True))))
    return readings


def _leet_positions(word: str, digits: Mapping[str, tuple[str, ...]]) -> frozenset[int]:
    """Where digits and symbols stand for letters. A digit next to a letter always ("су1цид",
    "k1ll"); a whole run of them where the word is leet throughout: the run is inside the word
    or ends it after a letter, or the word has more than one ("cu771ng", "g37", "50m30n3" ->
    "someone"). A number with letters after it keeps its other digits ("10th", "30yo",
    "1930s", "2020г"), and a number alone is never read ("70", "15")."""
    runs: list[tuple[int, int, bool]] = []
    start = 0
    while start < len(word):
        end = start
        while end < len(word) and word[end] in digits:
            end += 1
        before = start > 0 and _is_letter(word[start - 1])
        after = end < len(word) and _is_letter(word[end])
        if end > start and (before or after):
            runs.append((start, end, before))
        start = end + 1 if end == start else end
    found: set[int] = set()
    for start, end, before in runs:
        if len(runs) > 1 or before:
            found.update(range(start, end))
        else:  # a number with letters after it: only the digit next to them
            found.add(end - 1)
    return frozenset(found)


def _fold(text: str) -> str:
    return text.lower().replace("ё", "е")


def _runs(form: str) -> tuple[str, str, str]:
    """The three repeated-letter variants: 3+ -> 1, 3+ -> 2, 2+ -> 1."""
    return _RUN3.sub(r"\1", form), _RUN3.sub(r"\1\1", form), _RUN2.sub(r"\1", form)


@lru_cache(maxsize=TOKENS_KEPT)
def word_forms(word: str, prefer_cyr: bool) -> tuple[str, frozenset[str]]:
    """The main form and all forms of one raw word (steps 4-6 of the pipeline)."""
    cyr = sum(1 for ch in word if _is_cyr(ch))
    lat = sum(1 for ch in word if _is_lat(ch))
    if cyr and lat:
        main_cyr = cyr > lat or (cyr == lat and prefer_cyr)
        first = _readings(word, to_cyr=main_cyr)
        second = _readings(word, to_cyr=not main_cyr)
        readings = first + second
    elif cyr or lat:
        readings = _readings(word, to_cyr=bool(cyr))
    else:
        readings = [word]
    forms: set[str] = set()
    main = ""
    for reading in readings:
        variants = _runs(_fold(reading))
        if not main:
            main = variants[0]
        forms.update(variants)
    return main, frozenset(forms)


# --- stems -------------------------------------------------------------------------------

_STEM_LOCK = threading.Lock()  # Snowball stemmer objects keep state between calls


@cache
def _stemmers() -> tuple[Any, Any]:
    return snowballstemmer.stemmer("russian"), snowballstemmer.stemmer("english")


@lru_cache(maxsize=WORDS_KEPT)
def stem(form: str) -> str:
    """The Snowball stem of one lower-case form: Russian for Cyrillic, English for Latin."""
    ru, en = _stemmers()
    if any(_is_cyr(ch) for ch in form):
        stemmer = ru
    elif any(_is_lat(ch) for ch in form):
        stemmer = en
    else:
        return form
    with _STEM_LOCK:
        return str(stemmer.stemWord(form))


def keys_of(forms: Iterable[str]) -> frozenset[str]:
    """Exact-form keys and stems of a set of forms."""
    keys: set[str] = set()
    for form in forms:
        keys.add(EXACT + form)
        if any(ch.isalpha() for ch in form):
            keys.add(stem(form))
    return frozenset(keys)


_Y_AFTER_VOWEL = re.compile(r"(?<=[аеиоуыэюя])ы")


@lru_cache(maxsize=WORDS_KEPT)
def _translit(form: str) -> str:
    out: list[str] = []
    i = 0
    pairs = _tables().translit
    while i < len(form):
        for src, dst in pairs:
            if form.startswith(src, i):
                out.append(dst)
                i += len(src)
                break
        else:
            out.append(form[i])
            i += 1
    return "".join(out)


def _as_russian(form: str) -> str:
    """The lexicons' reading of an all-Latin word: the transliteration, with "y" after a vowel
    read as "й" ("moy" -> "мой", "seychas" -> "сейчас"). The model keeps `_translit` alone
    (its features were trained so)."""
    return _Y_AFTER_VOWEL.sub("й", _translit(form))


@lru_cache(maxsize=TOKENS_KEPT)
def _token(main: str, forms: frozenset[str], ru: bool) -> Token:
    if ru and main.isascii() and main.isalpha() and len(main) > 1:
        read = {_as_russian(f) for f in forms}
        # Transliteration drops the soft sign: "zhit" is "жить" as often as "жит".
        forms = forms | read | {r + "ь" for r in read if r.endswith(("т", "л", "н"))}
    return Token(text=main, forms=forms, keys=keys_of(forms))


def _plain(word: str, ru: bool) -> Token:
    main, forms = word_forms(word, ru)
    return _token(main, forms, ru)


# --- the pipeline ------------------------------------------------------------------------


# One-letter Russian prepositions typed in Latin letters, as the lexicons read them in a
# Russian locale (round 76: "zastryala v lifte"); the model reads them as trained, and
# longer words are transliterated for both (`_token`).
_ONE_LETTER_WORDS = {"v": "в", "s": "с", "k": "к", "u": "у"}


def prefers_cyrillic(locale: str) -> bool:
    """Whether a locale reads ambiguous words as Cyrillic (Russian and its neighbours)."""
    return locale.lower().startswith(("ru", "uk", "be", "kk"))


def tokenize(text: str, locale: str, *, lexical: bool = False) -> tuple[Token, ...]:
    """Normalise ``text`` into tokens (the whole pipeline). ``lexical``: as the lexicons and
    the frames read it (round 72), where a clock time ("3am") stays a time instead of leet
    for "eam", a quantity is its number and unit ("8kg": "8", "kg"; "3й": "3", "й"), and a
    leet word is slang by any of its letter-for-letter readings ("щ4с" is "щас", so
    "сейчас"); the model reads the text as it was trained to."""
    ru = prefers_cyrillic(locale)
    cleaned = _expand_contractions(_clean(text))
    raw: list[Token] = []
    for match in _TOKEN_RE.finditer(cleaned):
        piece = match.group()
        if match.lastgroup == "emoji" or (lexical and _CLOCK.fullmatch(piece)):
            raw.append(Token(text=piece, forms=frozenset((piece,)), keys=keys_of((piece,))))
        elif lexical and (quantity := _QUANTITY.fullmatch(piece)):
            # "8kg" is "8 kg" (round 73), not leet for "bkg"
            raw.extend(_plain(part, ru) for part in quantity.groups())
        elif lexical and ru and (cyrillic := _ONE_LETTER_WORDS.get(piece.lower())):
            # Russian in Latin letters: "v lifte" is "в лифте" (round 76)
            raw.append(_with_form(_plain(piece, ru), cyrillic))
        else:
            raw.append(_plain(piece, ru))
    return tuple(_apply_slang(raw, ru, lexical))


def _with_form(token: Token, form: str) -> Token:
    forms = token.forms | {form}
    return Token(text=token.text, forms=forms, keys=keys_of(forms))


def _apply_slang(tokens: list[Token], ru: bool, lexical: bool) -> list[Token]:
    tables = _tables()
    out: list[Token] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if i + 1 < len(tokens):
            joined = tables.slang_pairs.get((tok.text, tokens[i + 1].text))
            if joined is not None:
                out.extend(_plain(w, ru) for w in joined)
                i += 2
                continue
        repl = tables.slang.get(tok.text)
        if repl is None and lexical and len(tok.forms) > 1:
            # a leet word read as slang by another of its readings ("щ4с": "щчс", "щас"),
            # letter for letter (not by a run collapsed: "p1lls" is not "pls")
            repl = next((tables.slang[f] for f in sorted(tok.forms)
                         if len(f) == len(tok.text) and f in tables.slang), None)
        if repl is not None and len(repl) == 1 and tok.text.isdigit():
            # "4" reads as "for" ("4 u") and still counts as four (`<2-90> =дня`).
            word = _plain(repl[0], ru)
            out.append(Token(word.text, word.forms | tok.forms, word.keys | tok.keys))
        elif repl is not None:
            out.extend(_plain(w, ru) for w in repl)
        else:
            out.append(tok)
        i += 1
    return out
