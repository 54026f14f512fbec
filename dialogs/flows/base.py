"""How a flow is declared: steps (states with their prompt and options) and `transitions` rules.

A flow module declares a `FlowSpec`; the engine builds one shared `AsyncMachine` per flow and adds
a conversation's model to it for the length of one update (`add_model`/`remove_model`), restoring
the state stored in the database. Diagrams are drawn from the same declaration.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from transitions.extensions.asyncio import AsyncMachine

from dialogs.messages import Address, Attachment, Button, Outbound

if TYPE_CHECKING:
    from dialogs.catalogue import Catalogue


@dataclass(frozen=True, slots=True)
class Option:
    """A button of a step: its answer value, its label's catalogue key, the trigger it fires."""

    value: str
    label: str
    trigger: str = "answer"
    roles: tuple[str, ...] = ("child", "parent")
    # An answer that means danger: the safety policy takes it (a `dialogs.safety.Source`
    # value) with this case category (None: the flow's `danger_category` of its answers).
    danger: str | None = None
    category: str | None = None


@dataclass(frozen=True, slots=True)
class Step:
    """A state: what the bot asks on entering it, and what input it takes."""

    name: str
    prompt: str | None = None
    options: tuple[Option, ...] = ()
    free_text: bool = False
    attachments: bool = False
    columns: int = 1


@dataclass(frozen=True, slots=True)
class FlowSpec:
    name: str
    code: str
    initial: str
    steps: tuple[Step, ...]
    transitions: tuple[dict[str, Any], ...]
    model: type[FlowModel]
    # The case category of a danger answer that names none, from the answers so far.
    danger_category: Callable[[dict[str, Any]], str] | None = None

    def step(self, name: str) -> Step:
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(f"{self.name} has no step {name!r}")

    @property
    def state_names(self) -> list[str]:
        return [s.name for s in self.steps]


class Services(Protocol):
    """What a flow may ask of the engine during a turn."""

    async def advice(self, ctx: TurnContext, topics: list[str]) -> None: ...

    async def answer_question(self, ctx: TurnContext, query: str) -> bool: ...

    async def other_answers(self, ctx: TurnContext) -> None: ...

    async def keep_evidence(
        self, ctx: TurnContext, attachments: tuple[Attachment, ...]
    ) -> int: ...

    async def relay_to_desk(self, ctx: TurnContext, text: str) -> None: ...

    async def escalate(
        self, ctx: TurnContext, *, category: str | None = None, risk: str | None = None
    ) -> None: ...

    async def child_left(self, ctx: TurnContext) -> None: ...

    async def rate(self, ctx: TurnContext, rating: int | None, comment: str | None) -> None: ...


@dataclass
class TurnContext:
    """Everything one turn of a flow sees and produces."""

    address: Address
    locale: str
    role: str
    data: dict[str, Any]
    catalogue: Catalogue
    services: Services
    user_id: int
    out: list[Outbound] = field(default_factory=list)
    switch: tuple[str, str | None] | None = None
    prompted: bool = False

    @property
    def is_parent(self) -> bool:
        return self.role == "parent"

    def t(self, key: str, **values: object) -> str:
        return self.catalogue.t(key, self.locale, parent=self.is_parent, **values)

    def say(self, text: str, buttons: tuple[tuple[Button, ...], ...] = ()) -> None:
        self.out.append(Outbound(to=self.address, text=text, buttons=buttons))

    def go(self, flow: str, state: str | None = None) -> None:
        """Leave this flow after the turn: the engine enters `flow` at `state` (or its start)."""
        self.switch = (flow, state)


class FlowModel:
    """The object `transitions` drives. Subclasses hold a flow's callbacks and guards."""

    state: str

    def __init__(self, ctx: TurnContext) -> None:
        self.ctx = ctx

    # Guards shared by many flows: they read the answer value of the event.
    def said_yes(self, event: Any) -> bool:
        return bool(event.kwargs.get("value") == "yes")

    def said_no(self, event: Any) -> bool:
        return bool(event.kwargs.get("value") == "no")

    async def to_person(self, event: Any) -> None:
        await self.ctx.services.escalate(self.ctx)

    def to_menu(self, event: Any) -> None:
        self.ctx.go("start", "menu")

    def store(self, event: Any) -> None:
        """Keep the answer given in the state the event left."""
        self.ctx.data[event.transition.source] = event.kwargs.get("value")


def build_machine(spec: FlowSpec) -> AsyncMachine:
    return AsyncMachine(
        model=None,
        states=spec.state_names,
        # "exit" names the flow a transition hands over to: for diagrams, not for transitions.
        transitions=[{k: v for k, v in t.items() if k != "exit"} for t in spec.transitions],
        initial=spec.initial,
        auto_transitions=False,
        send_event=True,
        queued="model",
    )


def mermaid(spec: FlowSpec) -> str:
    """The flow as a Mermaid state diagram, drawn from its declaration."""
    lines = ["stateDiagram-v2", f"    [*] --> {spec.initial}"]
    exits_seen: set[str] = set()
    for tr in spec.transitions:
        sources = tr["source"] if isinstance(tr["source"], list) else [tr["source"]]
        label = tr["trigger"]
        cond = tr.get("conditions")
        if cond:
            label += f" [{cond if isinstance(cond, str) else ', '.join(cond)}]"
        unless = tr.get("unless")
        if unless:
            label += f" [not {unless if isinstance(unless, str) else ', '.join(unless)}]"
        for src in sources:
            dest = tr.get("dest", src)
            target = tr.get("exit")
            if dest is None and target:
                node = f"to_{target.replace('.', '_')}"
                if node not in exits_seen:
                    lines.append(f'    state "→ {target}" as {node}')
                    exits_seen.add(node)
                lines.append(f"    {src} --> {node}: {label}")
            else:
                lines.append(f"    {src} --> {dest if dest is not None else src}: {label}")
    lines.extend(_danger_edges(spec))
    return "\n".join(lines)


def _danger_edges(spec: FlowSpec) -> list[str]:
    """Answers the flow declares as danger go to the safety policy, whatever else happens."""
    edges = [
        f"    {step.name} --> to_safety: {option.value} [{option.danger}]"
        for step in spec.steps
        for option in step.options
        if option.danger is not None
    ]
    return ['    state "→ safety policy" as to_safety', *edges] if edges else []
