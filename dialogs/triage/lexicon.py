"""Loading and compiling the reviewed lexicon files (``data/lexicon_*.yaml``).

A lexicon entry names a danger signal or a case category, a risk, patterns written in plain
words, and idioms that cancel it. The loader turns every pattern word into the keys that
normalised tokens carry (stems and exact forms, see ``normalize``), so matching a message is
set intersection plus a position check. The pattern syntax is described in
``data/README.md``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dialogs.taxonomy import Risk, Signal, is_category

from .normalize import EXACT, stem

DATA_DIR = Path(__file__).parent / "data"
PREFIX = "*"  # prefix of a prefix key ("выпилит*"), distinct from stems and exact forms
MIN_STEM = 3  # a stem shorter than this is too ambiguous: such words match exactly
MIN_PREFIX = 4
ELLIPSIS = "..."

_ENTRY_FIELDS = frozenset(
    {"id", "signal", "category", "risk", "patterns", "except", "negatable", "gap", "ordered",
     "ask", "whole"}
)
_FILE_FIELDS = frozenset(
    {"language", "defaults", "negation", "fuzzy", "words", "idioms", "entries"}
)


class LexiconError(ValueError):
    """A lexicon file is malformed; the message names the file and the entry."""


@dataclass(frozen=True, slots=True)
class Slot:
    """One position of a pattern: any token carrying one of ``keys``."""

    keys: frozenset[str]
    gap: int  # tokens allowed between the previous slot's token and this one


@dataclass(frozen=True, slots=True)
class Pattern:
    source: str
    slots: tuple[Slot, ...]
    ordered: bool


@dataclass(frozen=True, slots=True)
class Negation:
    """Words that cancel a negatable entry when they stand just before its match."""

    keys: frozenset[str]
    window: int  # how far before the match a negator may stand
    bridge: frozenset[str]  # tokens allowed between the negator and the match
    unless_after: frozenset[str]  # a negator right after one of these does not negate


@dataclass(frozen=True, slots=True)
class Entry:
    id: str
    signal: Signal | None
    category: str
    risk: Risk
    patterns: tuple[Pattern, ...]
    excepts: tuple[Pattern, ...]  # this entry's own idioms
    idioms: tuple[Pattern, ...]  # idioms shared by every entry of the file
    negatable: bool
    negation: Negation
    # A concern without a danger signal that a counsellor would ask about ("I sent him a
    # photo, mum will kill me if she finds out"): the bot asks directly (a check-in) when no
    # layer says danger.
    ask: bool = False
    # The entry fires only where its match is the whole message, emoji aside (round 77: a
    # call for help typed alone, "help", "sos", "помогите", not "help me with maths").
    whole: bool = False


@dataclass(frozen=True, slots=True)
class FuzzyWord:
    """A long, distinctive word that also matches tokens one or two edits away."""

    form: str
    stem: str
    keys: frozenset[str]
    max_edits: int


@dataclass(frozen=True, slots=True)
class Lexicon:
    """All lexicon files compiled together."""

    entries: tuple[Entry, ...]
    index: Mapping[str, tuple[tuple[int, int], ...]]  # key -> (entry, pattern) to verify
    prefixes: tuple[str, ...]
    fuzzy: tuple[FuzzyWord, ...]


def edit_budget(length: int) -> int:
    """Typos allowed in a word of this length: none below 6 letters, two from 9."""
    return 0 if length < 6 else 1 if length < 9 else 2


def fold(word: str) -> str:
    """Lower case and "ё" -> "е", as the normaliser does."""
    return word.strip().lower().replace("ё", "е")


def _collapse(word: str) -> str:
    out: list[str] = []
    for ch in word:
        if not out or out[-1] != ch:
            out.append(ch)
    return "".join(out)


def word_keys(word: str) -> frozenset[str]:
    """Keys of a plain pattern word: its exact form, and its stem unless that is too short."""
    word = fold(word)
    keys = {EXACT + word}
    if any(ch.isalpha() for ch in word):
        for variant in {word, _collapse(word)}:
            stemmed = stem(variant)
            if len(stemmed) >= MIN_STEM:
                keys.add(stemmed)
    return frozenset(keys)


class _FileCompiler:
    """Compiles one lexicon file; errors name the file and the entry."""

    def __init__(self, path: Path, data: Mapping[str, Any]) -> None:
        self.path = path
        self.name = path.name
        unknown = set(data) - _FILE_FIELDS
        if unknown:
            raise LexiconError(f"{self.name}: unknown fields {sorted(unknown)}")
        self.language = str(data.get("language", path.stem.rsplit("_", 1)[-1]))
        defaults = data.get("defaults") or {}
        self.gap = int(defaults.get("gap", 2))
        self.long_gap = int(defaults.get("long_gap", 5))
        self.except_gap = int(defaults.get("except_gap", 1))
        self.groups: dict[str, list[str]] = {
            str(k): [str(x) for x in v] for k, v in (data.get("words") or {}).items()
        }
        self.prefixes: set[str] = set()
        neg = data.get("negation") or {}
        self.negation = Negation(
            keys=self._plain_keys(neg.get("words", [])),
            window=int(neg.get("window", 1)),
            bridge=self._plain_keys(neg.get("bridge", [])),
            unless_after=self._plain_keys(neg.get("unless_after", [])),
        )
        self.idioms = tuple(
            self.pattern(str(p), self.except_gap, True, "idioms") for p in data.get("idioms", [])
        )
        self.fuzzy = tuple(self._fuzzy(str(w)) for w in data.get("fuzzy", []))

    def _plain_keys(self, words: Sequence[Any]) -> frozenset[str]:
        return frozenset(EXACT + fold(str(w)) for w in words)

    def _fuzzy(self, word: str) -> FuzzyWord:
        form = fold(word)
        if len(form) < 6:
            raise LexiconError(f"{self.name}: fuzzy word {word!r} is shorter than 6 letters")
        return FuzzyWord(
            form=form, stem=stem(form), keys=word_keys(form), max_edits=edit_budget(len(form))
        )

    def term_keys(self, term: str, where: str, depth: int = 0) -> frozenset[str]:
        """Keys of one alternative: a word, ``=exact``, ``prefix*``, ``<18-99>`` or ``{group}``."""
        if not term:
            raise LexiconError(f"{self.name}: {where}: empty alternative")
        if term.endswith("?") or term.startswith("#"):
            raise LexiconError(
                f"{self.name}: {where}: {term!r}: optional words are not supported "
                "(write two patterns); a number range is written <18-99>"
            )
        if term.startswith("{") and term.endswith("}"):
            return self._group_keys(term, where, depth)
        if term.startswith("="):
            if term.endswith("*"):
                raise LexiconError(
                    f"{self.name}: {where}: {term!r} is an exact word with a star: write "
                    f"{term[1:]!r} for a prefix or {term[:-1]!r} for the word"
                )
            return frozenset((EXACT + fold(term[1:]),))
        if term.startswith("<") and term.endswith(">"):
            return self._range_keys(term, where)
        if term.endswith("*"):
            prefix = fold(term[:-1])
            if len(prefix) < MIN_PREFIX:
                raise LexiconError(f"{self.name}: {where}: prefix {term!r} is too short")
            self.prefixes.add(prefix)
            return frozenset((PREFIX + prefix,))
        return word_keys(term)

    def _group_keys(self, term: str, where: str, depth: int) -> frozenset[str]:
        """Keys of every member of a ``{group}``."""
        name = term[1:-1]
        if name not in self.groups:
            raise LexiconError(f"{self.name}: {where}: unknown word group {term}")
        if depth > 3:
            raise LexiconError(f"{self.name}: {where}: word groups nest too deep")
        keys: set[str] = set()
        for member in self.groups[name]:
            if " " in member.strip():
                raise LexiconError(f"{self.name}: group {name}: {member!r} has a space")
            keys |= self.term_keys(member.strip(), f"group {name}", depth + 1)
        return frozenset(keys)

    def _range_keys(self, term: str, where: str) -> frozenset[str]:
        """Keys of a number range ``<18-99>``."""
        low, _, high = term[1:-1].partition("-")
        if not (low.isdigit() and high.isdigit() and int(low) <= int(high)):
            raise LexiconError(f"{self.name}: {where}: bad number range {term!r}")
        return frozenset(EXACT + str(n) for n in range(int(low), int(high) + 1))

    def pattern(self, source: str, gap: int, ordered: bool, where: str) -> Pattern:
        slots: list[Slot] = []
        pending: int | None = None
        _check_slots(source, f"{self.name}: {where}")
        for word in source.split():
            if word == ELLIPSIS:
                pending = self.long_gap
                continue
            keys: set[str] = set()
            for term in word.split("|"):
                keys |= self.term_keys(term, f"{where}: {source!r}")
            slots.append(Slot(keys=frozenset(keys), gap=gap if pending is None else pending))
            pending = None
        if not slots:
            raise LexiconError(f"{self.name}: {where}: empty pattern")
        return Pattern(source=source, slots=tuple(slots), ordered=ordered)

    def entry(self, raw: Mapping[str, Any], policy: Mapping[Signal, tuple[str, Risk]]) -> Entry:
        unknown = set(raw) - _ENTRY_FIELDS
        ident = str(raw.get("id", ""))
        if not ident:
            raise LexiconError(f"{self.name}: an entry has no id")
        where = f"entry {ident}"
        if unknown:
            raise LexiconError(f"{self.name}: {where}: unknown fields {sorted(unknown)}")
        signal = Signal(raw["signal"]) if raw.get("signal") else None
        if signal is not None:
            default_category, default_risk = policy[signal]
            category = str(raw.get("category", default_category))
            risk = Risk(raw.get("risk", default_risk))
        else:
            if "category" not in raw or "risk" not in raw:
                raise LexiconError(f"{self.name}: {where}: needs a signal, or category and risk")
            category, risk = str(raw["category"]), Risk(raw["risk"])
        if not is_category(category):
            raise LexiconError(f"{self.name}: {where}: {category!r} is not a taxonomy category")
        gap = int(raw.get("gap", self.gap))
        ordered = bool(raw.get("ordered", True))
        if not raw.get("patterns"):
            raise LexiconError(f"{self.name}: {where}: no patterns")
        patterns = tuple(self.pattern(str(p), gap, ordered, where) for p in raw["patterns"])
        excepts = tuple(
            self.pattern(str(p), self.except_gap, True, where) for p in raw.get("except", [])
        )
        return Entry(
            id=f"{self.language}.{ident}",
            signal=signal,
            category=category,
            risk=risk,
            patterns=patterns,
            excepts=excepts,
            idioms=self.idioms,
            negatable=bool(raw.get("negatable", False)),
            negation=self.negation,
            ask=self._ask(raw, signal, where),
            whole=bool(raw.get("whole", False)),
        )

    def _ask(self, raw: Mapping[str, Any], signal: Signal | None, where: str) -> bool:
        """``ask: true``: a concern the bot asks about; a danger entry alarms instead."""
        ask = bool(raw.get("ask", False))
        if ask and signal is not None:
            raise LexiconError(f"{self.name}: {where}: a danger entry cannot ask (it alarms)")
        return ask


def _check_slots(source: str, where: str) -> None:
    """Refuse the slip that a phrase among one-word alternatives makes: slots are split by
    spaces and ``|`` alternates within a slot only, so ``=not =ate|=ate =only`` means "not",
    then "ate", then "only" - never "not ate" or "ate only". Written so, a term repeats in
    one slot or in the slot beside it; each phrase needs a pattern of its own."""
    slots = source.split()
    for i, word in enumerate(slots):
        terms = word.split("|")
        if len(set(terms)) < len(terms):
            raise LexiconError(f"{where}: {source!r}: {word!r} repeats a term (a phrase "
                               "among alternatives? write each phrase as its own pattern)")
        after = slots[i + 1].split("|") if i + 1 < len(slots) else []
        shared = sorted(set(terms) & set(after) - {ELLIPSIS})
        if shared and (len(terms) > 1 or len(after) > 1):
            raise LexiconError(f"{where}: {source!r}: {shared[0]!r} in two slots side by side "
                               "(a phrase among alternatives? write each phrase as its own "
                               "pattern)")


def _anchor(pattern: Pattern) -> frozenset[str]:
    """The keys to index a pattern under: its slot with the fewest, longest keys."""
    best = min(
        pattern.slots,
        key=lambda s: (len(s.keys), -min(len(k) for k in s.keys)),
    )
    return best.keys


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses a key given twice in one mapping: plain YAML keeps the
    last, so an entry's second ``except:`` would silently drop its first list."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        keys = [self.construct_object(k, deep=deep) for k, _ in node.value]
        twice = sorted({str(k) for k in keys if keys.count(k) > 1})
        if twice:
            raise LexiconError(f"line {node.start_mark.line + 1}: {twice} given twice")
        return super().construct_mapping(node, deep=deep)


def compile_lexicons(paths: Sequence[Path], policy: Mapping[Signal, tuple[str, Risk]]) -> Lexicon:
    """Load, validate and compile lexicon files into one :class:`Lexicon`."""
    entries: list[Entry] = []
    prefixes: set[str] = set()
    fuzzy: list[FuzzyWord] = []
    seen: set[str] = set()
    for path in paths:
        with path.open(encoding="utf-8") as fh:
            data = yaml.load(fh, Loader=_UniqueKeyLoader)  # a SafeLoader
        if not isinstance(data, dict):
            raise LexiconError(f"{path.name}: not a mapping")
        compiler = _FileCompiler(path, data)
        for raw in data.get("entries", []):
            entry = compiler.entry(raw, policy)
            if entry.id in seen:
                raise LexiconError(f"{path.name}: duplicate entry id {entry.id}")
            seen.add(entry.id)
            entries.append(entry)
        prefixes |= compiler.prefixes
        fuzzy.extend(compiler.fuzzy)
    fuzzy = [
        FuzzyWord(
            form=w.form,
            stem=w.stem,
            keys=w.keys | {PREFIX + p for p in prefixes if w.form.startswith(p)},
            max_edits=w.max_edits,
        )
        for w in fuzzy
    ]
    index: dict[str, list[tuple[int, int]]] = {}
    for e, entry in enumerate(entries):
        for p, pattern in enumerate(entry.patterns):
            for key in _anchor(pattern):
                index.setdefault(key, []).append((e, p))
    return Lexicon(
        entries=tuple(entries),
        index={k: tuple(v) for k, v in index.items()},
        prefixes=tuple(sorted(prefixes)),
        fuzzy=tuple(fuzzy),
    )
