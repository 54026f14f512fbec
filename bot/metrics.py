"""Prometheus metrics of the running bot, served at /metrics."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily

REGISTRY = CollectorRegistry(auto_describe=True)
# Figures read from the database, the same for every worker: exported by one worker only
# (`bot.http.exports_shared`), so that adding up the workers never counts them twice.
SHARED = CollectorRegistry(auto_describe=True)

UPDATES = Counter(
    "helpline_updates_total", "Inbound updates handled", ["channel"], registry=REGISTRY
)
HANDLING = Histogram(
    "helpline_handling_seconds",
    "Time to handle one inbound update",
    ["channel"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    registry=REGISTRY,
)
QUEUE = Gauge("helpline_queue_length", "Waiting cases by risk", ["risk"], registry=SHARED)
WAITING = Gauge(
    "helpline_oldest_wait_seconds",
    "Waiting time of the oldest waiting case by risk",
    ["risk"],
    registry=SHARED,
)
OUTBOX = Gauge("helpline_outbox_backlog", "Outbound messages not yet delivered", registry=SHARED)
SEND_ERRORS = Counter(
    "helpline_send_errors_total",
    "Failed sends by channel and kind",
    ["channel", "kind"],
    registry=REGISTRY,
)
FLOOD_REFUSED = Counter(
    "helpline_flood_refused_total",
    "Updates refused beyond a flood's one 'slow down', unhandled (a long text read whole first)",
    ["channel"],
    registry=REGISTRY,
)
DANGER = Counter(
    "helpline_danger_signals_total", "Inbound texts triage flagged as danger", registry=REGISTRY
)
# What shows trouble (#16): how long a child waits for a reply, end to end; how far behind the
# journal and the outbox are; waits for a database connection, for the send pacer; deadlocks
# and retries. The queue, backlog and age gauges are shared figures read from the database at
# scrape time (`SHARED`): one worker exports them.
REPLY_LATENCY = Histogram(
    "helpline_reply_latency_seconds",
    "From an update's arrival to its first reply handed to the platform",
    ["channel"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60),
    registry=REGISTRY,
)
JOURNAL_LAG = Gauge(
    "helpline_journal_lag_seconds",
    "Age of the oldest journalled update not yet handled (0 when none)",
    registry=SHARED,
)
OUTBOX_OLDEST = Gauge(
    "helpline_outbox_oldest_seconds",
    "Age of the oldest outbound message not yet delivered (0 when none)",
    registry=SHARED,
)
POOL_WAITERS = Gauge(
    "helpline_db_pool_checked_out", "Database connections in use by this worker",
    registry=REGISTRY,
)
PACER_WAIT = Histogram(
    "helpline_pacer_wait_seconds",
    "Time a send waited for the platform's rate limit",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
    registry=REGISTRY,
)


class RetryCounts:
    """`helpline_retries_total{kind}`: work tried again, counted where it happens (the engine's
    `retries`: "database" for an update, "deadlock" for a desk action) and read at scrape."""

    def __init__(self) -> None:
        self.sources: list[Callable[[], Mapping[str, int]]] = []

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "helpline_retries", "Work tried again, by kind", labels=["kind"]
        )
        totals: dict[str, int] = {}
        for source in self.sources:
            for kind, n in source().items():
                totals[kind] = totals.get(kind, 0) + n
        for kind, n in sorted(totals.items()):
            family.add_metric([kind], n)
        yield family


RETRIES = RetryCounts()
REGISTRY.register(RETRIES)
