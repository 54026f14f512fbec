"""Prometheus metrics of the running bot, served at /metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

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
QUEUE = Gauge("helpline_queue_length", "Waiting cases by risk", ["risk"], registry=REGISTRY)
WAITING = Gauge(
    "helpline_oldest_wait_seconds",
    "Waiting time of the oldest waiting case by risk",
    ["risk"],
    registry=REGISTRY,
)
OUTBOX = Gauge("helpline_outbox_backlog", "Outbound messages not yet delivered", registry=REGISTRY)
SEND_ERRORS = Counter(
    "helpline_send_errors_total",
    "Failed sends by channel and kind",
    ["channel", "kind"],
    registry=REGISTRY,
)
DANGER = Counter(
    "helpline_danger_signals_total", "Inbound texts triage flagged as danger", registry=REGISTRY
)
