"""Hypothesis drives the engine's entry with random texts, payloads and orderings: no exception
escapes and no conversation ends in a state its flow does not have."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dialogs.engine import DialogEngine, EngineConfig
from dialogs.flows import FLOWS
from dialogs.messages import Channel, ContentKind, Inbound
from knowledge_base import KnowledgeBase
from storage.db import Database
from storage.repositories import Repos

VALID_PAYLOADS = [
    f"{spec.code}|{step.name}|{opt.value}"
    for spec in FLOWS.values()
    for step in spec.steps
    for opt in step.options
] + [
    "g|menu",
    "g|person",
    "g|lang=en",
    "g|lang=ru",
    "g|forget=yes",
    "g|forget=no",
    "g|silence=continue",
    "g|silence=restart",
]

texts = st.one_of(
    st.text(max_size=200),
    st.sampled_from(
        [
            "/start",
            "/menu",
            "/help",
            "/lang",
            "/forget",
            "/x",
            "привет",
            "1",
            "2",
            "меня травят",
            "хочу умереть",
            "Да",
            "нет",
            "",
            " ",
            "🔪🩸",
        ]
    ),
)
events = st.lists(
    st.tuples(
        st.sampled_from(["a", "b"]),
        st.one_of(
            texts.map(lambda t: ("text", t)),
            st.sampled_from(VALID_PAYLOADS).map(lambda p: ("payload", p)),
            st.text(max_size=80).map(lambda p: ("payload", p)),
            st.sampled_from(list(ContentKind)).map(lambda k: ("kind", k)),
        ),
    ),
    min_size=1,
    max_size=25,
)

_KB = KnowledgeBase.load()


async def _drive(batch: list[tuple[str, tuple[str, object]]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite+aiosqlite:///{Path(tmp) / 'f.db'}")
        await db.create_all()
        engine = DialogEngine(db, kb=_KB, config=EngineConfig(flood_burst=1000))
        for n, (user, (kind, value)) in enumerate(batch):
            inbound = Inbound(
                channel=Channel.CONSOLE,
                user_id=user,
                chat_id=user,
                update_id=str(n),
                text=value if kind == "text" else None,  # type: ignore[arg-type]
                payload=value if kind == "payload" else None,  # type: ignore[arg-type]
                kind=value if kind == "kind" else ContentKind.TEXT,  # type: ignore[arg-type]
            )
            out = await engine.handle(inbound)
            assert all(o.text or o.attachments or o.desk_event for o in out)
        async with db.session() as s:
            repos = Repos(s)
            for user in ("a", "b"):
                found = await repos.users.find("console", user)
                if found is None:
                    continue
                conv = await repos.conversations.for_user(found.id)
                if conv is not None:
                    assert conv.flow in FLOWS
                    assert conv.state in FLOWS[conv.flow].state_names
        await db.dispose()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events)
def test_random_input_never_breaks_the_engine(batch: list[tuple[str, tuple[str, object]]]) -> None:
    asyncio.run(_drive(batch))
