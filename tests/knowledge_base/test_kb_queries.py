"""Queries children really type: filler words, misspelt app names, short how-to questions.

One test per query that once went wrong; each names the article a child should get first.
"""

from __future__ import annotations

import pytest

from knowledge_base import KnowledgeBase, default_knowledge_base


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return default_knowledge_base()


def first(kb: KnowledgeBase, query: str, locale: str) -> str | None:
    hits = kb.search(query, locale, audience="child")
    return hits[0].article.id if hits else None


# (locale, noisy query, clean query): the noisy one must find what the clean one finds.
SAME_AS_CLEAN = [
    ("ru", "чо делать если травят", "что делать если травят"),
    ("ru", "че делать взломали вк", "что делать взломали вк"),
    ("ru", "шо делать если угрожают", "что делать если угрожают"),
    ("ru", "помогите плз шантажируют фотками", "помогите шантажируют фотками"),
    ("ru", "как заблокировать в телеграмм", "как заблокировать в телеграм"),
    ("ru", "как заблокировать человека в телеграме", "как заблокировать в телеграм"),
    ("ru", "пожаловаться вконтакт", "пожаловаться вконтакте"),
    ("ru", "заблокировать в инстаграмм", "заблокировать в инстаграм"),
    ("ru", "пожаловаться в тик токе", "пожаловаться в тикток"),
    ("en", "pls someone hacked my account", "someone hacked my account"),
    ("en", "plz how to block someone", "how to block someone"),
    ("en", "how to block on tik tok", "how to block on tiktok"),
    ("en", "report on insta pls", "report on instagram"),
]


@pytest.mark.parametrize(("locale", "noisy", "clean"), SAME_AS_CLEAN)
def test_noisy_query_finds_what_the_clean_one_finds(
    kb: KnowledgeBase, locale: str, noisy: str, clean: str
) -> None:
    expected = first(kb, clean, locale)
    assert expected is not None, f"the clean query {clean!r} finds nothing"
    assert first(kb, noisy, locale) == expected


RIGHT_FIRST = [
    ("en", "how do I make my account private", "keep-your-info-private"),
    ("en", "should I put my school in my bio", "keep-your-info-private"),
    ("en", "how to block someone in Telegram", "block-and-report-telegram"),
    ("ru", "как сделать аккаунт закрытым", "keep-your-info-private"),
    ("ru", "стоит ли писать школу в профиле", "keep-your-info-private"),
    ("ru", "как заблокировать человека в телеграме", "block-and-report-telegram"),
    ("ru", "чо делать если травят", "cyberbullying-what-to-do"),
    ("ru", "вконтакт заблокировать", "block-and-report-vk"),
    ("ru", "инстаграмм пожаловаться", "block-and-report-other-apps"),
    ("en", "tik tok report", "block-and-report-other-apps"),
]


@pytest.mark.parametrize(("locale", "query", "article_id"), RIGHT_FIRST)
def test_the_right_article_comes_first(
    kb: KnowledgeBase, locale: str, query: str, article_id: str
) -> None:
    assert first(kb, query, locale) == article_id
