"""Short first: every article opens with a chat summary, and the rest pages without loss."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from knowledge_base import Article, KnowledgeBase, default_knowledge_base
from knowledge_base.markdown import paginate
from knowledge_base.model import SUMMARY_CHARS

_LINK = re.compile(r"\[[^\]]*\]\([^)]*\)")
_WORDS = re.compile(r"\S+")


def _all() -> list[Article]:
    kb = default_knowledge_base()
    return [a for locale in ("ru", "en") for a in kb.articles(locale)]


ARTICLES = _all()


@pytest.mark.parametrize("article", ARTICLES, ids=lambda a: f"{a.locale}/{a.id}")
def test_summary_fits_one_screen(article: Article) -> None:
    assert article.summary, "every article needs a chat summary"
    assert len(article.summary) <= SUMMARY_CHARS
    # The first chat page is the title and the summary: it still fits.
    assert len(f"{article.title}\n\n{article.summary}") <= SUMMARY_CHARS
    assert not article.summary.rstrip().endswith(("…", "..."))


@pytest.mark.parametrize("article", ARTICLES, ids=lambda a: f"{a.locale}/{a.id}")
def test_summary_has_three_steps(article: Article) -> None:
    steps = re.findall(r"^\d\. ", article.summary, flags=re.MULTILINE)
    assert len(steps) == 3, article.summary


@pytest.mark.parametrize("limit", [300, 600, 1000])
@pytest.mark.parametrize("article", ARTICLES, ids=lambda a: f"{a.locale}/{a.id}")
def test_pages_lose_nothing_and_cut_no_word(article: Article, limit: int) -> None:
    pages = article.pages(limit)
    assert pages
    assert all(len(page) <= limit for page in pages)
    # Joined, the pages hold every word of the body, in order: nothing cut or left out.
    assert _WORDS.findall(" ".join(pages)) == _WORDS.findall(article.body)
    assert not any(page.rstrip().endswith("…") for page in pages)
    # Every link survives whole, address included.
    assert [link for page in pages for link in _LINK.findall(page)] == _LINK.findall(article.body)


@pytest.mark.parametrize("article", ARTICLES, ids=lambda a: f"{a.locale}/{a.id}")
def test_chat_pages_start_with_the_summary(article: Article) -> None:
    pages = article.chat_pages(600)
    assert pages[0] == article.summary
    assert pages[1:] == article.pages(600)


def test_page_breaks_fall_between_paragraphs() -> None:
    body = "First paragraph here.\n\n## Heading\nSecond paragraph.\n\nThird one."
    assert paginate(body, 35) == (
        "First paragraph here.",
        "## Heading\nSecond paragraph.",
        "Third one.",
    )


def test_a_heading_stays_with_its_text() -> None:
    body = "Intro text that is long enough.\n\n## Steps\n\n1. Do this."
    pages = paginate(body, 35)
    assert pages[-1].startswith("## Steps")


def test_a_long_line_splits_between_sentences_then_words() -> None:
    line = "One short sentence. " + "word " * 30 + "end."
    pages = paginate(line, 50)
    assert all(len(p) <= 50 for p in pages)
    assert pages[0] == "One short sentence."
    assert " ".join(pages).split() == line.split()


def test_a_link_is_never_split() -> None:
    line = (
        "Read " + " ".join(["this"] * 8) + " [the guide on saving evidence](kb:save-evidence) now."
    )
    pages = paginate(line, 40)
    assert "[the guide on saving evidence](kb:save-evidence)" in " ".join(pages)
    assert any("[the guide on saving evidence](kb:save-evidence)" in p for p in pages)


def test_urls_in_links_reach_the_reader(tmp_path: Path) -> None:
    for locale in ("ru", "en"):
        (tmp_path / locale).mkdir()
        (tmp_path / locale / "a.md").write_text(
            "---\nid: a\ntitle: A\naudience: both\ntopics: [helplines]\nkeywords: [a]\n"
            'sources: ["x"]\nsummary: |\n  Call [the line](https://example.org/line).\n---\n'
            "Body with [a link](https://example.org/more).\n",
            encoding="utf-8",
        )
    article = KnowledgeBase.load(tmp_path).get("a", "en")
    assert article is not None
    assert "https://example.org/line" in article.summary
    assert "https://example.org/more" in article.pages(100)[0]


def test_paginate_rejects_a_silly_limit() -> None:
    with pytest.raises(ValueError):
        paginate("text", 0)
