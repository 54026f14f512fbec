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
from typing import TYPE_CHECKING

import aiohttp
from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest, TelegramNetworkError, TelegramNotFound

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

DOWNLOAD_TIMEOUT = 120


class EvidenceCollector(CaseEvidenceCollector):
    """A desk listener (registered with `Delivery.register_desk`) that keeps Telegram files."""

    channel = str(Channel.TELEGRAM)

    def __init__(self, bot: Bot, app: App, store: EvidenceStore) -> None:
        super().__init__(app, store)
        self.bot = bot

    async def _fetch(self, case_id: int, item: PendingFile) -> bool:
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
