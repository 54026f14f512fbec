"""The evidence store: files named by case and attachment, a size limit, owner-only files."""

from __future__ import annotations

import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.evidence import EvidenceStore, EvidenceTooLarge, read_evidence, safe_suffix


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_a_file_is_kept_under_its_case_and_attachment(tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path / "ev", max_bytes=100)
    path = await store.save(42, 7, chunks(b"abc", b"def"), suffix=".jpg")
    assert path == tmp_path / "ev" / "case-42" / "7.jpg"
    assert read_evidence(path) == b"abcdef"
    assert b"abcdef" not in path.read_bytes(), "encrypted at rest"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


async def test_a_file_over_the_limit_is_not_kept(tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path, max_bytes=10)
    assert store.accepts(10) and not store.accepts(11) and store.accepts(None)
    with pytest.raises(EvidenceTooLarge):
        await store.save(1, 1, chunks(b"x" * 6, b"y" * 6))
    folder = tmp_path / "case-1"
    assert not folder.exists() or list(folder.iterdir()) == []


async def test_remove_case_erases_its_files(tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path, max_bytes=10)
    await store.save(3, 1, chunks(b"a"))
    await store.save(3, 2, chunks(b"b"), suffix=".pdf")
    assert store.remove_case(3) == 2
    assert not (tmp_path / "case-3").exists()
    assert store.remove_case(3) == 0


def test_suffixes_come_only_from_safe_names() -> None:
    assert safe_suffix("photos/file_1.JPG") == ".jpg"
    assert safe_suffix("../../etc/passwd") == ""
    assert safe_suffix("x.tar.gz/../../evil") == ""
    assert safe_suffix(None, "application/pdf") == ".pdf"
    assert safe_suffix("noext", None) == ""
