"""Articles as chat text, one screen at a time.

A chat shows an article's summary first (at most ~600 characters, the three most useful steps),
then "read more" pages through the rest (`ArticleLike.chat_pages`): nothing is cut with an
ellipsis. Markdown becomes plain text every channel shows the same way: headings become lines,
emphasis goes, a web link keeps its address ("text (https://…)"), and a link to another article
becomes its words plus a button that opens that article (`Page.related`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dialogs.ports import ArticleLike

_LINK = re.compile(r"\[([^\]]+)\]\(\s*(kb:[^)\s]+|[a-z][a-z0-9+.-]*:[^)\s]+|[^)\s]+)\s*\)")
_HEADING = re.compile(r"^#{1,6}\s*(.+?)\s*$", re.MULTILINE)
_EMPHASIS = re.compile(r"(\*\*|__)(.+?)\1")
# Characters per "read more" page: one screen on a phone, well under Telegram's 4096.
PAGE_CHARS = 1000


@dataclass(frozen=True, slots=True)
class Page:
    """One screen of an article: its text, which page of how many, the articles it links to."""

    text: str
    number: int
    count: int
    related: tuple[str, ...]

    @property
    def more(self) -> bool:
        return self.number + 1 < self.count


def _plain(markdown: str, related: list[str]) -> str:
    def link(match: re.Match[str]) -> str:
        words, target = match.group(1), match.group(2)
        if target.startswith("kb:"):
            article = target[3:]
            if article not in related:
                related.append(article)
            return words
        if target.startswith("mailto:"):
            target = target[7:]
        return words if target in words else f"{words} ({target})"

    text = _LINK.sub(link, markdown)
    text = _HEADING.sub(r"\1", text)
    return _EMPHASIS.sub(r"\2", text).strip()


def article_page(article: ArticleLike, number: int = 0, limit: int = PAGE_CHARS) -> Page | None:
    """Page `number` of the article as chat text (0: the summary); None past the last page."""
    pages = article.chat_pages(limit)
    if not 0 <= number < len(pages):
        return None
    related: list[str] = []
    text = _plain(pages[number], related)
    return Page(text, number, len(pages), tuple(r for r in related if r != article.id))
