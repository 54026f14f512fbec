"""Just enough markdown handling for snippets and validation: blocks, headings, plain text."""

from __future__ import annotations

import re

HEADING_RE = re.compile(r"^(#{1,6})(?:\s+(.*?))?\s*#*\s*$")
FENCE_RE = re.compile(r"^\s*(```|~~~)")
_LINK_RE = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_BULLET_RE = re.compile(r"^\s*(?:[-*+]\s+|>\s*)")
_NUMBER_RE = re.compile(r"^\s*(\d+)[.)]\s+")
_EMPHASIS_RE = re.compile(r"\*\*|__|`|(?<!\w)\*(?=\S)|(?<=\S)\*(?!\w)")
_TAG_RE = re.compile(r"<[^>]+>")
_SPACE_RE = re.compile(r"\s+")


def plain_line(line: str) -> str:
    """One markdown line as plain text: no heading marks, bullets, links or emphasis."""
    heading = HEADING_RE.match(line)
    if heading:
        line = heading.group(2) or ""
    line = _NUMBER_RE.sub(r"\1. ", line)
    line = _BULLET_RE.sub("", line)
    line = _LINK_RE.sub(r"\1", line)
    line = _TAG_RE.sub("", line)
    line = _EMPHASIS_RE.sub("", line)
    return _SPACE_RE.sub(" ", line).strip()


def blocks(body: str) -> list[list[str]]:
    """Paragraphs and lists of the body (separated by blank lines or headings) as plain lines.

    Headings are left out: a snippet should be text a reader can act on.
    """
    result: list[list[str]] = []
    current: list[str] = []
    in_fence = False
    for raw in body.splitlines():
        if FENCE_RE.match(raw):
            in_fence = not in_fence
            continue
        is_heading = not in_fence and HEADING_RE.match(raw) is not None
        if not raw.strip() or is_heading:
            if current:
                result.append(current)
                current = []
            continue
        text = raw.strip() if in_fence else plain_line(raw)
        if text:
            current.append(text)
    if current:
        result.append(current)
    return result


def clip(text: str, limit: int) -> str:
    """Cut text at a word boundary so that it fits in `limit` characters (with an ellipsis)."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:-—") + "…"
