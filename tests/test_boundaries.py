"""The architecture's boundaries, checked on the source itself."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TRANSPORTS = {"aiogram", "vk_api"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", ["dialogs", "storage", "knowledge_base"])
def test_no_transport_imports_outside_bot(package: str) -> None:
    offenders = [
        str(p.relative_to(ROOT))
        for p in (ROOT / package).rglob("*.py")
        if _imports(p) & TRANSPORTS
    ]
    assert offenders == []


def test_no_sql_outside_storage() -> None:
    """Queries are built only in storage/: nobody else imports sqlalchemy's query builders."""
    pattern = re.compile(r"from sqlalchemy import .*\b(select|update|delete|insert|text)\b")
    offenders = [
        str(p.relative_to(ROOT))
        for package in ("dialogs", "bot", "knowledge_base")
        for p in (ROOT / package).rglob("*.py")
        if pattern.search(p.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_docs_flows_is_current() -> None:
    from dialogs.diagrams import flows_markdown

    doc = ROOT / "docs" / "flows.md"
    assert doc.read_text(encoding="utf-8") == flows_markdown(), (
        "docs/flows.md is stale: run `helpline flows > docs/flows.md`"
    )
