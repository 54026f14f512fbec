"""Every source of the shipped articles carries the day it was compared with the article
(issue #19): the strict check passes on the real knowledge base."""

from __future__ import annotations

from knowledge_base.check import check, undated_sources


def test_shipped_articles_pass_the_strict_check() -> None:
    problems = check(strict=True)
    assert problems == [], "\n".join(map(str, problems))


def test_no_shipped_source_is_undated() -> None:
    assert undated_sources() == 0
