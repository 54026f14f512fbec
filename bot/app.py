"""Wiring: one `build_app(settings)` builds the database, knowledge base, engine, desk and
delivery; channels attach themselves to it. No globals are read inside handlers."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta

from bot import metrics
from bot.delivery import Delivery
from bot.settings import Settings
from dialogs.engine import DialogEngine, EngineConfig
from dialogs.escalation import Desk
from dialogs.messages import DeskEvent, Inbound, Outbound
from knowledge_base import KnowledgeBase
from storage import crypto
from storage.db import Database

log = logging.getLogger(__name__)
_ALERTS = (DeskEvent.CASE_OPENED, DeskEvent.CASE_RAISED)


@dataclass
class App:
    settings: Settings
    db: Database
    kb: KnowledgeBase
    engine: DialogEngine
    desk: Desk
    delivery: Delivery = field(default_factory=Delivery)

    async def handle(self, inbound: Inbound) -> list[Outbound]:
        """Handle one inbound message and deliver everything it produced."""
        channel = str(inbound.channel)
        started = time.perf_counter()
        out = await self.engine.handle(inbound)
        metrics.UPDATES.labels(channel).inc()
        metrics.HANDLING.labels(channel).observe(time.perf_counter() - started)
        if any(o.critical and o.desk_event in _ALERTS for o in out):
            metrics.DANGER.inc()
        await self.delivery.deliver(out)
        return out

    async def close(self) -> None:
        await self.db.dispose()


def configure_crypto(settings: Settings) -> None:
    """Set up encryption at rest from ENCRYPTION_KEYS / ID_HASH_KEY, or from a local key file
    made on first use (development: `make run` on a fresh machine)."""
    if settings.encryption_keys and settings.id_hash_key:
        keys = settings.encryption_keys.get_secret_value().split(",")
        id_key = settings.id_hash_key.get_secret_value()
    else:
        if settings.encryption_keys or settings.id_hash_key:
            raise crypto.CryptoError("set both ENCRYPTION_KEYS and ID_HASH_KEY, or neither")
        keys, id_key = crypto.local_keys(settings.keys_file)
        log.info("using the local key file %s (set ENCRYPTION_KEYS and ID_HASH_KEY in "
                 "production)", settings.keys_file)
    crypto.configure(crypto.Cipher(keys, id_key))


def build_app(
    settings: Settings, *, db: Database | None = None, kb: KnowledgeBase | None = None
) -> App:
    configure_crypto(settings)
    database = db or Database(settings.database_url)
    knowledge = kb or KnowledgeBase.load()
    engine = DialogEngine(
        database,
        kb=knowledge,
        config=EngineConfig(
            default_locale=settings.default_locale,
            max_text=settings.max_text_chars,
            silence_after=timedelta(hours=settings.silence_hours),
            minutes_per_case=settings.minutes_per_case,
        ),
    )
    return App(
        settings=settings,
        db=database,
        kb=knowledge,
        engine=engine,
        desk=Desk(engine),
        delivery=Delivery(database),
    )
