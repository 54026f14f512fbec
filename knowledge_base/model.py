"""Value types of the knowledge base and its fixed vocabularies."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from knowledge_base.markdown import paginate
from knowledge_base.text import DATA_DIR

ARTICLES_DIR = Path(__file__).parent / "articles"
LOCALES: tuple[str, ...] = ("ru", "en")
SUMMARY_CHARS = 600
"""The most a summary may hold: what a child reads first, on one screen."""
PAGE_CHARS = 1000
"""Default size of a "read more" page."""
AUDIENCES: tuple[str, ...] = ("child", "parent", "both")


@cache
def topics() -> tuple[str, ...]:
    """The fixed topic list (data/topics.yaml), in its reviewed order."""
    with (DATA_DIR / "topics.yaml").open(encoding="utf-8") as fh:
        raw: dict[str, list[str]] = yaml.safe_load(fh)
    return tuple(str(t) for t in raw["topics"])


def resolve_locale(locale: str | None) -> str:
    """Anything starting with "ru" ("ru", "ru-RU", "ru_KZ") reads Russian; all else English."""
    return "ru" if (locale or "").strip().lower().startswith("ru") else "en"


@dataclass(frozen=True, slots=True)
class Article:
    """One article in one locale; `body` is the markdown after the front matter.

    `summary` (front matter) is what a chat shows first: at most SUMMARY_CHARS characters of
    markdown with the most useful steps. `pages()` is the rest, for "read more". Both keep
    markdown links as they are, so a renderer can show every address.
    """

    id: str
    locale: str
    title: str
    audience: str  # "child" | "parent" | "both"
    topics: tuple[str, ...]
    keywords: tuple[str, ...]
    sources: tuple[str, ...]
    body: str
    path: Path
    summary: str = ""

    def pages(self, limit: int = PAGE_CHARS) -> tuple[str, ...]:
        """The body as "read more" pages of at most `limit` characters (markdown).

        Split at paragraph boundaries (a long paragraph between lines, sentences or words),
        never inside a word or a link, never shortened with an ellipsis: joined, the pages
        hold the whole body.
        """
        return paginate(self.body, limit)

    def chat_pages(self, limit: int = PAGE_CHARS) -> tuple[str, ...]:
        """What a chat shows, in order: the summary (when there is one), then `pages(limit)`."""
        return ((self.summary,) if self.summary else ()) + self.pages(limit)

    def for_audience(self, audience: str | None) -> bool:
        """True when a reader of `audience` ("child", "parent" or None for anyone) may see it."""
        return audience is None or self.audience in (audience, "both")


@dataclass(frozen=True, slots=True)
class Hit:
    """A search result: the article, its score and a plain-text excerpt (<= 300 characters)."""

    article: Article
    score: float
    snippet: str


@dataclass(frozen=True, slots=True)
class Problem:
    """A validation problem; `line` is 1-based, 0 when it concerns a whole folder."""

    path: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


class ArticleError(ValueError):
    """Raised by `KnowledgeBase.load` when article files are malformed."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        shown = "\n".join(str(p) for p in problems[:20])
        more = f"\n... and {len(problems) - 20} more" if len(problems) > 20 else ""
        super().__init__(f"{len(problems)} problem(s) in knowledge-base articles:\n{shown}{more}")
