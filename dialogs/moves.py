"""The flow machine side of a turn: fire a flow's trigger, move between flows, ask the prompt.

`FlowMoves` runs the current flow's machine (`dialogs.flows`) on the conversation and carries
out a flow's hand-over through the conversation machine (`dialogs.conversation`); it also
draws the step's buttons ("talk to a person" on every step, once) and answers free text where
a button was expected.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from dialogs.conversation import Conversation
from dialogs.flows import FLOWS
from dialogs.flows.base import FlowSpec, Option, Step, TurnContext, build_machine
from dialogs.flows.names import IN_CHAT, Flow
from dialogs.messages import Button, Outbound
from dialogs.ports import ArticleLike, KnowledgeSource
from dialogs.render import article_page
from dialogs.turn import Turn

Buttons = tuple[tuple[Button, ...], ...]
# An article's own buttons: the step's buttons may join them on the same message.
ARTICLE_PAYLOADS = ("g|more=", "g|article=")


def buttons(ctx: TurnContext, items: Sequence[tuple[str, str]], columns: int = 1) -> Buttons:
    """Buttons from (label key, payload) pairs, `columns` to a row."""
    made = [Button(ctx.t(label), payload) for label, payload in items]
    return tuple(tuple(made[i : i + columns]) for i in range(0, len(made), columns))


class FlowMoves:
    def __init__(self, kb: KnowledgeSource, article_chars: int) -> None:
        self.kb = kb
        self.article_chars = article_chars
        self.machines = {name: build_machine(spec) for name, spec in FLOWS.items()}
        self.conversation = Conversation()

    # ---------------------------------------------------------------- the flow's machine
    async def trigger(self, turn: Turn, trigger: str, **kwargs: Any) -> bool:
        """Fire `trigger` on the conversation's flow; hand over to another flow and prompt as
        needed. A trigger the step does not take: free text is answered, a button is stale."""
        conv, ctx = turn.conv, turn.ctx
        machine = self.machines[conv.flow]
        if trigger not in machine.get_triggers(conv.state):
            if trigger == "text":
                await self.fallback(turn, str(kwargs.get("text", "")))
            else:
                self.stale(turn)
            return False
        model = FLOWS[conv.flow].model(ctx)
        machine.add_model(model, initial=conv.state)
        before = conv.state
        try:
            done = bool(await cast(Any, model).trigger(trigger, **kwargs))
            after = model.state
        finally:
            machine.remove_model(model)
        if await turn.repos.users.get(turn.user.id) is None:
            return done  # the turn erased the user
        if ctx.switch is not None:
            self._hand_over(turn)
            return done
        conv.state = after
        if after != before or not ctx.prompted:
            self.prompt(turn, reprompt=after == before and not ctx.prompted)
        else:
            self.attach_buttons(turn)
        return done

    def _hand_over(self, turn: Turn) -> None:
        """The flow asked to leave (`TurnContext.go`): the conversation machine moves it."""
        ctx = turn.ctx
        assert ctx.switch is not None
        flow, state = ctx.switch
        ctx.switch = None
        if flow == Flow.COUNSELLING:
            return  # the hand-over to a person has moved the conversation already
        self.enter(turn, flow, state)

    def enter(self, turn: Turn, flow: str, state: str | None = None) -> None:
        """Move the conversation to `flow` at `state` (its start by default), ask its prompt."""
        self.conversation.enter(turn.conv, turn.ctx.data, flow, state)
        turn.ctx.prompted = False
        self.prompt(turn)

    def hand_over(self, turn: Turn, case: Any) -> None:
        """Into the counsellor queue (or chat) for `case`."""
        self.conversation.move(turn.conv, turn.ctx.data, "hand_over", case=case)
        turn.ctx.prompted = True
        turn.ctx.switch = (Flow.COUNSELLING, turn.conv.state)

    def move(self, turn: Turn, trigger: str, **kwargs: Any) -> None:
        """Any other declared move between flows (`closed_away`, `blocked`)."""
        self.conversation.move(turn.conv, turn.ctx.data, trigger, **kwargs)

    # ---------------------------------------------------------------- options and buttons
    def visible(self, turn: Turn, step: Step) -> list[Option]:
        role = turn.ctx.role if turn.ctx.data.get("role") else "child"
        return [o for o in step.options if role in o.roles]

    def option_for_text(self, turn: Turn, text: str) -> Option | None:
        """A typed label or option number counts as pressing that button."""
        step = self.step(turn)
        options = self.visible(turn, step)
        folded = text.casefold().strip(" .!")
        for opt in options:
            if turn.ctx.t(opt.label).casefold() == folded:
                return opt
        if folded.isdecimal() and not step.free_text and 1 <= int(folded) <= len(options):
            return options[int(folded) - 1]
        return None

    def option_for_payload(self, turn: Turn, payload: str) -> tuple[FlowSpec, Option] | None:
        """The option a button's payload names, if it belongs to the current step."""
        from dialogs.flows import BY_CODE

        parts = payload.split("|")
        spec = BY_CODE.get(parts[0]) if len(parts) == 3 else None
        if spec is None or spec.name != turn.conv.flow or parts[1] != turn.conv.state:
            return None
        step = spec.step(turn.conv.state)
        option = next((o for o in self.visible(turn, step) if o.value == parts[2]), None)
        return (spec, option) if option is not None else None

    def step(self, turn: Turn) -> Step:
        return FLOWS[turn.conv.flow].step(turn.conv.state)

    def step_buttons(self, turn: Turn) -> Buttons:
        conv, ctx = turn.conv, turn.ctx
        spec = FLOWS[conv.flow]
        step = spec.step(conv.state)
        options = self.visible(turn, step)
        made = [Button(ctx.t(o.label), f"{spec.code}|{step.name}|{o.value}") for o in options]
        cols = max(step.columns, 1)
        rows = [tuple(made[i : i + cols]) for i in range(0, len(made), cols)]
        triggers = {o.trigger for o in options}
        in_chat = spec.name == Flow.COUNSELLING and step.name in IN_CHAT
        # "Talk to a person" on every step, once; "back to the menu" outside the menu and chat.
        if spec.name != Flow.COUNSELLING and "person" not in triggers:
            rows.append((Button(ctx.t("menu.person"), "g|person"),))
        if spec.name != Flow.START and not in_chat and "menu" not in triggers:
            rows.append((Button(ctx.t("menu.back"), "g|menu"),))
        return tuple(rows)

    # ---------------------------------------------------------------- saying
    def prompt(self, turn: Turn, *, reprompt: bool = False) -> None:
        """Ask the current step's question with its buttons."""
        ctx = turn.ctx
        step = self.step(turn)
        rows = self.step_buttons(turn)
        if step.prompt:
            ctx.say(ctx.t(step.prompt), rows)
        elif rows and not self.attach_buttons(turn):
            # The last message has buttons of its own ("read more"): the step's go below.
            key = "menu.ask" if turn.conv.flow == Flow.START else "next.ask"
            ctx.say(ctx.t("fallback.continue" if reprompt else key), rows)
        ctx.prompted = True

    def attach_buttons(self, turn: Turn) -> bool:
        """Put the current step's buttons on the last message to the user, if it has none but
        an article's own ("read more", a linked article): those stay first."""
        ctx = turn.ctx
        if not ctx.out or ctx.out[-1].to != ctx.address:
            return False
        last = ctx.out[-1]
        if not all(b.payload.startswith(ARTICLE_PAYLOADS) for row in last.buttons for b in row):
            return False
        rows = self.step_buttons(turn)
        if not rows:
            return True
        ctx.out[-1] = Outbound(to=last.to, text=last.text, buttons=(*last.buttons, *rows))
        return True

    def stale(self, turn: Turn) -> None:
        turn.ctx.say(turn.ctx.t("stale.button"))
        self.prompt(turn, reprompt=True)

    async def fallback(self, turn: Turn, text: str) -> None:
        """Free text where a button was expected: answer it from the knowledge base if we can."""
        ctx = turn.ctx
        audience = "parent" if ctx.is_parent else "child"
        hits = self.kb.search(text, ctx.locale, audience, 1) if text else []
        if not hits or not self.show_article(turn, hits[0].article, intro="fallback.answer"):
            ctx.say(ctx.t("fallback.none"))
        step = self.step(turn)
        ctx.say(ctx.t(step.prompt or "fallback.continue"), self.step_buttons(turn))
        ctx.prompted = True

    # ---------------------------------------------------------------- articles
    def show_article(
        self, turn: Turn, article: ArticleLike, number: int = 0, *, intro: str | None = None
    ) -> bool:
        """One screen of an article: the summary first (with its title, or inside `intro`),
        "read more" while there is more, and a button for each article it links to."""
        ctx = turn.ctx
        page = article_page(article, number, self.article_chars)
        if page is None:
            return False
        text = page.text
        if number == 0:
            title = article.title
            text = ctx.t(intro, title=title, body=text) if intro else f"{title}\n\n{text}"
        rows: list[tuple[Button, ...]] = []
        if page.more:
            more = f"g|more={article.id}:{number + 1}"
            rows.append((Button(ctx.t("article.more"), more),))
        for target in page.related[:2]:
            linked = self.kb.get(target, ctx.locale)
            if linked is not None:
                label = ctx.t("article.open", title=linked.title)
                rows.append((Button(label, f"g|article={target}"),))
        ctx.say(text, tuple(rows))
        return True

    def show_more(self, turn: Turn, value: str) -> bool:
        """A "read more" or a linked article's button (`id:page` or `id`): False when the
        payload names no such article or page (a forged or old button)."""
        article_id, _, number = value.partition(":")
        article = self.kb.get(article_id, turn.ctx.locale) if article_id else None
        if article is None or (number and not number.isdecimal()):
            return False
        return self.show_article(turn, article, int(number or 0))
