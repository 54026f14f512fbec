"""Desk operations the engine consults on every turn: opening hours, honest waits, blocks.

`DeskPolicy` is the engine's seam to the desk's rules. The engine calls it at the top of each
turn (a blocked user), when a child asks for a person (the wait, or the after-hours message) and
when it writes a desk notice (an "after hours" marker, so desks can page the on-call list). The
desk service (`dialogs.escalation.Desk`) reads the same `DeskConfig`.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from dialogs.contacts import render as render_contacts
from dialogs.flows.base import TurnContext
from dialogs.hours import OpeningHours, load_hours
from dialogs.messages import Inbound
from dialogs.ports import CaseRecord, Stores, UserRecord
from dialogs.taxonomy import Risk

# Markers on desk notices (`Outbound.meta`) written outside opening hours.
AFTER_HOURS = "after_hours"
PAGE = "page"
ON_CALL = "on-call"
# Fewer answered cases than this in the window: the estimate falls back to the setting.
MIN_SAMPLES = 3


@dataclass(frozen=True)
class DeskConfig:
    """The desk's rules. Defaults suit tests and an engine nobody configured: always open."""

    hours: OpeningHours = field(default_factory=OpeningHours.always_open)
    capacity: int = 3
    reannounce_after: timedelta = timedelta(minutes=10)
    queue_update_after: timedelta = timedelta(minutes=15)
    estimate_window: timedelta = timedelta(days=7)
    estimate_sample: int = 50
    staff_locale: str = "ru"
    region: str = "ru"  # whose emergency contacts the after-hours notice shows

    @classmethod
    def load(
        cls,
        *,
        hours_file: Path | None = None,
        capacity: int = 3,
        reannounce_minutes: int = 10,
        queue_update_minutes: int = 15,
        estimate_days: int = 7,
        staff_locale: str = "ru",
        region: str = "ru",
    ) -> DeskConfig:
        """The running bot's configuration: hours from `hours_file` (default: the data file)."""
        return cls(
            hours=load_hours(hours_file),
            capacity=capacity,
            reannounce_after=timedelta(minutes=reannounce_minutes),
            queue_update_after=timedelta(minutes=queue_update_minutes),
            estimate_window=timedelta(days=estimate_days),
            staff_locale=staff_locale,
            region=region,
        )


class DeskPolicy:
    """What the engine asks of the desk's rules during a turn."""

    def __init__(self, config: DeskConfig | None = None) -> None:
        self.config = config or DeskConfig()

    # ------------------------------------------------------------------ blocked users
    async def screen(
        self,
        repos: Stores,
        user: UserRecord,
        ctx: TurnContext,
        inbound: Inbound,
        is_danger: Callable[[Inbound], bool],
        now: datetime,
    ) -> bool:
        """True when this update is used up: the user is blocked. They get one neutral reply
        per block and nothing else happens; a danger signal, or a critical case already open,
        lets the turn through so that a supervisor is still reached."""
        block = await repos.blocks.blocking(user.channel, user.external_id, now)
        if block is None:
            return False
        if is_danger(inbound):
            return False
        case = await repos.cases.open_for_user(user.id)
        if case is not None and case.risk == Risk.CRITICAL.value:
            return False
        if await repos.blocks.mark_notified(block, now):
            contacts = render_contacts(self.config.region, ctx.locale)
            ctx.say(ctx.t("blocked.notice") + "\n" + contacts)
        return True

    # ------------------------------------------------------------------ waiting
    async def estimate_minutes(
        self, repos: Stores, position: int, now: datetime, fallback_minutes: int
    ) -> int:
        """A rough, honest wait: the median of recent first-response times (per place in the
        queue) when there are enough of them, else the configured minutes per case; rounded
        up to 5 minutes."""
        samples = await repos.desk.recent_first_responses(
            now - self.config.estimate_window, self.config.estimate_sample
        )
        per_case = statistics.median(samples) if len(samples) >= MIN_SAMPLES else fallback_minutes
        minutes = max(1.0, position * per_case)
        return max(5, 5 * math.ceil(minutes / 5))

    def wait_words(self, ctx: TurnContext, minutes: int) -> str:
        if minutes >= 90:
            return ctx.t("counselling.wait.hours", n=round(minutes / 60))
        return ctx.t("counselling.wait.minutes", n=minutes)

    async def waiting_text(
        self,
        repos: Stores,
        ctx: TurnContext,
        case: CaseRecord,
        position: int,
        now: datetime,
        *,
        fallback_minutes: int,
        again: bool = False,
    ) -> str:
        """What a child hears on joining the queue (or coming back to it). Outside opening
        hours: when counsellors are back, their place, and the emergency contacts."""
        hours = self.config.hours
        if not hours.is_open(now):
            back = hours.describe_next(now, ctx.locale, ctx.catalogue)
            return (
                ctx.t("counselling.after_hours", case=case.id, position=position, back=back)
                + "\n\n"
                + ctx.t("emergency.contacts.head")
                + "\n"
                + render_contacts(self.config.region, ctx.locale)
            )
        if again:
            return ctx.t("counselling.still_waiting", case=case.id, position=position)
        wait = await self.estimate_minutes(repos, position, now, fallback_minutes)
        return ctx.t(
            "counselling.waiting", case=case.id, position=position, wait=self.wait_words(ctx, wait)
        )

    # ------------------------------------------------------------------ desk notices
    def notice_meta(self, case: CaseRecord, now: datetime) -> dict[str, str]:
        """Markers for a desk notice: outside hours, and for a critical case, page on-call."""
        if self.config.hours.is_open(now):
            return {}
        meta = {AFTER_HOURS: "1"}
        if case.risk == Risk.CRITICAL.value:
            meta[PAGE] = ON_CALL
        return meta


__all__ = ["AFTER_HOURS", "ON_CALL", "PAGE", "DeskConfig", "DeskPolicy"]
