"""Knowledge-base loading and search behaviour, on the real articles and on small fixtures."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

import knowledge_base
from knowledge_base import (
    MIN_SCORE,
    SNIPPET_CHARS,
    Article,
    ArticleError,
    Hit,
    KnowledgeBase,
    default_knowledge_base,
    resolve_locale,
    search,
    topics,
)


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return default_knowledge_base()


def ids(hits: list[Hit]) -> list[str]:
    return [h.article.id for h in hits]


def article(article_id: str, locale: str, body: str, **fields: object) -> Article:
    values: dict[str, object] = {
        "id": article_id,
        "locale": locale,
        "title": article_id.replace("-", " "),
        "audience": "both",
        "topics": ("wellbeing",),
        "keywords": ("placeholder",),
        "sources": ("example.org",),
        "body": body,
        "path": Path(f"/nowhere/{locale}/{article_id}.md"),
    }
    values.update(fields)
    return Article(**values)  # type: ignore[arg-type]


FILLER_WORDS = ["garden", "kitchen", "weather", "river", "music", "painting", "bicycle", "library"]


def small_kb(*articles: Article) -> KnowledgeBase:
    """A knowledge base of the given articles plus unrelated fillers, so that word rarity (idf)
    behaves as in a real corpus rather than one where every word is in every article."""
    locales = {a.locale for a in articles}
    fillers = [
        article(
            f"filler-{word}",
            locale,
            f"A short note about the {word} and the {word} club.",
            keywords=(word,),
        )
        for locale in locales
        for word in FILLER_WORDS
    ]
    return KnowledgeBase([*articles, *fillers])


# --- loading and lookup ---------------------------------------------------------------------


def test_loads_thirty_articles_per_locale(kb: KnowledgeBase) -> None:
    assert kb.locales == ["en", "ru"]
    for locale in ("ru", "en"):
        articles = kb.articles(locale)
        assert len(articles) == 30
        assert [a.id for a in articles] == sorted(a.id for a in articles)
        assert all(a.locale == locale and a.path.stem == a.id for a in articles)
    assert {a.id for a in kb.articles("ru")} == {a.id for a in kb.articles("en")}


def test_values_are_frozen(kb: KnowledgeBase) -> None:
    first = kb.articles("ru")[0]
    assert isinstance(first.topics, tuple) and isinstance(first.keywords, tuple)
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.title = "changed"  # type: ignore[misc]
    hit = kb.search("травля", "ru")[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        hit.score = 0.0  # type: ignore[misc]


def test_get(kb: KnowledgeBase) -> None:
    found = kb.get("account-hacked", "ru")
    assert found is not None and found.locale == "ru" and found.body
    assert kb.get("account-hacked", "en-GB") is not None
    assert kb.get("no-such-article", "ru") is None


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("ru", "ru"),
        ("ru-RU", "ru"),
        ("RU", "ru"),
        ("ru_KZ", "ru"),
        ("en", "en"),
        ("en-US", "en"),
        ("de", "en"),
        ("uk", "en"),
        ("", "en"),
    ],
)
def test_locale_fallback(kb: KnowledgeBase, given: str, expected: str) -> None:
    assert resolve_locale(given) == expected
    assert {a.locale for a in kb.articles(given)} == {expected}


def test_by_topic(kb: KnowledgeBase) -> None:
    found = kb.by_topic("cyberbullying", "ru")
    assert found and all("cyberbullying" in a.topics for a in found)
    # Articles whose main topic it is come first.
    main = [a.topics[0] == "cyberbullying" for a in found]
    assert main == sorted(main, reverse=True)
    assert all(
        a.audience in ("parent", "both") for a in kb.by_topic("cyberbullying", "ru", "parent")
    )
    assert kb.by_topic("no-such-topic", "en") == []


def test_every_topic_has_articles(kb: KnowledgeBase) -> None:
    for locale in ("ru", "en"):
        assert all(kb.by_topic(topic, locale) for topic in topics())


def test_load_rejects_broken_articles(tmp_path: Path) -> None:
    (tmp_path / "ru").mkdir()
    (tmp_path / "ru" / "broken.md").write_text("---\nid: broken\n---\nText\n", encoding="utf-8")
    with pytest.raises(ArticleError) as error:
        KnowledgeBase.load(tmp_path)
    assert "broken.md:1: required field 'title' is missing" in str(error.value)


def test_load_of_empty_folder(tmp_path: Path) -> None:
    empty = KnowledgeBase.load(tmp_path)
    assert empty.locales == [] and empty.search("травля", "ru") == []


# --- search behaviour -----------------------------------------------------------------------


def test_module_level_search_uses_one_cached_instance() -> None:
    assert default_knowledge_base() is default_knowledge_base()
    hits = search("меня травят в вк", "ru")
    assert hits and hits[0].article.id == "cyberbullying-what-to-do"
    assert knowledge_base.search is search


@pytest.mark.parametrize("query", ["травят", "травля", "затравили", "меня травят", "ТРАВЛЯ"])
def test_russian_word_forms(kb: KnowledgeBase, query: str) -> None:
    assert "cyberbullying" in kb.search(query, "ru")[0].article.topics


@pytest.mark.parametrize("query", ["someone hacked my account", "hacking", "my account hack"])
def test_english_word_forms(kb: KnowledgeBase, query: str) -> None:
    assert kb.search(query, "en")[0].article.id == "account-hacked"


@pytest.mark.parametrize(
    ("query", "locale", "topic"),
    [
        ("слили фотки", "ru", "intimate-images"),
        ("нюдсы", "ru", "intimate-images"),
        ("как заблокировать в тг", "ru", "blocking-reporting"),
        ("буллинг", "ru", "cyberbullying"),
        ("взломали акк", "ru", "account-security"),
        ("nudes", "en", "intimate-images"),
        ("how to block on tg", "en", "blocking-reporting"),
    ],
)
def test_slang(kb: KnowledgeBase, query: str, locale: str, topic: str) -> None:
    hits = kb.search(query, locale)
    assert any(topic in h.article.topics for h in hits), ids(hits)


@pytest.mark.parametrize(
    ("query", "locale", "expected"),
    [
        ("взламали страницу", "ru", "account-hacked"),
        ("шонтаж", "ru", "someone-demands-photos-or-money"),
        ("someone hackd my acount", "en", "account-hacked"),
        ("paswords", "en", "passwords-and-two-factor"),
    ],
)
def test_typos(kb: KnowledgeBase, query: str, locale: str, expected: str) -> None:
    assert expected in ids(kb.search(query, locale))


def test_yo_and_case_are_folded() -> None:
    body = "Ёжик живёт в лесу.\n\n## Где\nЁлки и сосны."
    kb = small_kb(article("hedgehog", "ru", body, keywords=("ёжик", "ёлка")))
    for query in ("ежик", "ЁЖИК", "Ежик живет", "елки"):
        assert ids(kb.search(query, "ru")) == ["hedgehog"], query


def test_title_and_keywords_outweigh_body() -> None:
    kb = small_kb(
        article("in-title", "en", "Something else entirely.", title="Password safety"),
        article("in-keywords", "en", "Something else entirely.", keywords=("password",)),
        article("in-body", "en", "Once we mention a password here, in passing."),
    )
    found = ids(kb.search("password", "en"))
    assert set(found[:2]) == {"in-title", "in-keywords"}
    assert found[2:] in ([], ["in-body"])


def test_audience_filter(kb: KnowledgeBase) -> None:
    query = "сына травят в школьном чате что делать"
    child = kb.search(query, "ru", audience="child", limit=10)
    parent = kb.search(query, "ru", audience="parent", limit=10)
    anyone = kb.search(query, "ru", limit=10)
    assert child and all(h.article.audience in ("child", "both") for h in child)
    assert parent and all(h.article.audience in ("parent", "both") for h in parent)
    assert {h.article.audience for h in anyone} >= {"child", "parent"}
    with pytest.raises(ValueError, match="audience"):
        kb.search(query, "ru", audience="teacher")


def test_results_are_ordered_and_limited(kb: KnowledgeBase) -> None:
    hits = kb.search("травля в чате класса", "ru", limit=5)
    assert len(hits) == 5
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert all(h.score >= MIN_SCORE for h in hits)
    assert len(kb.search("травля в чате класса", "ru")) == 3
    assert kb.search("травля", "ru", limit=0) == []


@pytest.mark.parametrize(
    "query", ["", "   ", "и в на", "the a of", "?!", "12", "ыыыфв ждлоапр", "qwerty asdfgh"]
)
def test_nothing_worth_answering_gives_no_hits(kb: KnowledgeBase, query: str) -> None:
    assert kb.search(query, "ru") == [] and kb.search(query, "en") == []


def test_snippets_are_short_plain_text(kb: KnowledgeBase) -> None:
    queries = {
        "ru": ["как заблокировать в вк", "телефон доверия", "сохранить доказательства"],
        "en": ["how to block on telegram", "helpline", "save evidence screenshots"],
    }
    for locale, batch in queries.items():
        for query in batch:
            for hit in kb.search(query, locale):
                assert 0 < len(hit.snippet) <= SNIPPET_CHARS
                assert "**" not in hit.snippet and "](" not in hit.snippet
                assert not hit.snippet.startswith("#") and "\n" not in hit.snippet


def test_snippet_is_the_best_matching_paragraph() -> None:
    body = (
        "General introduction about staying safe.\n\n"
        "## Passwords\nUse a long password and never share it.\n\n"
        "## Games\nSome games have chat; keep it friendly."
    )
    kb = small_kb(article("mixed", "en", body, keywords=("password", "games")))
    assert kb.search("games chat", "en")[0].snippet == "Some games have chat; keep it friendly."
    assert kb.search("password", "en")[0].snippet == "Use a long password and never share it."


def test_long_paragraph_is_clipped() -> None:
    body = " ".join(["Word salad about nothing in particular."] * 20) + " Password tips here."
    kb = small_kb(article("long", "en", body, keywords=("password",)))
    snippet = kb.search("password", "en")[0].snippet
    assert len(snippet) <= SNIPPET_CHARS and snippet.endswith("…")
