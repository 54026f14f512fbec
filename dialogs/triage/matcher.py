"""Matching compiled lexicon entries against normalised tokens."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache

from rapidfuzz.distance import Levenshtein

from .lexicon import PREFIX, Entry, Lexicon, Pattern, edit_budget
from .normalize import EXACT, TOKENS_KEPT, Token, stem

Span = tuple[int, ...]  # token positions, ascending

_MIN_FUZZY_LEN = 5
_FIRED, _CANCELLED, _NONE = "fired", "cancelled", "none"
_MAX_SPANS = 256  # placements of one pattern examined per message


class Matcher:
    """Finds the lexicon entries that fire on a token sequence."""

    def __init__(self, lexicon: Lexicon) -> None:
        self.lexicon = lexicon
        self.expand = lru_cache(maxsize=TOKENS_KEPT)(self._expand)

    def _expand(self, token: Token) -> Token:
        """Add prefix keys and fuzzy keys (typos of long distinctive words) to a token."""
        extra: set[str] = set()
        for prefix in self.lexicon.prefixes:
            if any(form.startswith(prefix) for form in token.forms):
                extra.add(PREFIX + prefix)
        if len(token.text) >= _MIN_FUZZY_LEN:
            for word in self.lexicon.fuzzy:
                # Tried unless the token is the word itself: a typo sharing only the word's
                # stem ("swalowed": "swalow") still lacks its exact form (round 77).
                if EXACT + word.form in token.keys:
                    continue
                if self._close(token, word.form, word.stem, word.max_edits):
                    extra |= word.keys
        if not extra:
            return token
        return Token(text=token.text, forms=token.forms, keys=token.keys | extra)

    @staticmethod
    def _close(token: Token, form: str, word_stem: str, max_edits: int) -> bool:
        # Stems are shorter than words, so they get their own (smaller) edit budget:
        # "вышел" is two edits from the stem "выпил" of "выпилиться", and must not match.
        stem_edits = edit_budget(len(word_stem))
        for candidate in token.forms:
            if not candidate or candidate[0] != form[0]:
                continue
            if abs(len(candidate) - len(form)) > max_edits + 3:
                continue
            if Levenshtein.distance(candidate, form, score_cutoff=max_edits) <= max_edits:
                return True
            cand_stem = stem(candidate)
            if (
                stem_edits
                and Levenshtein.distance(cand_stem, word_stem, score_cutoff=stem_edits)
                <= stem_edits
            ):
                return True
        return False

    def fired(self, tokens: Sequence[Token]) -> list[Entry]:
        """The entries with at least one match that no idiom, exception or negation cancels."""
        return self.fired_and_cancelled(tokens)[0]

    def fired_and_cancelled(
        self, tokens: Sequence[Token], *, whole: bool = True
    ) -> tuple[list[Entry], list[Entry]]:
        """The entries that fired, and those whose every match an idiom, an exception or a
        negation cancelled ("умираю со смеху", "i'm not going to kill myself"). ``whole``:
        whether the entries that need the whole message may fire (not on a bot command:
        "/help" is no call for help)."""
        tokens = [self.expand(t) for t in tokens]
        where = Positions(tokens)
        present = where.present
        candidates: dict[int, set[int]] = {}
        index = self.lexicon.index
        for key in present:
            for e, p in index.get(key, ()):
                candidates.setdefault(e, set()).add(p)
        result: list[Entry] = []
        cancelled: list[Entry] = []
        for e in sorted(candidates):
            entry = self.lexicon.entries[e]
            if entry.whole and not whole:
                continue
            outcomes = set()
            for p in sorted(candidates[e]):
                outcome = self._entry_matches(entry, entry.patterns[p], tokens, where)
                outcomes.add(outcome)
                if outcome is _FIRED:
                    break
            if _FIRED in outcomes:
                result.append(entry)
            elif _CANCELLED in outcomes:
                cancelled.append(entry)
        return result, cancelled

    def _entry_matches(
        self, entry: Entry, pattern: Pattern, tokens: Sequence[Token], where: Positions
    ) -> str:
        """_FIRED, _CANCELLED (every match cancelled) or _NONE."""
        present = where.present
        if any(present.isdisjoint(slot.keys) for slot in pattern.slots):
            return _NONE
        outcome = _NONE
        covered: list[int] | None = None  # prefix sums of positions inside a cancelling idiom
        bounds = _word_bounds(tokens) if entry.whole else None
        for tried, span in enumerate(spans(pattern, where)):
            if bounds is not None and (span[0], span[-1]) != bounds:
                continue  # a `whole` entry: the match is not the whole message
            if tried >= _MAX_SPANS:
                # A pathological message (hundreds of placements, all cancelled so far):
                # stop looking and fail towards an alarm rather than towards silence.
                return _FIRED
            outcome = _CANCELLED
            if entry.negatable and _negated(entry, span, tokens):
                continue
            if covered is None:
                covered = _coverage(
                    len(tokens),
                    (
                        s
                        for idiom in (*entry.excepts, *entry.idioms)
                        if not any(present.isdisjoint(slot.keys) for slot in idiom.slots)
                        for s in spans(idiom, where)
                    ),
                )
            if covered[span[-1] + 1] - covered[span[0]]:
                continue
            return _FIRED
        return outcome


def _word_bounds(tokens: Sequence[Token]) -> tuple[int, int]:
    """The positions of a message's first and last words (emoji and symbols aside)."""
    words = [i for i, t in enumerate(tokens) if any(ch.isalnum() for ch in t.text)]
    return (words[0], words[-1]) if words else (-1, -1)


def _coverage(size: int, cancels: Iterable[Span]) -> list[int]:
    """Prefix sums over token positions covered by a cancelling span (for O(1) overlap)."""
    marks = [0] * (size + 1)
    for span in cancels:
        marks[span[0]] += 1
        marks[span[-1] + 1] -= 1
    sums = [0] * (size + 1)
    depth = 0
    for i in range(size):
        depth += marks[i]
        sums[i + 1] = sums[i] + (1 if depth else 0)
    return sums


def _negated(entry: Entry, span: Span, tokens: Sequence[Token]) -> bool:
    neg = entry.negation
    if not neg.keys:
        return False
    members = set(span)

    def negator(j: int) -> bool:
        if j < 0 or j in members or neg.keys.isdisjoint(tokens[j].keys):
            return False
        return j == 0 or neg.unless_after.isdisjoint(tokens[j - 1].keys)

    first = span[0]
    # Before the match: a negator, with only bridge words between it and the match.
    for j in range(first - 1, max(-1, first - 1 - neg.window), -1):
        if negator(j):
            return True
        if neg.bridge.isdisjoint(tokens[j].keys):
            break
    # Inside the match: a negator right before any matched word ("хочу не умереть").
    return any(negator(i - 1) for i in span[1:])


class Positions:
    """Where each key is among a message's tokens, so that a pattern's slots are placed by
    looking their keys up instead of scanning every token for every slot of every candidate
    pattern (a long message's dozens of candidates times thousands of tokens)."""

    def __init__(self, tokens: Sequence[Token]) -> None:
        self._at: dict[str, list[int]] = {}
        for i, token in enumerate(tokens):
            for key in token.keys:
                self._at.setdefault(key, []).append(i)
        self.present: set[str] = set(self._at)
        self._slots: dict[frozenset[str], list[int]] = {}

    def of(self, keys: frozenset[str]) -> list[int]:
        """The positions (ascending) of the tokens with any of ``keys``."""
        found = self._slots.get(keys)
        if found is None:
            at = self._at
            lists = (
                [at[k] for k in keys if k in at]
                if len(keys) <= len(at)
                else [p for k, p in at.items() if k in keys]
            )
            found = lists[0] if len(lists) == 1 else sorted({i for p in lists for i in p})
            self._slots[keys] = found
        return found


def spans(pattern: Pattern, where: Positions) -> Iterator[Span]:
    """All placements of ``pattern`` among the tokens `where` indexes (each a tuple of
    ascending positions)."""
    positions = [where.of(slot.keys) for slot in pattern.slots]
    if any(not p for p in positions):
        return
    gaps = [slot.gap for slot in pattern.slots]
    if pattern.ordered or len(positions) == 1:
        yield from _ordered(positions, gaps, 0, ())
        return
    # Unordered: every slot on its own token, all within one window as wide as the ordered
    # pattern could stretch.
    window = sum(gaps[1:]) + len(gaps) - 1
    seen: set[Span] = set()
    for found in _unordered(positions, window, 0, ()):
        span = tuple(sorted(found))
        if span not in seen:
            seen.add(span)
            yield span


def _unordered(positions: list[list[int]], window: int, k: int, acc: Span) -> Iterator[Span]:
    if k == len(positions):
        yield acc
        return
    for pos in positions[k]:
        if pos in acc or (acc and max(*acc, pos) - min(*acc, pos) > window):
            continue
        yield from _unordered(positions, window, k + 1, (*acc, pos))


def _ordered(positions: list[list[int]], gaps: list[int], k: int, acc: Span) -> Iterator[Span]:
    if k == len(positions):
        yield acc
        return
    for pos in positions[k]:
        if acc and not (acc[-1] < pos <= acc[-1] + gaps[k] + 1):
            continue
        yield from _ordered(positions, gaps, k + 1, (*acc, pos))
