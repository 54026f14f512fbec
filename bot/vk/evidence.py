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
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import requests

from bot.evidence import EvidenceStore, EvidenceTooLarge, safe_suffix
from dialogs.messages import Channel, DeskEvent, Outbound
from storage.repositories import Repos

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)

CHANNEL = str(Channel.VK)
COLLECT_ON = {DeskEvent.CASE_OPENED, DeskEvent.CHILD_MESSAGE, DeskEvent.CASE_RAISED}
CHUNK = 64 * 1024
DOWNLOAD_TIMEOUT = 120.0


@dataclass(frozen=True, slots=True)
class _Pending:
    id: int
    url: str
    size: int | None
    mime: str | None


async def _chunks(response: requests.Response) -> AsyncIterator[bytes]:
    """A blocking `requests` download as an async stream, one chunk per worker-thread call."""
    iterator: Iterator[bytes] = response.iter_content(CHUNK)
    while True:
        chunk: bytes | None = await asyncio.to_thread(next, iterator, None)
        if chunk is None:
            return
        if chunk:
            yield chunk


class VkEvidenceCollector:
    """A desk listener (`Delivery.register_desk`) that keeps the VK files of a case."""

    def __init__(self, app: App, store: EvidenceStore, session: requests.Session) -> None:
        self.app = app
        self.store = store
        self.session = session
        self._busy: dict[int, asyncio.Lock] = {}

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
        """Download the case's VK files not stored yet; returns how many were stored."""
        lock = self._busy.setdefault(case_id, asyncio.Lock())
        try:
            async with lock:
                return await self._collect(case_id)
        finally:
            if not lock.locked() and self._busy.get(case_id) is lock:
                del self._busy[case_id]

    async def _collect(self, case_id: int) -> int:
        async with self.app.db.session() as session:
            pending = [
                _Pending(a.id, a.file_ref, a.size, a.mime)
                for a in await Repos(session).attachments.for_case(case_id)
                if not a.stored_path and a.channel == CHANNEL
            ]
        kept = 0
        for item in pending:
            if await self._fetch(case_id, item):
                kept += 1
        return kept

    async def _fetch(self, case_id: int, item: _Pending) -> bool:
        if not self.store.accepts(item.size) or urlparse(item.url).scheme not in ("http", "https"):
            log.info("case %s: evidence file %s not downloaded, reference kept", case_id, item.id)
            return False
        try:
            response = await asyncio.to_thread(
                self.session.get, item.url, stream=True, timeout=DOWNLOAD_TIMEOUT
            )
            try:
                response.raise_for_status()
                length = response.headers.get("Content-Length", "")
                if length.isdigit() and not self.store.accepts(int(length)):
                    raise EvidenceTooLarge(self.store.max_bytes)
                suffix = safe_suffix(urlparse(item.url).path, item.mime)
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
