"""The article validator: the real articles pass; each kind of problem is caught on its line."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from knowledge_base import topics
from knowledge_base.check import check, main
from knowledge_base.model import Problem


def front(
    article_id: str,
    *,
    title: str = "A title",
    audience: str = "child",
    topic_list: str = "[cyberbullying]",
    keywords: str = "[one, two]",
    sources: str = '["Someone — example.org"]',
    summary: str | None = "A short, kind answer.",
) -> str:
    """Front matter: id on line 2, title 3, audience 4, topics 5, keywords 6, sources 7,
    summary 8 (left out when None)."""
    return (
        "---\n"
        f"id: {article_id}\n"
        f"title: {title}\n"
        f"audience: {audience}\n"
        f"topics: {topic_list}\n"
        f"keywords: {keywords}\n"
        f"sources: {sources}\n"
        + (f"summary: {summary}\n" if summary is not None else "")
        + "---\n"
    )


BODY = "Intro paragraph.\n\n## Steps\n1. Do this.\n"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A valid knowledge base: one article per locale that covers every topic."""
    everything = "[" + ", ".join(topics()) + "]"
    for locale in ("ru", "en"):
        folder = tmp_path / locale
        folder.mkdir()
        (folder / "all-topics.md").write_text(
            front("all-topics", topic_list=everything) + BODY, encoding="utf-8"
        )
    return tmp_path


def write(root: Path, locale: str, name: str, text: str, *, pair: bool = True) -> Path:
    """Write an article, and a valid twin in the other locale so pairing stays quiet."""
    path = root / locale / f"{name}.md"
    path.write_text(text, encoding="utf-8")
    if pair:
        other = "en" if locale == "ru" else "ru"
        (root / other / f"{name}.md").write_text(front(name) + BODY, encoding="utf-8")
    return path


def only(problems: list[Problem]) -> Problem:
    assert len(problems) == 1, "\n".join(map(str, problems))
    return problems[0]


def test_real_articles_pass() -> None:
    problems = check()
    assert problems == [], "\n".join(map(str, problems))


def test_valid_fixture_passes(root: Path) -> None:
    assert check(root) == []


def test_missing_front_matter(root: Path) -> None:
    path = write(root, "ru", "no-front", "Just text.\n\n## Section\nText.\n")
    problem = only(check(root))
    assert (problem.path, problem.line) == (path, 1)
    assert "front matter missing" in problem.message


def test_unclosed_front_matter(root: Path) -> None:
    path = write(root, "ru", "unclosed", "---\nid: unclosed\ntitle: x\n")
    problem = only(check(root))
    assert (problem.path, problem.line) == (path, 1)
    assert "not closed" in problem.message


def test_invalid_yaml_reports_its_line(root: Path) -> None:
    text = front("bad-yaml").replace("keywords: [one, two]", "keywords: [one, two")
    path = write(root, "en", "bad-yaml", text + BODY)
    problem = only(check(root))
    assert problem.path == path
    assert "not valid YAML" in problem.message
    assert problem.line in (6, 7)  # the unclosed list on line 6, noticed at the latest on 7


def test_front_matter_must_be_a_mapping(root: Path) -> None:
    path = write(root, "en", "a-list", "---\n- id\n- title\n---\nBody.\n")
    problem = only(check(root))
    assert (problem.path, problem.line) == (path, 1)
    assert "mapping" in problem.message


def test_missing_field(root: Path) -> None:
    text = front("no-sources").replace('sources: ["Someone — example.org"]\n', "")
    path = write(root, "ru", "no-sources", text + BODY)
    problem = only(check(root))
    assert (problem.path, problem.line) == (path, 1)
    assert "'sources' is missing" in problem.message


def test_id_must_equal_file_name(root: Path) -> None:
    path = write(root, "ru", "right-name", front("wrong-name") + BODY)
    problem = only(check(root))
    assert (problem.path, problem.line) == (path, 2)
    assert "does not match the file name" in problem.message


@pytest.mark.parametrize(
    ("override", "line", "fragment"),
    [
        ({"title": '""'}, 3, "'title' must be a non-empty string"),
        ({"title": "[a, b]"}, 3, "'title' must be a non-empty string"),
        ({"audience": "teachers"}, 4, "'audience' must be one of"),
        ({"topic_list": "[]"}, 5, "'topics' must be a non-empty list"),
        ({"topic_list": "cyberbullying"}, 5, "'topics' must be a non-empty list"),
        ({"topic_list": "[cyberbullying, homework]"}, 5, "unknown topic 'homework'"),
        ({"keywords": "[]"}, 6, "'keywords' must be a non-empty list"),
        ({"keywords": "[one, 42]"}, 6, "keywords[1] must be a non-empty string, got 42"),
        ({"sources": "example.org"}, 7, "'sources' must be a non-empty list"),
        ({"sources": '[""]'}, 7, "sources[0] must be a non-empty string"),
    ],
)
def test_field_types(root: Path, override: dict[str, str], line: int, fragment: str) -> None:
    path = write(root, "en", "typed", front("typed", **override) + BODY)
    problem = only(check(root))
    assert (problem.path, problem.line) == (path, line)
    assert fragment in problem.message


def test_list_items_are_reported_on_their_own_line(root: Path) -> None:
    text = (
        "---\nid: block-lists\ntitle: Lists\naudience: both\n"
        "topics:\n  - cyberbullying\n  - homework\n"
        "keywords:\n  - fine\n  - no\n"
        "sources:\n  - example.org\nsummary: Short.\n---\n"
    )
    path = write(root, "ru", "block-lists", text + BODY)
    problems = check(root)
    assert [(p.path, p.line) for p in problems] == [(path, 7), (path, 10)]
    assert "unknown topic 'homework'" in problems[0].message
    assert "got False (quote it)" in problems[1].message


def test_duplicate_field(root: Path) -> None:
    text = front("twice").replace("title: A title\n", "title: A title\ntitle: Again\n")
    path = write(root, "en", "twice", text + BODY)
    problem = only(check(root))
    assert (problem.path, problem.line) == (path, 4)
    assert "appears twice" in problem.message


def test_ids_must_be_paired_across_locales(root: Path) -> None:
    path = write(root, "ru", "only-russian", front("only-russian") + BODY, pair=False)
    problem = only(check(root))
    assert (problem.path, problem.line) == (path, 2)
    assert "no 'en' version" in problem.message


def test_internal_links_must_point_to_existing_ids(root: Path) -> None:
    body = "Intro, see [all](kb:all-topics).\n\n## Steps\nRead [this](kb:no-such-id) too.\n"
    path = write(root, "en", "linking", front("linking") + body)
    problem = only(check(root))
    # Front matter takes lines 1-9; the body starts on line 10, the bad link is on line 13.
    assert (problem.path, problem.line) == (path, 13)
    assert "kb:no-such-id" in problem.message


def test_malformed_internal_link(root: Path) -> None:
    path = write(root, "ru", "odd-link", front("odd-link") + "See [it](kb:Some Article).\n")
    problem = only(check(root))
    assert (problem.path, problem.line) == (path, 10)
    assert "malformed link" in problem.message


def test_empty_sections(root: Path) -> None:
    body = (
        "Intro.\n"  # 9
        "\n"  # 10
        "## Empty before another heading\n"  # 11
        "\n"  # 12
        "## Fine\n"  # 13
        "Text.\n"  # 14
        "\n"  # 15
        "## Empty at the end\n"  # 16
        "\n"  # 17
    )
    path = write(root, "ru", "empty-sections", front("empty-sections") + body)
    problems = check(root)
    assert [(p.path, p.line) for p in problems] == [(path, 12), (path, 17)]
    assert all("is empty" in p.message for p in problems)


def test_heading_inside_code_fence_is_not_a_section(root: Path) -> None:
    body = "Intro.\n\n## Code\n```\n## not a heading\n```\n"
    write(root, "en", "fenced", front("fenced") + body)
    assert check(root) == []


def test_h1_in_body(root: Path) -> None:
    path = write(root, "en", "with-h1", front("with-h1") + "# Big title\nText.\n")
    problem = only(check(root))
    assert (problem.path, problem.line) == (path, 10)
    assert "H1" in problem.message


def test_every_topic_must_be_covered_per_locale(root: Path) -> None:
    everything_but_one = "[" + ", ".join(t for t in topics() if t != "deepfakes") + "]"
    (root / "en" / "all-topics.md").write_text(
        front("all-topics", topic_list=everything_but_one) + BODY, encoding="utf-8"
    )
    problem = only(check(root))
    assert (problem.path, problem.line) == (root / "en", 0)
    assert "'deepfakes'" in problem.message


def test_missing_locale_folder(tmp_path: Path) -> None:
    (tmp_path / "ru").mkdir()
    problems = check(tmp_path)
    assert Problem(tmp_path / "en", 0, "locale folder 'en' is missing") in problems


def test_main_prints_problems_and_exit_code(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(root)]) == 0
    assert capsys.readouterr().out == ""

    path = write(root, "ru", "right-name", front("wrong-name") + BODY)
    assert main([str(root)]) == 1
    out = capsys.readouterr().out.strip()
    assert out.endswith(
        f"{path.name}:2: id 'wrong-name' does not match the file name 'right-name.md'"
    )


def test_summary_is_required(root: Path) -> None:
    path = write(root, "ru", "no-summary", front("no-summary", summary=None) + BODY)
    problem = only(check(root))
    assert (problem.path, problem.line) == (path, 1)
    assert "'summary' is missing" in problem.message


def test_summary_longer_than_a_screen(root: Path) -> None:
    path = write(root, "en", "long", front("long", summary="word " * 130) + BODY)
    problem = only(check(root))
    assert (problem.path, problem.line) == (path, 8)
    assert "more than 600" in problem.message


TODAY = date(2026, 12, 2)
DATED = '[{{title: "Helpline", url: "https://example.org/", checked: {when}}}]'


@pytest.mark.parametrize(
    ("when", "fragment"),
    [
        ("2025-12-01", "more than a year ago"),
        ("2027-01-01", "in the future"),
        ('"last week"', "'checked' must be a date"),
    ],
)
def test_source_dates(root: Path, when: str, fragment: str) -> None:
    text = front("dated", sources=DATED.format(when=when)) + BODY
    path = write(root, "ru", "dated", text)
    problem = only(check(root, today=TODAY))
    assert (problem.path, problem.line, fragment in problem.message) == (path, 7, True)


def test_source_checked_within_a_year_passes(root: Path) -> None:
    write(root, "ru", "fresh", front("fresh", sources=DATED.format(when="2025-12-02")) + BODY)
    assert check(root, today=TODAY) == []


def test_source_mapping_fields(root: Path) -> None:
    sources = '[{title: "", url: "example.org", when: 2026-01-01}]'
    write(root, "en", "bad-source", front("bad-source", sources=sources) + BODY)
    messages = sorted(p.message for p in check(root, today=TODAY))
    assert len(messages) == 3
    assert any("'title' must be" in m for m in messages)
    assert any("'url' must be an http(s) address" in m for m in messages)
    assert any("unknown key 'when'" in m for m in messages)


def test_undated_sources_fail_only_when_strict(root: Path) -> None:
    assert check(root, today=TODAY) == []
    problems = check(root, today=TODAY, strict=True)
    assert problems and all("no checked date" in p.message for p in problems)


def test_real_sources_are_fresh_today() -> None:
    assert [str(p) for p in check() if "checked" in p.message] == []
