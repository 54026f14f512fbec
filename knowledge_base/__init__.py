"""Help-line knowledge base: reviewed markdown articles in Russian and English, and their search.

    from knowledge_base import KnowledgeBase, search
    hits = search("меня травят в вк", "ru", audience="child")  # [] means: offer a person
    article = hits[0].article
    article.summary          # the first chat screen (<= SUMMARY_CHARS), markdown
    article.pages(limit)     # "read more": the body in pages of <= limit, split between paragraphs

Reviewed data: `articles/<locale>/<id>.md`, and in `data/` the topic list, stop words and the
slang/synonym table. Scoring is explained in `knowledge_base.index`. The validator is
`knowledge_base.check` (`check(root)`, `main(argv)`).
"""

from knowledge_base.engine import (
    MIN_SCORE,
    SNIPPET_CHARS,
    KnowledgeBase,
    default_knowledge_base,
    search,
)
from knowledge_base.model import (
    ARTICLES_DIR,
    AUDIENCES,
    LOCALES,
    PAGE_CHARS,
    SUMMARY_CHARS,
    Article,
    ArticleError,
    Hit,
    Problem,
    resolve_locale,
    topics,
)

__all__ = [
    "ARTICLES_DIR",
    "AUDIENCES",
    "LOCALES",
    "MIN_SCORE",
    "PAGE_CHARS",
    "SNIPPET_CHARS",
    "SUMMARY_CHARS",
    "Article",
    "ArticleError",
    "Hit",
    "KnowledgeBase",
    "Problem",
    "default_knowledge_base",
    "resolve_locale",
    "search",
    "topics",
]
