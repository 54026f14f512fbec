"""Desk times in the help line's time zone, labelled ("14:05 MSK"), for every front-end."""

from __future__ import annotations

from datetime import UTC, datetime

from dialogs.hours import OpeningHours


def desk_time(moment: datetime, hours: OpeningHours, fmt: str = "%H:%M") -> str:
    """A moment as the line's wall time with its zone's abbreviation, e.g. "14:05 MSK"."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    local = aware.astimezone(hours.zone)
    return f"{local.strftime(fmt)} {local.tzname() or hours.zone.key}"


def desk_datetime(moment: datetime, hours: OpeningHours) -> str:
    return desk_time(moment, hours, "%Y-%m-%d %H:%M")
