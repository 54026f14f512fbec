"""/forget removes every copy: after a child's case (their words, a note and a risk note by the
counsellor, the journal of their updates, the replies in the outbox, the desk notices quoting
them), every table read back decrypted holds none of the child's words; the case is closed as
"child erased their data", its counsellor is told, and the audit trail says that an erasure
happened and nothing more."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from bot.app import build_app
from bot.settings import Settings
from dialogs.messages import DESK, Channel, DeskEvent, Inbound
from knowledge_base import KnowledgeBase
from storage.models import Base
from storage.repositories import Repos

CANARY = "канарейка-4412"
CHILD = "7001"


def _from_child(n: int, **content: str) -> Inbound:
    return Inbound(Channel.TELEGRAM, CHILD, CHILD, locale_hint="ru", update_id=str(n),
                   **content)  # type: ignore[arg-type]


async def test_forget_leaves_no_copy_of_the_childs_words(
    tmp_path: Path, kb: KnowledgeBase
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'f.db'}"
    app = build_app(Settings(_env_file=None, database_url=url,  # type: ignore[call-arg]
                             keys_file=tmp_path / "keys.json"), kb=kb)
    await app.db.create_all()
    try:
        await app.handle(_from_child(1, text="привет"))
        await app.handle(_from_child(2, payload="st|role|child"))
        await app.handle(_from_child(3, payload="g|person"))
        await app.handle(_from_child(4, text=f"меня зовут {CANARY}, живу на Ленина 5"))
        counsellor = await app.desk.add_counsellor("Анна", "console", "anna")
        case = (await app.desk.queue())[0]
        assert (await app.desk.take(counsellor, case.id)).ok
        assert (await app.desk.note(counsellor, case.id, f"адрес {CANARY}")).ok
        assert (await app.desk.set_risk(counsellor, case.id, "high", f"{CANARY} в опасности")).ok
        assert await _holding(app, CANARY), "the test's words are stored before /forget"
        await app.handle(_from_child(5, text="/forget"))
        told = await app.handle(_from_child(6, payload="g|forget=yes"))
        assert any("стёр" in o.text or "удал" in o.text for o in told if not o.to.is_desk)
        left = [o for o in told if o.to.channel == DESK and o.desk_event == DeskEvent.CHILD_LEFT]
        assert left, "the counsellor is told at once"
        holding = await _holding(app, CANARY)
        assert holding == [], f"copies left after /forget: {holding}"
        async with app.db.session() as s:
            repos = Repos(s)
            stored = await repos.cases.get(case.id)
            assert stored is not None and (stored.status, stored.outcome, stored.user_id) == (
                "closed", "child-erased", None
            )
        trail = await app.desk.audit_trail(case.id)
        assert ("child_erased", "") in [(action, detail) for _, _, action, detail in trail]
        assert all(CANARY not in detail for *_, detail in trail)
    finally:
        await app.close()


async def _holding(app: object, needle: str) -> list[str]:
    """Every table, every row, every column, read back through the ORM (decrypted)."""
    found = []
    async with app.db.session() as s:  # type: ignore[attr-defined]
        for mapper in Base.registry.mappers:
            model = mapper.class_
            for row in (await s.execute(select(model))).scalars():
                for column in mapper.columns:
                    value = getattr(row, column.key, None)
                    if needle in repr(value):
                        found.append(f"{model.__tablename__}.{column.key}")
    return found
