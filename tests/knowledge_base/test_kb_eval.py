"""Search quality on realistic queries (queries_<locale>.yaml), and silence on off-topic ones.

A query is answered when one of the top 3 hits has one of its expected topics. The bot offers a
person when search returns nothing, so off-topic questions must get no hits at all.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from knowledge_base import KnowledgeBase, default_knowledge_base, topics

HERE = Path(__file__).parent
LOCALES = ("ru", "en")
MIN_ACCURACY = 0.9


def load(locale: str) -> dict[str, Any]:
    with (HERE / f"queries_{locale}.yaml").open(encoding="utf-8") as fh:
        data: dict[str, Any] = yaml.safe_load(fh)
    return data


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return default_knowledge_base()


@pytest.mark.parametrize("locale", LOCALES)
def test_evaluation_data_is_well_formed(locale: str) -> None:
    data = load(locale)
    assert len(data["queries"]) >= 80
    assert len(data["out_of_scope"]) >= 15
    known = set(topics())
    for item in data["queries"]:
        assert item["q"].strip() and item["topics"], item
        assert set(item["topics"]) <= known, item


@pytest.mark.parametrize("locale", LOCALES)
def test_top3_accuracy(
    kb: KnowledgeBase, locale: str, record_property: Callable[[str, object], None]
) -> None:
    queries = load(locale)["queries"]
    misses = []
    for item in queries:
        hits = kb.search(item["q"], locale)
        if not any(set(item["topics"]) & set(hit.article.topics) for hit in hits):
            misses.append(
                f"  {item['q']!r} expected {item['topics']}, got "
                f"{[(h.article.id, h.score) for h in hits]}"
            )
    accuracy = 1 - len(misses) / len(queries)
    record_property(f"top3_accuracy_{locale}", round(accuracy, 3))
    summary = (
        f"{locale}: top-3 accuracy {accuracy:.3f} "
        f"({len(queries) - len(misses)}/{len(queries)}), misses:\n" + "\n".join(misses)
    )
    assert accuracy >= MIN_ACCURACY, summary


@pytest.mark.parametrize(
    ("locale", "query"),
    [(locale, query) for locale in LOCALES for query in load(locale)["out_of_scope"]],
)
def test_out_of_scope_gets_no_hits(kb: KnowledgeBase, locale: str, query: str) -> None:
    hits = kb.search(query, locale)
    assert hits == [], f"{query!r} should get no article, got " + str(
        [(h.article.id, h.score) for h in hits]
    )
