"""The lexicon loader: reviewed files compile, and malformed ones fail with a clear message."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from dialogs.taxonomy import Risk, Signal
from dialogs.triage.assess import _TRIAGE, assess
from dialogs.triage.lexicon import Lexicon, LexiconError, compile_lexicons
from dialogs.triage.matcher import Matcher
from dialogs.triage.normalize import tokenize

POLICY = {s: (_TRIAGE.policy.signals[s][0], _TRIAGE.policy.signals[s][1]) for s in Signal}


def compile_text(tmp_path: Path, text: str) -> Lexicon:
    path = tmp_path / "lexicon_xx.yaml"
    path.write_text(text, encoding="utf-8")
    return compile_lexicons([path], POLICY)


def fired(lexicon: Lexicon, message: str) -> list[str]:
    return [e.id for e in Matcher(lexicon).fired(tokenize(message, "ru"))]


def test_shipped_lexicons_compile_with_unique_ids() -> None:
    entries = _TRIAGE.matcher.lexicon.entries
    ids = [e.id for e in entries]
    assert len(ids) == len(set(ids))
    # Signals the lexicons do not list yet are left to the model (trained on the corpus).
    assert {e.signal for e in entries if e.signal} <= set(Signal)
    assert all(e.patterns for e in entries)


def test_a_small_lexicon_matches_with_gaps_groups_and_exceptions(tmp_path: Path) -> None:
    lexicon = compile_text(
        tmp_path,
        """
language: xx
negation: {words: [не]}
words:
  want: [хочу, =хочется]
entries:
  - id: want-sleep
    category: wellbeing
    risk: low
    negatable: true
    patterns: ["{want} спать"]
    except: [=спать =в =самолете]
""",
    )
    assert fired(lexicon, "хочу очень спать") == ["xx.want-sleep"]
    assert fired(lexicon, "хочу очень сильно спать") == ["xx.want-sleep"]  # two between
    assert fired(lexicon, "хочу ну очень сильно спать") == []  # three: too far
    assert fired(lexicon, "хочется спать") == ["xx.want-sleep"]
    assert fired(lexicon, "не хочу спать") == []
    assert fired(lexicon, "хочу спать в самолете") == []


def test_unordered_entries_match_in_any_order(tmp_path: Path) -> None:
    lexicon = compile_text(
        tmp_path,
        """
entries:
  - id: e
    category: other
    risk: low
    ordered: false
    patterns: [синий кит]
""",
    )
    assert fired(lexicon, "кит синий") == ["xx.e"]


def test_a_whole_entry_fires_only_on_a_message_that_is_its_match(tmp_path: Path) -> None:
    # Round 77: a call for help typed alone asks; the same words in a longer message do not.
    lexicon = compile_text(
        tmp_path,
        """
entries:
  - id: help-alone
    category: threats
    risk: high
    ask: true
    whole: true
    patterns: [=помогите, =помогите =мне]
""",
    )
    assert fired(lexicon, "помогите") == ["xx.help-alone"]
    assert fired(lexicon, "помогите мне!!! 😭") == ["xx.help-alone"]  # emoji aside
    assert fired(lexicon, "помогите мне с домашкой") == []
    assert fired(lexicon, "мама, помогите") == []
    assert lexicon.entries[0].whole and lexicon.entries[0].ask
    # A bot command is not a call for help: "/help" shows the help, "help" alone asks.
    assert assess("help", "en").check_in
    assert not assess("/help", "en").check_in and not assess("/help@helpline_bot", "ru").check_in
    assert assess("/start хочу умереть", "ru").danger  # a command's other words still count


def test_a_typo_that_shares_only_a_fuzzy_words_stem_still_matches_it() -> None:
    # Round 77: "swalowed" stems as "swalow", as "swallowed" does once its double letter is
    # read as one; it was taken for the word itself and never got the exact form's key.
    matched = _TRIAGE.lexicon(tokenize("swalowed like 30 paracetemol, feel sik", "en")).matched
    assert "en.overdose.took-pills" in matched


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("entries: [{id: a, category: other, risk: low, patterns: ['{nope}']}]", "unknown word"),
        ("entries: [{id: a, category: nonsense, risk: low, patterns: [x]}]", "taxonomy"),
        ("entries: [{id: a, category: other, risk: low, patterns: [x], colour: red}]", "unknown"),
        ("entries: [{id: a, patterns: [x]}]", "category and risk"),
        ("entries: [{id: a, signal: suicide, patterns: [ab*]}]", "too short"),
        ("entries: [{id: a, signal: suicide, patterns: []}]", "no patterns"),
        (
            "entries: [{id: a, signal: suicide, patterns: [x]}, {id: a, signal: abuse, "
            "patterns: [y]}]",
            "duplicate",
        ),
        ("fuzzy: [abc]\nentries: []", "shorter"),
        ("entries: [{id: a, signal: suicide, patterns: ['x? y']}]", "optional"),
        ("entries: [{id: a, signal: suicide, patterns: ['=abcd*']}]", "exact word with a star"),
        ("entries: [{id: a, signal: suicide, ask: true, patterns: [x]}]", "cannot ask"),
        # a phrase among one-word alternatives: "right now" or "now" is two patterns
        ("entries: [{id: a, signal: suicide, patterns: ['=talk =right =now|=now']}]",
         "repeats a term"),
        ("entries: [{id: a, signal: suicide, patterns: ['=not =ate|=not =only']}]",
         "side by side"),
        ("entries: [{id: a, signal: suicide, patterns: "
         "['=i =am|=we =are|=she =is|=he =is =locked']}]", "side by side"),
        # a second "except:" would silently replace the first list
        ("entries:\n  - id: a\n    signal: suicide\n    patterns: [x]\n    except: [y]\n"
         "    except: [z]", "given twice"),
    ],
)
def test_malformed_lexicons_fail_loudly(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(LexiconError, match=message):
        compile_text(tmp_path, body)


def test_signal_entries_take_their_risk_from_the_policy(tmp_path: Path) -> None:
    lexicon = compile_text(
        tmp_path,
        """
entries:
  - {id: a, signal: running-away, patterns: [x]}
  - {id: b, signal: running-away, risk: critical, patterns: [y]}
  - {id: c, signal: threat-to-life, patterns: [z]}
""",
    )
    a, b, c = lexicon.entries
    assert (a.risk, b.risk) == (Risk.HIGH, Risk.CRITICAL)
    assert c.category == "threats"


def _strings(node: object) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for v in node.values() for s in _strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return []


@pytest.mark.parametrize("name", ["lexicon_ru.yaml", "lexicon_en.yaml"])
def test_lexicon_words_do_not_mix_scripts(name: str) -> None:
    """A Latin letter inside a Cyrillic word (or back) is a typo no message would match."""
    path = Path(__file__).parents[2] / "dialogs" / "triage" / "data" / name
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    mixed = set()
    for text in _strings({k: data.get(k) for k in ("words", "idioms", "entries", "fuzzy")}):
        for word in re.split(r"[\s|=*{}<>.]+", text):
            cyr = any("\u0400" <= ch <= "\u04ff" for ch in word)
            lat = any("a" <= ch.lower() <= "z" for ch in word)
            if cyr and lat:
                mixed.add(word)
    assert not mixed, f"{name}: words mixing Cyrillic and Latin letters: {sorted(mixed)}"


@pytest.mark.parametrize(
    ("name", "locale"), [("lexicon_ru.yaml", "ru"), ("lexicon_en.yaml", "en")]
)
def test_every_exact_word_is_one_the_reader_can_produce(name: str, locale: str) -> None:
    """Slang and contractions are expanded before patterns see a message ("cant" -> "can
    not", "ur" -> "your") and hyphenated words are cut in two ("кто-то"): such an
    alternative can never match, and its pattern silently misses what it was written for
    ("=word*", an exact word with a star, the compiler refuses)."""
    path = Path(__file__).parents[2] / "dialogs" / "triage" / "data" / name
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    dead = {}
    for text in _strings({k: data.get(k) for k in ("words", "idioms", "entries")}):
        for term in re.findall(r"=([^\s|{}<>]+)", text):
            tokens = tokenize(term, locale, lexical=True)  # as the lexicons read
            if len(tokens) != 1 or "=" + term.casefold().replace("ё", "е") not in tokens[0].keys:
                dead[term] = [t.text for t in tokens]
    assert not dead, f"{name}: exact words no message can produce: {dead}"
