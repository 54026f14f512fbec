"""The reviewed word data (stop words, synonyms) stays in the shape the search expects."""

from __future__ import annotations

from typing import Any

from knowledge_base.synonyms import DEFAULT_PATH, Synonyms
from knowledge_base.text import DATA_DIR, load_word_data, normalize, stopwords, tokenize


def test_word_lists_are_normalised() -> None:
    raw: dict[str, Any] = load_word_data(DEFAULT_PATH)
    words = [str(w) for group in raw["groups"] for w in group] + [
        str(w) for key, values in raw["expand"].items() for w in (key, *values)
    ]
    stop: dict[str, list[str]] = load_word_data(DATA_DIR / "stopwords.yaml")
    words += [w for values in stop.values() for w in values]
    assert [w for w in words if normalize(w) != w] == []


def test_yaml_booleans_stay_words() -> None:
    # Unquoted "no" and "on" would be booleans to a default YAML loader.
    assert {"no", "on", "off"} <= stopwords() and "false" not in stopwords()


def test_synonym_groups_and_keys() -> None:
    raw: dict[str, Any] = load_word_data(DEFAULT_PATH)
    assert all(len(group) >= 2 for group in raw["groups"])
    stop = stopwords()
    lone_stop_words = [
        w for group in raw["groups"] for w in group if tokenize(w) and set(tokenize(w)) <= stop
    ]
    assert lone_stop_words == []
    table = Synonyms.load()
    assert table.match(["нюдс"], 0) is not None
    assert table.match(["kill", "myself"], 0) is not None
