"""docs/flows.md is valid Mermaid: every ```mermaid block is a `stateDiagram-v2` made only of
statements Mermaid accepts, with ids and labels it does not misread, and with the states of the
flow it draws. A small structural validator (no Mermaid parser is needed offline); when the
optional `mermaid-parser-py` is installed, Mermaid's own parser reads every block too."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dialogs.conversation import Flow
from dialogs.flows import FLOWS

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "flows.md"

ID = r"[A-Za-z_][A-Za-z0-9_]*"
# Words Mermaid's state diagram grammar reads as keywords, not as a state's id.
KEYWORDS = {"state", "note", "direction", "class", "classDef", "style", "click", "as", "end"}
DECLARE = re.compile(rf'^state "(?P<label>[^"]*)" as (?P<id>{ID})$')
TRANSITION = re.compile(
    rf"^(?P<src>{ID}|\[\*\]) --> (?P<dest>{ID}|\[\*\])(?:\s*:\s*(?P<label>.*))?$"
)
NOTE = re.compile(rf"^note (?:left|right) of {ID}\s*:\s*\S.*$")
# In a transition's label: ';' ends the statement (the rest becomes stray states), braces open a
# composite state, '%%' starts a comment, an arrow or a '#...;' entity is read as markup.
BAD_IN_LABEL = re.compile(r"[;{}]|%%|-->|#\w+;")


@dataclass
class Diagram:
    declared: dict[str, str] = field(default_factory=dict)  # id -> label
    edges: list[tuple[str, str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ids(self) -> set[str]:
        return {n for s, d, _ in self.edges for n in (s, d) if n != "[*]"}


def validate(block: str) -> Diagram:
    """Check one Mermaid block as a stateDiagram-v2 of the statements we write."""
    lines = [line.strip() for line in block.strip().splitlines()]
    diagram = Diagram()
    err = diagram.errors.append
    if not lines or lines[0] != "stateDiagram-v2":
        err(f"first line is not stateDiagram-v2: {lines[:1]}")
        return diagram
    used: set[str] = set()
    for n, line in enumerate(lines[1:], 2):
        if not line or line.startswith("%%") or NOTE.match(line):
            continue
        if declared := DECLARE.match(line):
            node = declared["id"]
            if node in diagram.declared:
                err(f"line {n}: {node} declared twice")
            if node in used:
                err(f"line {n}: {node} declared after its first use")
            diagram.declared[node] = declared["label"]
        elif edge := TRANSITION.match(line):
            label = edge["label"]
            if label is not None and (not label.strip() or BAD_IN_LABEL.search(label)
                                      or label.count('"') % 2):
                err(f"line {n}: a label Mermaid misreads: {label!r}")
            if edge["src"] == "[*]" == edge["dest"]:
                err(f"line {n}: [*] --> [*]")
            diagram.edges.append((edge["src"], edge["dest"], label or ""))
            used.update((edge["src"], edge["dest"]))
        else:
            err(f"line {n}: not a statement of ours: {line!r}")
    for node in sorted(diagram.ids | set(diagram.declared)):
        if node in KEYWORDS:
            err(f"{node} is a Mermaid keyword")
    folded: dict[str, str] = {}
    for node in sorted(diagram.ids | set(diagram.declared)):
        if folded.setdefault(node.casefold(), node) != node:
            err(f"{node} and {folded[node.casefold()]} differ only in case")
    for node in diagram.declared:
        if node not in diagram.ids:
            err(f"{node} is declared but in no transition")
    if not any(s == "[*]" for s, _, _ in diagram.edges):
        err("no [*] --> start")
    return diagram


def blocks(text: str) -> list[str]:
    found = re.findall(r"^```mermaid\n(.*?)^```", text, flags=re.S | re.M)
    assert text.count("```mermaid") == len(found), "an unclosed mermaid block"
    return found


def test_every_block_of_docs_flows_is_a_valid_state_diagram() -> None:
    found = blocks(DOC.read_text(encoding="utf-8"))
    assert len(found) == 1 + len(FLOWS) == 6
    for block in found:
        diagram = validate(block)
        assert diagram.errors == [], block


def test_each_flow_diagram_draws_that_flow() -> None:
    """Ids in a flow's diagram are its states, or declared (the exits to other flows)."""
    text = DOC.read_text(encoding="utf-8")
    for name, spec in FLOWS.items():
        section = text.split(f"\n## {name}\n", 1)[1]
        diagram = validate(blocks(section)[0])
        undeclared = diagram.ids - set(diagram.declared)
        assert undeclared <= set(spec.state_names), (name, undeclared - set(spec.state_names))
        assert set(spec.state_names) <= diagram.ids, (name, set(spec.state_names) - diagram.ids)
        assert ("[*]", spec.initial, "") in diagram.edges, name
    moves = validate(blocks(text)[0])
    assert moves.ids <= {str(f) for f in Flow} | {"any"}, moves.ids


@pytest.mark.parametrize(
    "block",
    [
        "graph TD\n    a --> b",
        "stateDiagram-v2\n    [*] --> a\n    a --> b: x; y",
        "stateDiagram-v2\n    [*] --> a\n    a --> b: {x}",
        'stateDiagram-v2\n    [*] --> a\n    a --> b: say "hi',
        "stateDiagram-v2\n    [*] --> a\n    a-b --> c",
        "stateDiagram-v2\n    [*] --> a\n    a --> b:",
        'stateDiagram-v2\n    [*] --> a\n    state "x" as b\n    state "y" as b\n    a --> b',
        'stateDiagram-v2\n    [*] --> a\n    a --> b\n    state "late" as b',
        'stateDiagram-v2\n    [*] --> a\n    state "lonely" as c',
        "stateDiagram-v2\n    [*] --> a\n    a --> A",
        "stateDiagram-v2\n    [*] --> note",
        "stateDiagram-v2\n    [*] --> a\n    a -> b",
        "stateDiagram-v2\n    a --> b",
    ],
)
def test_the_validator_rejects_what_mermaid_misreads(block: str) -> None:
    assert validate(block).errors


def test_the_validator_takes_every_statement_we_write() -> None:
    block = """stateDiagram-v2
    %% a comment
    [*] --> a
    state "→ somewhere else" as to_else
    a --> b
    a --> b: answer [said_yes]
    b --> to_else: person
    b --> [*]
    note right of a : the start
    """
    assert validate(block).errors == []


def test_mermaid_itself_parses_every_block() -> None:
    """Only where `mermaid-parser-py` (Mermaid's parser run by pythonmonkey) is installed."""
    parser = pytest.importorskip("mermaid_parser.parser")
    for block in blocks(DOC.read_text(encoding="utf-8")):
        assert parser.MermaidParser().parse(block)["graph_type"] == "stateDiagram"
