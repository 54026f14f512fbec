"""The evidence store: files a child sent (screenshots, documents), kept with their case.

One folder (`settings.evidence_dir`), one sub-folder per case, one file per attachment row:
`<evidence_dir>/case-<case id>/<attachment id><suffix>`. A file larger than
`settings.evidence_max_bytes` is not kept: the case keeps only its platform reference, type
and size.
The store knows nothing of any platform: a channel hands it the bytes as an async stream.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
from collections.abc import AsyncIterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from bot.locks import KeyedLocks
from dialogs.messages import DeskEvent, Outbound
from storage import crypto
from storage.repositories import Repos

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)

_SUFFIX = re.compile(r"^\.[A-Za-z0-9]{1,8}$")
MIME_SUFFIXES = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/webp": ".webp",
    "image/gif": ".gif",
    "application/pdf": ".pdf",
    "text/plain": ".txt",
    "video/mp4": ".mp4",
}


class EvidenceTooLarge(Exception):
    """The file is over the store's size limit; nothing was kept."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"evidence file over the {limit}-byte limit")
        self.limit = limit


def safe_suffix(name: str | None, mime: str | None = None) -> str:
    """A short file-name suffix from a platform file name or MIME type; "" if neither is safe."""
    if name:
        suffix = Path(name).suffix.lower()
        if _SUFFIX.match(suffix):
            return suffix
    return MIME_SUFFIXES.get(mime or "", "")


class EvidenceStore:
    """Files named by case and attachment id, up to `max_bytes` each, owner-readable only."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        # Absolute: attachment rows keep the path, and the retention purge may run elsewhere.
        self.root = Path(root).resolve()
        self.max_bytes = max_bytes

    def accepts(self, size: int | None) -> bool:
        """Whether a file of `size` bytes may be kept (an unknown size is checked while saving)."""
        return size is None or size <= self.max_bytes

    def case_dir(self, case_id: int) -> Path:
        return self.root / f"case-{int(case_id)}"

    def path_for(self, case_id: int, attachment_id: int, suffix: str = "") -> Path:
        if suffix and not _SUFFIX.match(suffix):
            suffix = ""
        return self.case_dir(case_id) / f"{int(attachment_id)}{suffix}"

    async def save(
        self,
        case_id: int,
        attachment_id: int,
        chunks: AsyncIterable[bytes],
        *,
        suffix: str = "",
    ) -> Path:
        """Write the stream, encrypted, to the case's folder; raise `EvidenceTooLarge` (keeping
        nothing) when it grows past the limit. The file appears under its final name only when
        complete. Files are encrypted at rest like the transcript (`read_evidence` opens them)."""
        final = self.path_for(case_id, attachment_id, suffix)
        partial = final.with_name(final.name + ".part")
        buffer = bytearray()
        async for chunk in chunks:
            buffer.extend(chunk)
            if len(buffer) > self.max_bytes:
                raise EvidenceTooLarge(self.max_bytes)
        sealed = await asyncio.to_thread(crypto.current().encrypt_bytes, bytes(buffer))
        await asyncio.to_thread(self._prepare, final.parent)
        handle = await asyncio.to_thread(self._open, partial)
        try:
            await asyncio.to_thread(handle.write, sealed)
        except BaseException:
            await asyncio.to_thread(handle.close)
            await asyncio.to_thread(partial.unlink, True)
            raise
        await asyncio.to_thread(handle.close)
        await asyncio.to_thread(os.replace, partial, final)
        return final

    def remove_case(self, case_id: int) -> int:
        """Delete every file kept for a case (erasure, retention); returns how many there were."""
        folder = self.case_dir(case_id)
        if not folder.is_dir():
            return 0
        count = sum(1 for p in folder.iterdir() if p.is_file())
        shutil.rmtree(folder)
        return count

    def _prepare(self, folder: Path) -> None:
        # Evidence can be intimate images: only the service's own user may read it.
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)

    @staticmethod
    def _open(path: Path) -> BinaryIO:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        return os.fdopen(fd, "wb")


def read_evidence(path: Path | str) -> bytes:
    """The plain bytes of a stored evidence file (they are encrypted at rest)."""
    return crypto.current().decrypt_bytes(Path(path).read_bytes())


COLLECT_ON = {DeskEvent.CASE_OPENED, DeskEvent.CHILD_MESSAGE, DeskEvent.CASE_RAISED}


@dataclass(frozen=True, slots=True)
class PendingFile:
    """An attachment of a case whose file is not stored yet."""

    id: int
    file_ref: str
    size: int | None
    mime: str | None


class CaseEvidenceCollector:
    """A desk listener (`Delivery.register_desk`) that keeps one channel's files of a case: when
    the case opens or a file arrives for it, each file not stored yet is fetched by `_fetch`."""

    channel: str
    # Desk listeners that keep files go before the desks that show them (`Delivery`), so a
    # desk can show a file from another channel once it is kept.
    keeps_files = True

    def __init__(self, app: App, store: EvidenceStore) -> None:
        self.app = app
        self.store = store
        self._locks = KeyedLocks()

    async def send(self, message: Outbound) -> None:
        if message.case_id is None:
            return
        if message.desk_event in COLLECT_ON:
            await self.collect(message.case_id)
        elif message.desk_event is DeskEvent.CHILD_LEFT and message.text == "/forget":
            # The child erased their data: the engine deletes the rows, we delete the files.
            removed = await asyncio.to_thread(self.store.remove_case, message.case_id)
            log.info("case %s: %d evidence file(s) erased on /forget", message.case_id, removed)

    async def collect(self, case_id: int) -> int:
        """Download the case's files of this channel not stored yet; returns how many."""
        async with self._locks.hold(case_id):
            async with self.app.db.single() as session:
                pending = [
                    PendingFile(a.id, a.file_ref, a.size, a.mime)
                    for a in await Repos(session).attachments.for_case(case_id)
                    if not a.stored_path and a.channel == self.channel
                ]
            kept = 0
            for item in pending:
                if await self._fetch(case_id, item):
                    kept += 1
            return kept

    async def _fetch(self, case_id: int, item: PendingFile) -> bool:
        raise NotImplementedError
