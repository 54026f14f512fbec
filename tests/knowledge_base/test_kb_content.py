"""Content rules reviewers asked for: gender-neutral Russian for children, current facts,
and reassurance before the law."""

from __future__ import annotations

import re

import pytest

from knowledge_base import Article, default_knowledge_base


def _articles(
    locale: str, audiences: tuple[str, ...] = ("child", "parent", "both")
) -> list[Article]:
    return [a for a in default_knowledge_base().articles(locale) if a.audience in audiences]


def _text(article: Article) -> str:
    return f"{article.title}\n{article.summary}\n{article.body}"


def _lines(article: Article) -> list[str]:
    return _text(article).splitlines()


# Masculine-only forms addressed to a child whose gender is unknown, and "(а)" endings.
# Rephrase instead: "с этим не нужно справляться в одиночку", "вред уже причинён",
# "это не твоя вина", "ты пострадавшая сторона".
FORBIDDEN_RU = [
    r"\bты не один\b",
    r"\bты не одинок\b",
    r"\bнавредил себе\b",
    r"\bты (?:уже |сам |случайно |ещё )?(?:сделал|отправил|навредил|ввёл|перевёл|переслал|"
    r"заблокировал|сохранил|передумал|рассказал|выложил|отправлял|вводил|сообщал|думал)\b",
    r"\bты (?:ни в чём )?не виноват\b",
    r"\bты сам\b",
    r"\bты — пострадавший\b",
    r"\bпострадавший, а не\b",
    r"\bты не (?:обязан|готов|должен)\b",
    r"\bне готов рассказать\b",
    r"\bты важен\b",
    r"\bты никому не нужен\b",
    r"\bдома один\b",
    r"\bодин ли ты\b",
    r"\bсделал(?:а)?\(а\)",
    r"\w\((?:а|ла|на)\)",
]


@pytest.mark.parametrize("article", _articles("ru", ("child", "both")), ids=lambda a: a.id)
def test_russian_child_articles_are_gender_neutral(article: Article) -> None:
    text = _text(article).lower()
    found = [p for p in FORBIDDEN_RU if re.search(p, text)]
    assert found == [], f"{article.id}: masculine-only or '(а)' forms {found}"


def test_the_forbidden_forms_are_caught() -> None:
    samples = ["Ты не один.", "если ты уже навредил себе", "Ты ни в чём не виноват", "сделал(а)"]
    for sample in samples:
        assert any(re.search(p, sample.lower()) for p in FORBIDDEN_RU), sample


@pytest.mark.parametrize("locale", ["ru", "en"])
def test_helpline_number_comes_with_short_number_and_honest_hours(locale: str) -> None:
    for article in _articles(locale):
        for line in _lines(article):
            if "8-800-2000-122" not in line:
                continue
            assert "124" in line, f"{article.id}: 8-800-2000-122 without 124: {line}"
            if locale == "ru":
                qualified = r"в большинстве регионов(?: линия работает| —)? круглосуточно"
                assert "круглосуточно" not in re.sub(qualified, "", line.lower()), (
                    f"{article.id}: {line}"
                )
            else:
                assert "24/7" not in line, f"{article.id}: {line}"


@pytest.mark.parametrize(("locale", "word"), [("ru", "Госуслуг"), ("en", "Gosuslugi")])
def test_police_website_needs_gosuslugi(locale: str, word: str) -> None:
    for article in _articles(locale):
        for line in _lines(article):
            if "мвд.рф" in line:
                assert word in line, f"{article.id}: мвд.рф without {word}: {line}"


def test_blocked_services_are_named_as_blocked_in_russian() -> None:
    for article in _articles("ru"):
        for paragraph in article.body.split("\n\n"):
            for name in ("Discord", "Roblox"):
                if re.search(rf"\b{name}\b", paragraph):
                    assert "заблокирован" in paragraph, f"{article.id}: {name} in {paragraph!r}"


def test_meta_platforms_are_named_as_the_law_requires() -> None:
    for article in _articles("ru"):
        for paragraph in f"{article.summary}\n\n{article.body}".split("\n\n"):
            if re.search(r"\b(?:Instagram|Facebook|Инстаграм|Фейсбук)\b", paragraph):
                assert "Meta" in paragraph and "экстремистской" in paragraph, (
                    f"{article.id}: {paragraph!r}"
                )


@pytest.mark.parametrize("locale", ["ru", "en"])
def test_telegram_csam_address(locale: str) -> None:
    article = default_knowledge_base().get("block-and-report-telegram", locale)
    assert article is not None and "stopCA@telegram.org" in article.body


def test_no_misspelt_helpline_site() -> None:
    for locale in ("ru", "en"):
        for article in _articles(locale):
            assert "telefon-doverija" not in _text(article), article.id


@pytest.mark.parametrize(
    ("locale", "reassurance", "law"),
    [("ru", "ты не в беде", r"ст\. \d"), ("en", "you are not in trouble", r"\bart\. \d|Criminal")],
)
def test_legal_article_reassures_before_the_law(locale: str, reassurance: str, law: str) -> None:
    article = default_knowledge_base().get("legal-help", locale)
    assert article is not None
    for text in (article.summary, article.body):
        first_law = re.search(law, text)
        position = text.lower().find(reassurance)
        assert position >= 0, f"{locale}: no reassurance in {text[:80]!r}"
        assert first_law is None or position < first_law.start()
    # ...and says who helps remove the image.
    helpers = (
        ("Take It Down", "Report Remove") if locale == "en" else ("Пожалуйся", "8-800-2000-122")
    )
    assert all(h in article.summary for h in helpers)


# A fact in the text and the dated source it was checked against travel together.
# A fact, and what a source of the article (its title or address) must name: the source that
# was compared with it (every source is dated: `helpline kb check --strict`).
FACT_SOURCES = [
    ("8-800-2000-122", "8-800-2000-122"),
    ("мвд.рф", "мвд.рф"),
    ("stopCA@telegram.org", "stopCA@telegram.org"),
    ("заблокирован Роскомнадзором", "Роскомнадзор"),
    ("Meta", "Meta Platforms"),
]


@pytest.mark.parametrize("locale", ["ru", "en"])
def test_facts_cite_their_source(locale: str) -> None:
    missing = [
        f"{article.id}: {fact!r} without a source {source!r}"
        for article in _articles(locale)
        for fact, source in FACT_SOURCES
        if fact in f"{article.summary}\n{article.body}"
        and not any(source in s for s in article.sources)
    ]
    assert missing == []
