"""All flows, by name. Each is declared in its own module."""

from __future__ import annotations

from dialogs.flows import child_report, counselling, parent_help, safety_question, start
from dialogs.flows.base import FlowSpec

FLOWS: dict[str, FlowSpec] = {
    spec.name: spec
    for spec in (
        start.FLOW,
        child_report.FLOW,
        safety_question.FLOW,
        parent_help.FLOW,
        counselling.FLOW,
    )
}
BY_CODE: dict[str, FlowSpec] = {spec.code: spec for spec in FLOWS.values()}
# The payload of every button the flows declare as danger ("not safe", "they demand photos"):
# such a press goes in the danger lane (`DialogEngine.urgent`), ahead of ordinary work.
DANGER_PAYLOADS: frozenset[str] = frozenset(
    f"{spec.code}|{step.name}|{option.value}"
    for spec in FLOWS.values()
    for step in spec.steps
    for option in step.options
    if option.danger is not None
)
