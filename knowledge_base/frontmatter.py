"""Reading one article file: YAML front matter (with line numbers) and the markdown body."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from knowledge_base.model import AUDIENCES, Article, Problem, topics

try:  # libyaml's loader when PyYAML was built with it: parsing is several times faster.
    from yaml import CSafeLoader as SafeLoader
except ImportError:  # pragma: no cover - PyYAML without libyaml
    from yaml import SafeLoader  # type: ignore[assignment]

REQUIRED_FIELDS: tuple[str, ...] = ("id", "title", "audience", "topics", "keywords", "sources")
_LIST_FIELDS: tuple[str, ...] = ("topics", "keywords", "sources")
_SOURCE_KEYS: frozenset[str] = frozenset({"title", "url", "checked"})
_FENCE = "---"


@dataclass
class ParsedFile:
    """The raw pieces of an article file; line numbers are 1-based lines of the file."""

    path: Path
    meta: dict[str, Any] = field(default_factory=dict)
    body: str = ""
    body_line: int = 1
    key_lines: dict[str, int] = field(default_factory=dict)
    item_lines: dict[str, list[int]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the front matter was found and parsed (fields may still be wrong)."""
        return not self.problems

    def line_of(self, key: str) -> int:
        """The line of a field, or of the opening fence when the field is absent."""
        return self.key_lines.get(key, 1)


def parse_file(path: Path) -> ParsedFile:
    """Split an article into front matter and body, recording where each field is."""
    parsed = ParsedFile(path=path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        parsed.problems.append(Problem(path, 1, f"file is not valid UTF-8: {exc.reason}"))
        return parsed
    lines = text.removeprefix("\ufeff").splitlines()
    if not lines or lines[0].strip() != _FENCE:
        parsed.problems.append(
            Problem(path, 1, "front matter missing: the file must start with a '---' line")
        )
        parsed.body = text
        return parsed
    end = next((i for i in range(1, len(lines)) if lines[i].strip() == _FENCE), None)
    if end is None:
        parsed.problems.append(Problem(path, 1, "front matter is not closed by a '---' line"))
        return parsed
    parsed.body = "\n".join(lines[end + 1 :])
    parsed.body_line = end + 2
    source = "\n".join(lines[1:end])
    # Line 1 of the front matter text is line 2 of the file.
    offset = 2
    try:
        node = yaml.compose(source, Loader=SafeLoader)
        meta = yaml.load(source, Loader=SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + offset if mark is not None else 1
        reason = getattr(exc, "problem", None) or str(exc)
        parsed.problems.append(Problem(path, line, f"front matter is not valid YAML: {reason}"))
        return parsed
    if not isinstance(node, yaml.MappingNode) or not isinstance(meta, dict):
        parsed.problems.append(Problem(path, 1, "front matter must be a mapping of fields"))
        return parsed
    parsed.meta = meta
    for key_node, value_node in node.value:
        key = str(key_node.value)
        line = key_node.start_mark.line + offset
        if key in parsed.key_lines:
            parsed.problems.append(
                Problem(
                    path,
                    line,
                    f"field {key!r} appears twice (first on line {parsed.key_lines[key]})",
                )
            )
            continue
        parsed.key_lines[key] = line
        if isinstance(value_node, yaml.SequenceNode):
            parsed.item_lines[key] = [item.start_mark.line + offset for item in value_node.value]
    return parsed


def field_problems(parsed: ParsedFile) -> list[Problem]:
    """Check the required fields and their types; assumes the front matter parsed."""
    path, meta = parsed.path, parsed.meta
    problems: list[Problem] = []

    def add(key: str, message: str, line: int | None = None) -> None:
        problems.append(Problem(path, line if line is not None else parsed.line_of(key), message))

    for key in REQUIRED_FIELDS:
        if key not in meta:
            add(key, f"required field {key!r} is missing")

    if "id" in meta:
        value = meta["id"]
        if not isinstance(value, str) or not value.strip():
            add("id", "'id' must be a non-empty string")
        elif value != path.stem:
            add("id", f"id {value!r} does not match the file name {path.name!r}")
    if "title" in meta and (not isinstance(meta["title"], str) or not meta["title"].strip()):
        add("title", "'title' must be a non-empty string")
    if "audience" in meta and meta["audience"] not in AUDIENCES:
        add(
            "audience",
            f"'audience' must be one of {', '.join(AUDIENCES)}, not {meta['audience']!r}",
        )

    allowed = set(topics())
    for key in _LIST_FIELDS:
        if key not in meta:
            continue
        value = meta[key]
        if not isinstance(value, list) or not value:
            add(key, f"{key!r} must be a non-empty list")
            continue
        lines = parsed.item_lines.get(key, [])
        for index, item in enumerate(value):
            line = lines[index] if index < len(lines) else parsed.line_of(key)
            if key == "sources" and isinstance(item, dict):
                for message in _source_problems(item):
                    add(key, f"sources[{index}]: {message}", line)
                continue
            if not isinstance(item, str) or not item.strip():
                hint = " (quote it)" if isinstance(item, bool | int | float) else ""
                add(key, f"{key}[{index}] must be a non-empty string, got {item!r}{hint}", line)
            elif key == "topics" and item not in allowed:
                add(key, f"unknown topic {item!r} (see knowledge_base/data/topics.yaml)", line)
    return problems


def _source_problems(item: dict[Any, Any]) -> list[str]:
    """A source written as a mapping: title (required), url, checked (a date, YYYY-MM-DD)."""
    problems = [f"unknown key {k!r}" for k in item if k not in _SOURCE_KEYS]
    title = item.get("title")
    if not isinstance(title, str) or not title.strip():
        problems.append("'title' must be a non-empty string")
    url = item.get("url")
    if "url" in item and (not isinstance(url, str) or not url.startswith(("https://", "http://"))):
        problems.append(f"'url' must be an http(s) address, not {url!r}")
    if "checked" in item and not isinstance(item["checked"], date):
        problems.append(f"'checked' must be a date (YYYY-MM-DD), not {item['checked']!r}")
    return problems


def source_text(item: Any) -> str:
    """A source as one line for readers: "title — url" (or the string as written)."""
    if isinstance(item, dict):
        title, url = str(item.get("title", "")).strip(), item.get("url")
        return f"{title} — {url}" if url else title
    return str(item).strip()


def source_checked(item: Any) -> date | None:
    """The date a source was last checked, or None when it is not recorded."""
    checked = item.get("checked") if isinstance(item, dict) else None
    return checked if isinstance(checked, date) else None


def summary_problems(parsed: ParsedFile, limit: int) -> list[Problem]:
    """The chat summary: present, a string, and within `limit` characters."""
    line = parsed.line_of("summary")
    if "summary" not in parsed.meta:
        return [Problem(parsed.path, line, "field 'summary' is missing (the chat shows it first)")]
    value = parsed.meta["summary"]
    if not isinstance(value, str) or not value.strip():
        return [Problem(parsed.path, line, "'summary' must be a non-empty string")]
    size = len(value.strip())
    if size > limit:
        return [Problem(parsed.path, line, f"summary has {size} characters, more than {limit}")]
    return []


def to_article(parsed: ParsedFile, locale: str) -> Article:
    """Build an Article from a file that passed `field_problems`."""
    meta = parsed.meta
    return Article(
        id=str(meta["id"]),
        locale=locale,
        title=str(meta["title"]).strip(),
        audience=str(meta["audience"]),
        topics=tuple(str(t) for t in meta["topics"]),
        keywords=tuple(str(k).strip() for k in meta["keywords"]),
        sources=tuple(source_text(s) for s in meta["sources"]),
        body=parsed.body.strip("\n"),
        path=parsed.path,
        summary=str(meta.get("summary") or "").strip(),
    )
