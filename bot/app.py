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


def build_app(
    settings: Settings, *, db: Database | None = None, kb: KnowledgeBase | None = None
) -> App:
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
