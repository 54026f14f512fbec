"""Evidence sent on VK (photos, documents), downloaded into the evidence store (`bot/evidence.py`)
once it belongs to a case.

The engine keeps each file as an attachment row at once, with VK's URL (the largest photo size,
or the document's URL) as its reference; this collector, a desk listener like the Telegram one,
downloads the files when the case is opened, or when they arrive for a case already open.
VK's file URLs are signed and expire, so they are fetched then and not later.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import requests

from bot.evidence import (
    CaseEvidenceCollector,
    EvidenceStore,
    EvidenceTooLarge,
    PendingFile,
    safe_suffix,
)
from dialogs.messages import Channel
from storage.repositories import Repos

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)

CHANNEL = str(Channel.VK)
CHUNK = 64 * 1024
DOWNLOAD_TIMEOUT = 120.0


async def _chunks(response: requests.Response) -> AsyncIterator[bytes]:
    """A blocking `requests` download as an async stream, one chunk per worker-thread call."""
    iterator: Iterator[bytes] = response.iter_content(CHUNK)
    while True:
        chunk: bytes | None = await asyncio.to_thread(next, iterator, None)
        if chunk is None:
            return
        if chunk:
            yield chunk


class VkEvidenceCollector(CaseEvidenceCollector):
    """A desk listener (`Delivery.register_desk`) that keeps the VK files of a case."""

    channel = CHANNEL

    def __init__(self, app: App, store: EvidenceStore, session: requests.Session) -> None:
        super().__init__(app, store)
        self.session = session

    async def _fetch(self, case_id: int, item: PendingFile) -> bool:
        url = item.file_ref  # VK's signed URL of the largest size, or of the document
        if not self.store.accepts(item.size) or urlparse(url).scheme not in ("http", "https"):
            log.info("case %s: evidence file %s not downloaded, reference kept", case_id, item.id)
            return False
        try:
            response = await asyncio.to_thread(
                self.session.get, item.file_ref, stream=True, timeout=DOWNLOAD_TIMEOUT
            )
            try:
                response.raise_for_status()
                length = response.headers.get("Content-Length", "")
                if length.isdigit() and not self.store.accepts(int(length)):
                    raise EvidenceTooLarge(self.store.max_bytes)
                suffix = safe_suffix(urlparse(item.file_ref).path, item.mime)
                path = await self.store.save(case_id, item.id, _chunks(response), suffix=suffix)
            finally:
                response.close()
        except EvidenceTooLarge:
            log.info(
                "case %s: evidence file %s is over the size limit, reference kept",
                case_id,
                item.id,
            )
            return False
        except requests.RequestException as exc:
            log.error(
                "case %s: evidence file %s not downloaded (%s); retried with the case's "
                "next message",
                case_id,
                item.id,
                type(exc).__name__,
            )
            return False
        async with self.app.db.session() as session:
            rows = await Repos(session).attachments.for_case(case_id)
            row = next((a for a in rows if a.id == item.id), None)
            if row is not None:
                row.stored_path = str(path)
        if row is None:  # erased (/forget) while we were downloading
            await asyncio.to_thread(path.unlink, True)
            return False
        return True
