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
