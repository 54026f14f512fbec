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


_SENTENCE_END_RE = re.compile(r"(?<=[.!?…»)])\s+")


def _split_words(text: str, limit: int) -> list[str]:
    """Pieces of one line at spaces, each within `limit` (a longer word stays whole)."""
    pieces: list[str] = []
    current = ""
    for word in text.split(" "):
        candidate = f"{current} {word}" if current else word
        if current and len(candidate) > limit:
            pieces.append(current)
            current = word
        else:
            current = candidate
    if current:
        pieces.append(current)
    return pieces


_MD_LINK_RE = re.compile(r"\[[^\]]*\]\([^)]*\)")
_GLUE = "\x00"  # stands for a space inside a link while a line is split


def _split_line(line: str, limit: int) -> list[str]:
    """One over-long line as pieces within `limit`: at sentence ends first, then at spaces.

    Spaces inside markdown links are glued first, so a link is never split.
    """
    glued = _MD_LINK_RE.sub(lambda m: m.group(0).replace(" ", _GLUE), line)
    return [piece.replace(_GLUE, " ") for piece in _split_glued(glued, limit)]


def _split_glued(line: str, limit: int) -> list[str]:
    pieces: list[str] = []
    for sentence in _SENTENCE_END_RE.split(line):
        parts = [sentence] if len(sentence) <= limit else _split_words(sentence, limit)
        for part in parts:
            if pieces and len(pieces[-1]) + 1 + len(part) <= limit:
                pieces[-1] = f"{pieces[-1]} {part}"
            else:
                pieces.append(part)
    return pieces


def _chunks(body: str, limit: int) -> list[str]:
    """Paragraphs of markdown (a heading stays with the text after it), split when too long."""
    paragraphs = [p.strip("\n") for p in re.split(r"\n[ \t]*\n", body) if p.strip()]
    merged: list[str] = []
    carry = ""
    for paragraph in paragraphs:
        lines = paragraph.splitlines()
        if all(HEADING_RE.match(line) for line in lines):
            carry = f"{carry}\n\n{paragraph}" if carry else paragraph
            continue
        merged.append(f"{carry}\n{paragraph}" if carry else paragraph)
        carry = ""
    if carry:
        merged.append(carry)
    chunks: list[str] = []
    for paragraph in merged:
        if len(paragraph) <= limit:
            chunks.append(paragraph)
            continue
        # Too long for one page: whole lines (list items) together, long lines by sentences.
        current = ""
        for line in paragraph.splitlines():
            for piece in [line] if len(line) <= limit else _split_line(line, limit):
                if current and len(current) + 1 + len(piece) > limit:
                    chunks.append(current)
                    current = piece
                else:
                    current = f"{current}\n{piece}" if current else piece
        if current:
            chunks.append(current)
    return chunks


def paginate(body: str, limit: int) -> tuple[str, ...]:
    """Markdown split into pages of at most `limit` characters, for "read more" in a chat.

    Pages end at paragraph boundaries; a paragraph longer than a page is split between lines,
    then between sentences, then between words, never inside a word or a link, and nothing is
    left out or replaced with an ellipsis. Only a single word longer than `limit` can make a
    page longer.
    """
    if limit < 1:
        raise ValueError("limit must be positive")
    pages: list[str] = []
    current = ""
    for chunk in _chunks(body, limit):
        if current and len(current) + 2 + len(chunk) > limit:
            pages.append(current)
            current = chunk
        else:
            current = f"{current}\n\n{chunk}" if current else chunk
    if current:
        pages.append(current)
    return tuple(pages)


def clip(text: str, limit: int) -> str:
    """Cut text at a word boundary so that it fits in `limit` characters (with an ellipsis)."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:-—") + "…"
