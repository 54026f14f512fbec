"""Evidence files sent on Telegram, downloaded into the evidence store once they belong to a case.

The engine stores every screenshot or document as an attachment row (file id, type, size) at once;
the file itself is fetched (getFile, then the file download) when its case is opened, or when it
arrives for a case that is already open. The collector listens to desk notices for that, so it
works whether or not a Telegram staff group is configured.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import aclosing
from dataclasses import dataclass
from typing import TYPE_CHECKING

import aiohttp
from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest, TelegramNetworkError, TelegramNotFound

from bot.evidence import EvidenceStore, EvidenceTooLarge, safe_suffix
from bot.telegram.locks import KeyedLocks
from dialogs.messages import Channel, DeskEvent, Outbound
from storage.repositories import Repos

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)

COLLECT_ON = {DeskEvent.CASE_OPENED, DeskEvent.CHILD_MESSAGE, DeskEvent.CASE_RAISED}
DOWNLOAD_TIMEOUT = 120


@dataclass(frozen=True, slots=True)
class _Pending:
    id: int
    file_ref: str
    size: int | None
    mime: str | None


class EvidenceCollector:
    """A desk listener (registered with `Delivery.register_desk`) that keeps Telegram files."""

    def __init__(self, bot: Bot, app: App, store: EvidenceStore) -> None:
        self.bot = bot
        self.app = app
        self.store = store
        self._locks = KeyedLocks()

    async def send(self, message: Outbound) -> None:
        if message.case_id is None:
            return
        if message.desk_event in COLLECT_ON:
            await self.collect(message.case_id)
        elif message.desk_event is DeskEvent.CHILD_LEFT and message.text == "/forget":
            # The child erased their data: the engine deletes the attachment rows, we the files.
            removed = await asyncio.to_thread(self.store.remove_case, message.case_id)
            log.info("case %s: %d evidence file(s) erased on /forget", message.case_id, removed)

    async def collect(self, case_id: int) -> int:
        """Download the case's Telegram files not stored yet; returns how many were stored."""
        async with self._locks.hold(case_id):
            return await self._collect(case_id)

    async def _collect(self, case_id: int) -> int:
        async with self.app.db.session() as session:
            pending = [
                _Pending(a.id, a.file_ref, a.size, a.mime)
                for a in await Repos(session).attachments.for_case(case_id)
                if not a.stored_path and a.channel == Channel.TELEGRAM
            ]
        kept = 0
        for item in pending:
            if await self._fetch(case_id, item):
                kept += 1
        return kept

    async def _fetch(self, case_id: int, item: _Pending) -> bool:
        if not self.store.accepts(item.size):
            log.info("case %s: evidence file %s is over the size limit, reference kept",
                     case_id, item.id)
            return False
        try:
            tg_file = await self.bot.get_file(item.file_ref)
            if not self.store.accepts(tg_file.file_size) or tg_file.file_path is None:
                log.info("case %s: evidence file %s is over the size limit, reference kept",
                         case_id, item.id)
                return False
            url = self.bot.session.api.file_url(self.bot.token, tg_file.file_path)
            stream = self.bot.session.stream_content(
                url, timeout=DOWNLOAD_TIMEOUT, raise_for_status=True
            )
            async with aclosing(stream) as chunks:
                path = await self.store.save(
                    case_id, item.id, chunks, suffix=safe_suffix(tg_file.file_path, item.mime)
                )
        except EvidenceTooLarge:
            log.info("case %s: evidence file %s is over the size limit, reference kept",
                     case_id, item.id)
            return False
        except (TelegramBadRequest, TelegramNotFound) as exc:
            # Files over 20 MB cannot be fetched by bots; a file id can also expire.
            log.warning("case %s: Telegram refused evidence file %s: %s", case_id, item.id,
                        exc.message)
            return False
        except (TelegramNetworkError, aiohttp.ClientError, TimeoutError) as exc:
            log.error("case %s: evidence file %s not downloaded (%s); retried with the case's "
                      "next message", case_id, item.id, type(exc).__name__)
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
