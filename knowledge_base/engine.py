"""The knowledge base: loading the articles of every locale and searching them."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from pathlib import Path

from knowledge_base.frontmatter import field_problems, parse_file, to_article
from knowledge_base.index import MIN_SCORE, SNIPPET_CHARS, LocaleIndex
from knowledge_base.model import (
    ARTICLES_DIR,
    AUDIENCES,
    Article,
    ArticleError,
    Hit,
    Problem,
    resolve_locale,
)
from knowledge_base.synonyms import Synonyms
from knowledge_base.text import default_stemmer

__all__ = ["MIN_SCORE", "SNIPPET_CHARS", "KnowledgeBase", "default_knowledge_base", "search"]


class KnowledgeBase:
    """Articles of all locales and their search indexes. Build with `KnowledgeBase.load()`.

    Immutable after construction (apart from internal caches), so one instance can serve the
    whole process, including worker threads.
    """

    def __init__(self, articles: Iterable[Article], synonyms: Synonyms | None = None) -> None:
        stemmer = default_stemmer()
        self._synonyms = synonyms if synonyms is not None else Synonyms.load(stemmer=stemmer)
        by_locale: dict[str, list[Article]] = {}
        for article in articles:
            by_locale.setdefault(article.locale, []).append(article)
        self._indexes = {
            loc: LocaleIndex(items, stemmer, self._synonyms) for loc, items in by_locale.items()
        }
        self._by_id = {
            loc: {a.id: a for a in index.articles} for loc, index in self._indexes.items()
        }

    @classmethod
    def load(cls, root: Path | None = None) -> KnowledgeBase:
        """Read `root/<locale>/*.md` (default: the package's articles).

        Raises ArticleError when a file's front matter is missing, broken or has wrong fields;
        `knowledge_base.check` reports the same problems and more.
        """
        root = root if root is not None else ARTICLES_DIR
        articles: list[Article] = []
        problems: list[Problem] = []
        if root.is_dir():
            for folder in sorted(p for p in root.iterdir() if p.is_dir()):
                for path in sorted(folder.glob("*.md")):
                    parsed = parse_file(path)
                    found = parsed.problems or field_problems(parsed)
                    if found:
                        problems.extend(found)
                    else:
                        articles.append(to_article(parsed, folder.name))
        if problems:
            raise ArticleError(problems)
        return cls(articles)

    @property
    def locales(self) -> list[str]:
        """Locales that have at least one article."""
        return sorted(self._indexes)

    def search(
        self, query: str, locale: str, audience: str | None = None, limit: int = 3
    ) -> list[Hit]:
        """Best articles for a free-text query, best first; [] when none reaches MIN_SCORE.

        `audience` "child" sees child and both articles, "parent" parent and both, None all.
        A locale starting with "ru" searches Russian, any other English.
        """
        if audience is not None and audience not in AUDIENCES:
            raise ValueError(f"audience must be one of {AUDIENCES} or None, not {audience!r}")
        index = self._indexes.get(resolve_locale(locale))
        if index is None:
            return []
        return index.search(query, audience, limit)

    def get(self, article_id: str, locale: str) -> Article | None:
        """One article by id, or None."""
        return self._by_id.get(resolve_locale(locale), {}).get(article_id)

    def articles(self, locale: str) -> list[Article]:
        """All articles of a locale, sorted by id."""
        index = self._indexes.get(resolve_locale(locale))
        return list(index.articles) if index is not None else []

    def by_topic(self, topic: str, locale: str, audience: str | None = None) -> list[Article]:
        """Articles with a topic: those whose main (first) topic it is first, then by id."""
        found = [
            a for a in self.articles(locale) if topic in a.topics and a.for_audience(audience)
        ]
        return sorted(found, key=lambda a: (a.topics[0] != topic, a.id))


@cache
def default_knowledge_base() -> KnowledgeBase:
    """The package's own articles, loaded once per process."""
    return KnowledgeBase.load()


def search(query: str, locale: str, audience: str | None = None, limit: int = 3) -> list[Hit]:
    """Search the package's own articles (see `KnowledgeBase.search`)."""
    return default_knowledge_base().search(query, locale, audience, limit)
