"""Issue 9: several `helpline run` workers behind a load balancer, one PostgreSQL.

Three real worker processes (`python -m bot run`, Telegram by webhook, a shared
TELEGRAM_WEBHOOK_SECRET, each on its own WEBHOOK_PORT) serve one PostgreSQL database and the fake
Bot API. The test is the load balancer: it POSTs every update, round-robin, to the next worker
with the secret header, as Telegram would to the one public webhook URL.

1. Many children at once ask safety questions: each message gets exactly one reply, the right
   one, in order, and nothing is sent twice (every reply is claimed in the outbox by exactly one
   of the workers, whichever handled the update or found it in its outbox pass).
2. Children open cases; several counsellors (registered with `helpline counsellor add`) press
   Take on the same case in the staff forum at the same moment, each press reaching a different
   worker: every case gets exactly one owner, the others are told who has it, the child hears
   "a counsellor has joined" once, and nobody ends up holding more than COUNSELLOR_CAPACITY.

One conversation's messages are sent one after another (the next once the previous one's reply
arrived: a round-robin balancer gives no order between two updates in flight on two workers);
different children write concurrently.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from sqlalchemy import func, select

from storage.db import Database
from storage.models import (
    AuditEvent,
    Case,
    Counsellor,
    InboxUpdate,
    OutboxMessage,
    ProcessedUpdate,
)
from tests.telegram.fake_api import STAFF_CHAT, TOKEN, Call, FakeTelegram

from .conftest import (
    ROOT,
    create_database,
    drop_database,
    free_port,
    helpline,
    helpline_env,
    pg_base_url,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

WORKERS = 3
SECRET = "shared-webhook-secret_for-all-workers"
CHILDREN = list(range(7001, 7037))  # 36 children asking questions
QUESTIONS_EACH = 6
CASE_CHILDREN = list(range(7101, 7109))  # 8 children asking for a person
COUNSELLORS = {8001: "anna", 8002: "boris", 8003: "vera", 8004: "gleb"}
CAPACITY = 3
HELLO = "алло, тут кто-нибудь есть?"  # what a waiting child writes: relayed, not answered
# Non-danger questions whose best article differs: each answer shows which question it answers.
CANDIDATES = [
    "меня травят в вк",
    "взломали аккаунт",
    "как сохранить скриншоты",
    "фейковая страница от моего имени",
    "мошенники в игре",
    "меня выкинули из беседы класса",
    "как придумать надежный пароль",
    "как закрыть страницу вконтакте",
    "сделали дипфейк с моим лицом",
    "как проверить новость фейк или нет",
    "как заблокировать человека в телеграме",
    "слишком много сижу в телефоне",
]
REPLY_METHODS = {"sendMessage", "sendPhoto", "sendDocument", "copyMessage"}
WAIT = 20.0  # for one reply; generous for a loaded two-core machine


class Recorder(FakeTelegram):
    """The fake Bot API with what the bot sent indexed by chat and by callback query."""

    def __init__(self) -> None:
        super().__init__()
        self.to_chat: dict[int, list[Call]] = defaultdict(list)
        self.answers: dict[str, list[Call]] = defaultdict(list)
        self._waiting: dict[int, asyncio.Event] = {}

    async def _record(self, call: Call) -> None:
        await super()._record(call)
        if call.method == "answerCallbackQuery":
            self.answers[str(call["callback_query_id"])].append(call)
        if call.method in REPLY_METHODS and call.status == 200 and call.chat_id is not None:
            self.to_chat[call.chat_id].append(call)
            event = self._waiting.pop(call.chat_id, None)
            if event is not None:
                event.set()

    async def replies(self, chat: int, count: int, wait: float = WAIT) -> list[Call]:
        """The first `count` messages to `chat`, waiting for them."""
        deadline = time.monotonic() + wait
        while len(self.to_chat[chat]) < count:
            event = self._waiting.setdefault(chat, asyncio.Event())
            remaining = deadline - time.monotonic()
            try:
                await asyncio.wait_for(event.wait(), max(remaining, 0.01))
            except TimeoutError:
                got = [c.text[:50] for c in self.to_chat[chat]]
                raise AssertionError(f"chat {chat}: {count} messages expected, got {got}")\
                    from None
        return self.to_chat[chat][:count]


@dataclass
class Worker:
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Cluster:
    fake: Recorder
    workers: list[Worker]
    database_url: str
    http: aiohttp.ClientSession
    turn: itertools.count[int] = field(default_factory=itertools.count)
    posted: int = 0

    def next_worker(self) -> Worker:
        return self.workers[next(self.turn) % len(self.workers)]

    async def post(self, update: dict[str, Any], worker: Worker | None = None) -> None:
        """The load balancer: one update to one worker, as Telegram POSTs it."""
        target = worker or self.next_worker()
        async with self.http.post(f"{target.url}/tg", json=update,
                                  headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}) as resp:
            if resp.status != 200:
                await asyncio.sleep(0.5)  # let the worker write its log
                raise AssertionError(f"worker :{target.port} answered {resp.status}:\n"
                                     f"{target.log.read_text(errors='replace')[-4000:]}")
        self.posted += 1

    def update(self, body: dict[str, Any]) -> dict[str, Any]:
        body["update_id"] = next(self.fake._update_ids)
        return body

    def logs(self) -> str:
        return "\n".join(f"--- worker :{w.port}\n{w.log.read_text(errors='replace')[-3000:]}"
                         for w in self.workers)


def _questions() -> list[tuple[str, str]]:
    """(question, title of the article the bot answers it with), checked here, not assumed."""
    from dialogs.triage import assess
    from knowledge_base import KnowledgeBase

    kb = KnowledgeBase.load()
    chosen: list[tuple[str, str]] = []
    for q in CANDIDATES:
        # Questions answered from the knowledge base: never danger, and never a check-in
        # ("are you safe?"), alone or after any two of the others (the conversation context).
        contexts = [(), *((a, b) for a in CANDIDATES for b in CANDIDATES)]
        if any(assess(q, "ru", c).danger or assess(q, "ru", c).check_in for c in contexts):
            continue
        hits = kb.search(q, "ru", "child", 3)
        if hits and hits[0].article.title not in {t for _, t in chosen}:
            chosen.append((q, hits[0].article.title))
    assert len(chosen) >= QUESTIONS_EACH + 2, chosen
    return chosen


def _spawn(env: dict[str, str], log: Path) -> Worker:
    """`python -m bot run` on a port of its own (starting it does not block)."""
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", "run"], cwd=ROOT, env={**env, "WEBHOOK_PORT": str(port)},
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    return Worker(port, process, log)


async def _wait_healthy(worker: Worker, http: aiohttp.ClientSession, deadline: float) -> None:
    while time.monotonic() < deadline:
        if worker.process.poll() is not None:
            raise AssertionError(f"worker :{worker.port} exited: {worker.log.read_text()[-3000:]}")
        with contextlib.suppress(aiohttp.ClientError):
            async with http.get(f"{worker.url}/healthz") as resp:
                if resp.status == 200:
                    return
        await asyncio.sleep(0.1)
    raise AssertionError(f"worker :{worker.port} not up: {worker.log.read_text()[-3000:]}")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    base = pg_base_url()
    tmp = tmp_path_factory.mktemp("workers")
    fake = Recorder()
    await fake.start()
    url = await create_database(base, "helpline_workers")
    hours = tmp / "hours.yaml"  # always open: the test must not depend on the time of day
    hours.write_text("timezone: UTC\nweekly:\n" + "".join(
        f"  {d}: ['00:00-24:00']\n" for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")))
    env = helpline_env(
        url, tmp,
        TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_API_URL=fake.url,
        TELEGRAM_STAFF_CHAT_ID=str(STAFF_CHAT),
        # The public URL Telegram is given (the balancer's); each worker serves its path.
        TELEGRAM_WEBHOOK_URL=f"http://127.0.0.1:{free_port()}/tg",
        TELEGRAM_WEBHOOK_SECRET=SECRET,
        WEBHOOK_HOST="127.0.0.1",
        HOURS_FILE=str(hours),
        COUNSELLOR_CAPACITY=str(CAPACITY),
    )
    workers: list[Worker] = []
    http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
    try:
        await asyncio.to_thread(helpline, env, "db", "upgrade")
        # Staff are registered the production way, all at once, against the same database.
        await asyncio.gather(*(
            asyncio.to_thread(helpline, env, "counsellor", "add", name,
                              "--channel", "telegram", "--id", str(tg_id))
            for tg_id, name in COUNSELLORS.items()))
        workers.extend(_spawn(env, tmp / f"worker{n}.log") for n in range(WORKERS))
        deadline = time.monotonic() + 45
        await asyncio.gather(*(_wait_healthy(w, http, deadline) for w in workers))
        yield Cluster(fake, workers, url, http)
    finally:
        for w in workers:
            w.process.send_signal(signal.SIGTERM)
        for w in workers:
            try:
                await asyncio.to_thread(w.process.wait, 10)
            except subprocess.TimeoutExpired:
                w.process.kill()
        await http.close()
        await fake.stop()
        await drop_database(url)


async def test_every_worker_is_ready_and_guards_its_webhook(cluster: Cluster) -> None:
    for w in cluster.workers:
        async with cluster.http.get(f"{w.url}/readyz") as resp:
            body = await resp.json()
            assert resp.status == 200, body  # the database answers, the schema is at head
        async with cluster.http.post(f"{w.url}/tg", json={"update_id": 1}) as resp:
            assert resp.status == 401  # no secret: refused, nothing handled
        async with cluster.http.post(f"{w.url}/tg", json={"update_id": 1},
                                     headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"}) as r:
            assert r.status == 401
    # Every worker registered the webhook with the shared secret.
    hooks = cluster.fake.calls_of("setWebhook")
    for _ in range(50):
        if len(hooks) >= WORKERS:
            break
        await asyncio.sleep(0.1)
        hooks = cluster.fake.calls_of("setWebhook")
    assert len(hooks) == WORKERS and {h["secret_token"] for h in hooks} == {SECRET}


async def test_the_shared_figures_come_from_one_worker(cluster: Cluster) -> None:
    """The queue, backlog and age gauges are read from the one database: one worker exports
    them (whichever claimed it first, for as long as it lives), so summing never doubles
    them; every worker exports its own figures."""
    exporting = []
    for _ in range(2):  # and the same one again at the next scrape
        for w in cluster.workers:
            async with cluster.http.get(f"{w.url}/metrics") as resp:
                assert resp.status == 200
                text = await resp.text()
            assert "helpline_db_pool_checked_out" in text  # its own figures, always
            if 'helpline_queue_length{risk="critical"}' in text:
                assert "helpline_outbox_backlog" in text and "helpline_journal_lag" in text
                exporting.append(w.port)
    assert len(exporting) == 2 and len(set(exporting)) == 1, exporting


async def _child_asks(cluster: Cluster, child: int, questions: list[tuple[str, str]],
                      presses: list[str]) -> None:
    """One child: hello, "I'm a child", "ask a question", then the questions, each sent once
    the previous reply arrived."""
    fake = cluster.fake
    await cluster.post(cluster.update(fake.private_message(child, text="привет")))
    await fake.replies(child, 2)
    for count, data in ((3, "st|role|child"), (4, "st|menu|question")):
        update = cluster.update(fake.press(child, data))
        presses.append(str(update["callback_query"]["id"]))
        await cluster.post(update)
        await fake.replies(child, count)
    for n, (question, _) in enumerate(questions):
        await cluster.post(cluster.update(fake.private_message(child, text=question)))
        await fake.replies(child, 5 + n)


async def test_many_children_at_once_get_one_reply_each_in_order(cluster: Cluster) -> None:
    fake = cluster.fake
    known = _questions()
    plan = {child: [known[(i + k) % len(known)] for k in range(QUESTIONS_EACH)]
            for i, child in enumerate(CHILDREN)}
    presses: list[str] = []
    before = cluster.posted
    started = time.monotonic()
    await asyncio.gather(*(_child_asks(cluster, c, plan[c], presses) for c in CHILDREN))
    took = time.monotonic() - started
    updates = cluster.posted - before
    assert updates == len(CHILDREN) * (3 + QUESTIONS_EACH)
    # Anything sent twice would arrive after the last awaited reply: give the outbox passes of
    # all workers (one a second) time to show it.
    await asyncio.sleep(2.5)
    for child in CHILDREN:
        texts = [c.text for c in fake.to_chat[child]]
        expected = 4 + QUESTIONS_EACH
        assert len(texts) == expected, (child, [t[:40] for t in texts], cluster.logs())
        assert texts[0].startswith("Привет! Я бот линии помощи")
        assert texts[1] == "Кто ты?"
        assert texts[2] == "Чем я могу помочь?"
        assert texts[3].startswith("Напиши свой вопрос")
        for text, (question, title) in zip(texts[4:], plan[child], strict=True):
            assert text.startswith(f"Вот что я нашёл: «{title}»"), (child, question, text[:80])
    # Every button press answered once (by the worker it reached), none left spinning.
    assert all(len(fake.answers[q]) == 1 for q in presses)
    # Each update was handled exactly once, and every worker took its share.
    handled = [await _updates_handled(cluster, w) for w in cluster.workers]
    assert sum(handled) == updates and min(handled) > 0, handled
    # Nothing left behind: every update handled (its journal entry deleted, its id recorded),
    # every reply delivered (and deleted); what was sent twice would show in the texts above.
    db = Database(cluster.database_url)
    try:
        async with db.session() as s:
            unprocessed = (await s.execute(select(func.count(InboxUpdate.id)))).scalar_one()
            recorded = (await s.execute(select(func.count()).select_from(ProcessedUpdate)
                                        .where(ProcessedUpdate.channel == "telegram"))
                        ).scalar_one()
            left = (await s.execute(select(func.count(OutboxMessage.id)))).scalar_one()
    finally:
        await db.dispose()
    assert unprocessed == 0 and left == 0, (unprocessed, left)
    assert recorded == updates
    print(f"\n{updates} updates from {len(CHILDREN)} children over {WORKERS} workers: "
          f"{took:.1f}s ({updates / took:.0f}/s)")


async def _updates_handled(cluster: Cluster, worker: Worker) -> int:
    async with cluster.http.get(f"{worker.url}/metrics") as resp:
        assert resp.status == 200
        text = await resp.text()
    found = re.search(r'^helpline_updates_total\{channel="telegram"\} ([0-9.e+]+)$', text, re.M)
    return int(float(found.group(1))) if found else 0


async def _open_case(cluster: Cluster, child: int) -> int:
    fake = cluster.fake
    await cluster.post(cluster.update(fake.private_message(child, text="привет")))
    await fake.replies(child, 2)
    await cluster.post(cluster.update(fake.press(child, "st|role|child")))
    await fake.replies(child, 3)
    await cluster.post(cluster.update(fake.press(child, "st|menu|person")))
    waiting = (await fake.replies(child, 4))[3].text
    found = re.search(r"№(\d+)", waiting)
    assert found, waiting
    # At once, through the next worker, while the first may still be opening the case's topic.
    await cluster.post(cluster.update(fake.private_message(child, text=HELLO)))
    return int(found.group(1))


async def _card(fake: Recorder, case_id: int, wait: float = WAIT) -> Call:
    """The case's card in its forum topic (posted by whichever worker sent the notice)."""
    take = f"dk|take|{case_id}"
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        for call in fake.to_chat[STAFF_CHAT]:
            if call.thread is not None and any(data == take for _, data in call.buttons):
                return call
        await asyncio.sleep(0.05)
    raise AssertionError(f"no card for case {case_id}")


def _topic(fake: Recorder, card: Call) -> list[Call]:
    return [c for c in fake.to_chat[STAFF_CHAT] if c.thread == card.thread]


async def _in_topic(fake: Recorder, card: Call, count: int, wait: float = WAIT) -> list[Call]:
    deadline = time.monotonic() + wait
    while len(_topic(fake, card)) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"topic {card.thread}: {[c.text for c in _topic(fake, card)]}")
        await asyncio.sleep(0.05)
    return _topic(fake, card)


async def test_racing_takes_through_different_workers_give_one_owner(cluster: Cluster) -> None:
    fake = cluster.fake
    case_ids = await asyncio.gather(*(_open_case(cluster, c) for c in CASE_CHILDREN))
    assert len(set(case_ids)) == len(CASE_CHILDREN)
    cards = await asyncio.gather(*(_card(fake, case_id) for case_id in case_ids))
    # What each child wrote while waiting reaches its case's topic (perhaps on a retry, after
    # the topic exists); then one topic per case, although two workers had something to post in
    # it at once, with the card first and the child's line once.
    relayed = await asyncio.gather(*(_in_topic(fake, card, 2) for card in cards))
    await asyncio.sleep(1.5)  # anything posted twice would show now
    topics = [c for c in fake.calls_of("createForumTopic") if c.status == 200]
    opened = sorted(int(str(c["name"]).split()[0].lstrip("#")) for c in topics)
    assert opened == sorted(case_ids), [c["name"] for c in topics]
    for card, lines in zip(cards, relayed, strict=True):
        assert lines[0] is card
        assert [c.text for c in _topic(fake, card)[1:]] == [f"🧒 {HELLO}"]

    presses: dict[int, dict[str, int]] = {case_id: {} for case_id in case_ids}

    def press(staff: int, case_index: int, worker: Worker) -> Any:
        case_id, card = case_ids[case_index], cards[case_index]
        update = cluster.update(fake.press(staff, f"dk|take|{case_id}", chat_id=STAFF_CHAT,
                                           thread=card.thread, message_id=card.message_id))
        presses[case_id][str(update["callback_query"]["id"])] = staff
        return cluster.post(update, worker)  # returns once that worker handled the press

    # 1. One counsellor presses Take on every card at once, through all the workers: she may
    # hold COUNSELLOR_CAPACITY cases, no more.
    eager = next(iter(COUNSELLORS))
    await asyncio.gather(*(press(eager, i, cluster.workers[i % WORKERS])
                           for i in range(len(case_ids))))
    got = [q for q, staff in itertools.chain(*(p.items() for p in presses.values()))
           if fake.answers[q] and fake.answers[q][0].get("text") == "Обращение ваше."]
    assert len(got) == CAPACITY, f"{len(got)} cases taken at once with a capacity of {CAPACITY}"

    # 2. Every counsellor presses Take on every card at the same moment; the presses on one card
    # go to different workers.
    started = time.monotonic()
    await asyncio.gather(*(press(staff, i, cluster.workers[(i + j) % WORKERS])
                           for i in range(len(case_ids))
                           for j, staff in enumerate(COUNSELLORS)))
    took = time.monotonic() - started
    posts = sum(len(p) for p in presses.values())

    db = Database(cluster.database_url)
    try:
        async with db.session() as s:
            staff_ids = {c.external_id: c.id for c in
                         (await s.execute(select(Counsellor))).scalars()}
            names = {v: k for k, v in staff_ids.items()}
            # Plain columns: the answers are encrypted under the workers' keys, not this process's.
            cases = {row.id: row for row in (await s.execute(
                select(Case.id, Case.status, Case.owner_id).where(Case.id.in_(case_ids)))).all()}
            taken = dict((await s.execute(
                select(AuditEvent.case_id, func.count()).where(
                    AuditEvent.action == "taken", AuditEvent.case_id.in_(case_ids))
                .group_by(AuditEvent.case_id))).all())
    finally:
        await db.dispose()

    held: dict[int, int] = defaultdict(int)
    for case_id in case_ids:
        case = cases[case_id]
        assert case.status == "active" and case.owner_id is not None, case_id
        assert taken.get(case_id) == 1, (case_id, taken)
        held[case.owner_id] += 1
        owner_tg = int(names[case.owner_id])
        # The press that won was told "yours"; every other press was refused with the owner.
        answers = {q: fake.answers[q] for q in presses[case_id]}
        assert all(len(a) == 1 for a in answers.values()), answers
        winners = [q for q, a in answers.items() if a[0].get("text") == "Обращение ваше."]
        assert [presses[case_id][q] for q in winners] == [owner_tg], (case_id, answers)
        for q, a in answers.items():
            if q not in winners:
                assert a[0].get("show_alert") == "true", a[0].params
                owner_name = COUNSELLORS[owner_tg]
                text = a[0].get("text", "")
                assert text in (f"Обращение уже взял(а) {owner_name}.",
                                "У вас уже максимум обращений: закройте или передайте одно."), text
    assert max(held.values()) <= CAPACITY, dict(held)

    # Each child hears once that a counsellor joined; each topic says once who took it.
    await asyncio.sleep(1.5)
    for child in CASE_CHILDREN:
        joined = [c for c in fake.to_chat[child] if c.text.startswith("Консультант подключился")]
        assert len(joined) == 1, (child, [c.text[:40] for c in fake.to_chat[child]])
    for card in cards:
        said = [c for c in fake.to_chat[STAFF_CHAT]
                if c.thread == card.thread and "взял(а) обращение" in c.text]
        assert len(said) == 1, [c.text for c in said]
    print(f"\n{posts} Take presses ({len(case_ids) * len(COUNSELLORS)} at the same moment) on "
          f"{len(case_ids)} cases over {WORKERS} workers: {took:.2f}s; "
          f"held per counsellor {sorted(held.values())}")


async def test_the_workers_logged_no_errors(cluster: Cluster) -> None:
    for w in cluster.workers:
        assert w.process.poll() is None, f"worker :{w.port} died"
        text = w.log.read_text(errors="replace")
        bad = [line for line in text.splitlines() if " ERROR " in line or "Traceback" in line]
        assert not bad, cluster.logs()
