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


def test_dialogs_reach_storage_only_through_ports() -> None:
    """dialogs/ depends on the seams in dialogs/ports.py: it imports neither storage nor
    SQLAlchemy, so the engine can run on any store that keeps the contract."""
    offenders = {
        str(p.relative_to(ROOT)): sorted(_imports(p) & {"storage", "sqlalchemy"})
        for p in (ROOT / "dialogs").rglob("*.py")
        if _imports(p) & {"storage", "sqlalchemy"}
    }
    assert offenders == {}


def test_the_database_keeps_the_dialogs_store_contract() -> None:
    """storage's unit of work offers every store and method dialogs.ports declares (mypy checks
    the signatures: storage/db.py binds Database to UnitOfWork)."""
    import inspect
    from typing import Any

    from dialogs import ports
    from storage.repositories import Repos

    repos: Any = Repos(session=None)  # type: ignore[arg-type]
    stores = {
        name: member.fget.__annotations__["return"]  # the store Protocol's name
        for name, member in inspect.getmembers(ports.Stores)
        if isinstance(member, property)
    }
    assert len(stores) == 12
    for name, store in stores.items():
        wanted = [m for m in vars(getattr(ports, store)) if not m.startswith("_")]
        assert wanted, name
        for method in wanted:
            assert callable(getattr(getattr(repos, name), method, None)), f"{name}.{method}"


def test_the_dialogs_records_are_detached_dataclasses() -> None:
    """What the stores hand the dialogs are plain dataclasses (storage/records.py turns rows
    into them), and every one of them has a row kind that becomes it."""
    import dataclasses

    from dialogs import ports
    from storage.records import RECORD_OF

    records = [
        value
        for name, value in vars(ports).items()
        if name.endswith("Record") and isinstance(value, type)
    ]
    assert len(records) == 8
    for record in records:
        assert dataclasses.is_dataclass(record), record.__name__
    assert set(RECORD_OF.values()) == set(records)


def test_no_long_functions_in_dialogs() -> None:
    """Small functions with one job each: none in dialogs/ is over 40 lines, docstring included."""
    long = []
    for path in (ROOT / "dialogs").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > 40:
                    long.append(f"{path.relative_to(ROOT)}:{node.name} ({lines})")
    assert long == []
