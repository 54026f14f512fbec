"""Validator for the article files: `check(root)` lists problems, `main(argv)` prints them.

Checks: front matter present and valid YAML; required fields with the right types (id equal to
the file name, title, audience, topics from the fixed list, keywords, sources); every id present
in every locale; `[text](kb:id)` links pointing to existing articles; no H1 and no empty
sections in the body; every fixed topic covered in every locale; a chat `summary` of at most
SUMMARY_CHARS characters; no source whose `checked` date is more than a year old (with
`--strict`, also none without a date).

A source is either a string ("title — address") or a mapping:

    sources:
      - title: "Детский телефон доверия"
        url: "https://telefon-doveria.ru/"
        checked: 2026-12-02   # the day the article's facts were compared with this page
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from knowledge_base.frontmatter import (
    ParsedFile,
    field_problems,
    parse_file,
    source_checked,
    summary_problems,
)
from knowledge_base.markdown import FENCE_RE, HEADING_RE
from knowledge_base.model import ARTICLES_DIR, LOCALES, SUMMARY_CHARS, Problem, topics

MAX_SOURCE_AGE_DAYS = 365

_KB_LINK_RE = re.compile(r"\]\(kb:([^)]*)\)")
_ID_RE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def _body_problems(parsed: ParsedFile, known_ids: set[str]) -> list[Problem]:
    """Links, headings and empty sections; line numbers are lines of the file."""
    problems: list[Problem] = []
    lines = parsed.body.splitlines()
    # The last heading (file line, text) while nothing but blank lines has followed it.
    open_heading: tuple[int, str] | None = None
    in_fence = False
    for index, raw in enumerate(lines):
        line_no = parsed.body_line + index
        if FENCE_RE.match(raw):
            in_fence = not in_fence
            open_heading = None
            continue
        heading = None if in_fence else HEADING_RE.match(raw)
        if heading is not None:
            if open_heading is not None:
                problems.append(
                    Problem(parsed.path, open_heading[0], f"section {open_heading[1]!r} is empty")
                )
            level, text = len(heading.group(1)), (heading.group(2) or "").strip()
            if level == 1:
                problems.append(
                    Problem(parsed.path, line_no, "H1 heading in the body: use '##' sections")
                )
            if not text:
                problems.append(Problem(parsed.path, line_no, "heading has no text"))
            open_heading = (line_no, raw.strip())
            continue
        if raw.strip():
            open_heading = None
        if in_fence:
            continue
        for match in _KB_LINK_RE.finditer(raw):
            target = match.group(1).strip()
            if not _ID_RE.fullmatch(target):
                problems.append(
                    Problem(parsed.path, line_no, f"malformed link 'kb:{target}': expected an id")
                )
            elif target not in known_ids:
                problems.append(
                    Problem(parsed.path, line_no, f"link to unknown article 'kb:{target}'")
                )
    if open_heading is not None:
        problems.append(
            Problem(parsed.path, open_heading[0], f"section {open_heading[1]!r} is empty")
        )
    if not parsed.body.strip():
        problems.append(Problem(parsed.path, parsed.body_line, "article body is empty"))
    return problems


def _source_age_problems(parsed: ParsedFile, today: date, strict: bool) -> list[Problem]:
    """Sources checked more than a year ago (or in the future); undated ones when strict."""
    value = parsed.meta.get("sources")
    if not isinstance(value, list):
        return []
    lines = parsed.item_lines.get("sources", [])
    problems: list[Problem] = []
    for index, item in enumerate(value):
        line = lines[index] if index < len(lines) else parsed.line_of("sources")
        checked = source_checked(item)
        if checked is None:
            if strict:
                problems.append(
                    Problem(parsed.path, line, f"sources[{index}] has no checked date")
                )
        elif checked > today:
            problems.append(
                Problem(parsed.path, line, f"sources[{index}] checked in the future: {checked}")
            )
        elif (today - checked).days > MAX_SOURCE_AGE_DAYS:
            problems.append(
                Problem(
                    parsed.path,
                    line,
                    f"sources[{index}] was checked on {checked}, more than a year ago: "
                    "check the facts against it again",
                )
            )
    return problems


def undated_sources(root: Path | None = None) -> int:
    """How many sources of the articles under `root` have no checked date."""
    root = root if root is not None else ARTICLES_DIR
    count = 0
    for path in sorted(root.glob("*/*.md")):
        value = parse_file(path).meta.get("sources")
        if isinstance(value, list):
            count += sum(source_checked(item) is None for item in value)
    return count


def check(
    root: Path | None = None, *, today: date | None = None, strict: bool = False
) -> list[Problem]:
    """Validate every article under `root` (default: the package's articles folder).

    `today` (default: the system date) dates the sources; `strict` also fails undated ones.
    """
    today = today if today is not None else date.today()
    root = root if root is not None else ARTICLES_DIR
    if not root.is_dir():
        return [Problem(root, 0, "knowledge-base folder not found")]
    present = {p.name for p in root.iterdir() if p.is_dir()}
    locales = list(LOCALES) + sorted(present - set(LOCALES))

    problems: list[Problem] = []
    files: dict[str, dict[str, ParsedFile]] = {}
    for locale in locales:
        folder = root / locale
        if not folder.is_dir():
            problems.append(Problem(folder, 0, f"locale folder {locale!r} is missing"))
        files[locale] = {p.stem: parse_file(p) for p in sorted(folder.glob("*.md"))}

    all_topics = topics()
    for locale in locales:
        known_ids = set(files[locale])
        covered: set[str] = set()
        for stem, parsed in files[locale].items():
            if not parsed.ok:
                # Without front matter, where the body starts is unknown: report just that.
                problems.extend(parsed.problems)
            else:
                problems.extend(field_problems(parsed))
                problems.extend(summary_problems(parsed, SUMMARY_CHARS))
                problems.extend(_source_age_problems(parsed, today, strict))
                problems.extend(_body_problems(parsed, known_ids))
                value = parsed.meta.get("topics")
                if isinstance(value, list):
                    covered.update(t for t in value if isinstance(t, str))
            for other in locales:
                if other != locale and (root / other).is_dir() and stem not in files[other]:
                    problems.append(
                        Problem(
                            parsed.path,
                            parsed.line_of("id"),
                            f"article {stem!r} has no {other!r} version ({other}/{stem}.md)",
                        )
                    )
        if (root / locale).is_dir():
            for topic in all_topics:
                if topic not in covered:
                    problems.append(
                        Problem(root / locale, 0, f"no {locale!r} article covers topic {topic!r}")
                    )
    return sorted(problems, key=lambda p: (str(p.path), p.line, p.message))


def _shown(path: Path) -> str:
    """A path relative to the working directory when it lies under it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def main(argv: Sequence[str] | None = None) -> int:
    """Print `path:line: message` per problem; return 1 if there are any, else 0."""
    parser = argparse.ArgumentParser(
        prog="helpline kb check", description="Validate the knowledge-base articles."
    )
    parser.add_argument(
        "root",
        nargs="?",
        type=Path,
        default=None,
        help="folder with <locale>/<id>.md files (default: the built-in articles)",
    )
    parser.add_argument(
        "--strict", action="store_true", help="also fail on sources without a checked date"
    )
    args = parser.parse_args(argv)
    problems = check(args.root, strict=args.strict)
    for problem in problems:
        print(f"{_shown(problem.path)}:{problem.line}: {problem.message}")
    if not args.strict:
        undated = undated_sources(args.root)
        if undated:
            print(
                f"note: {undated} source(s) have no checked date "
                "(python -m knowledge_base.check --strict lists them)",
                file=sys.stderr,
            )
    if problems:
        print(f"{len(problems)} problem(s)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
