"""Articles as plain text for a chat: headings become lines, internal links become their words."""

from __future__ import annotations

import re

from dialogs.ports import ArticleLike

_LINK = re.compile(r"\[([^\]]+)\]\((?:kb:[^)]+|(https?://[^)]+))\)")
_HEADING = re.compile(r"^#{1,6}\s*(.+?)\s*$", re.MULTILINE)
_EMPHASIS = re.compile(r"(\*\*|__)(.+?)\1")


def _link(match: re.Match[str]) -> str:
    text, url = match.group(1), match.group(2)
    return f"{text} ({url})" if url and url not in text else text


def article_text(article: ArticleLike, limit: int = 1500) -> str:
    """The article body as chat text, cut at a paragraph boundary under `limit` characters."""
    body = _LINK.sub(_link, article.body)
    body = _HEADING.sub(r"\1", body)
    body = _EMPHASIS.sub(r"\2", body).strip()
    if len(body) <= limit:
        return body
    cut = body.rfind("\n\n", 0, limit)
    if cut < limit // 3:
        cut = body.rfind(" ", 0, limit)
    return body[:cut].rstrip() + "\n…"
