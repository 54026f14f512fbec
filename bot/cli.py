"""`helpline` (also `python -m bot`): every verb of the help line, each with --help."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import logging
import sqlite3
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError
from sqlalchemy.engine import make_url

from bot import early_stop
from bot.settings import Settings, load_settings
from storage.lane import run as lane_run

if TYPE_CHECKING:
    from bot.app import App
    from bot.console import ConsoleChat

log = logging.getLogger("helpline")


def _settings() -> Settings:
    from bot.app import configure_crypto
    from storage.crypto import CryptoError

    try:
        settings = load_settings()
        configure_crypto(settings)
        return settings
    except ValidationError as exc:
        for err in exc.errors():
            name = str(err["loc"][0]).upper() if err["loc"] else "?"
            print(f"setting {name}: {err['msg']}", file=sys.stderr)
        raise SystemExit(2) from None
    except CryptoError as exc:
        print(f"setting: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


# Verbs whose terminal is a conversation (a child's chat, a counsellor's desk): their logs go
# to stderr at WARNING at least, so that no log line lands between the lines of the chat.
TERMINAL_VERBS = ("chat", "desk")


def _setup_logging(settings: Settings, *, terminal: bool = False) -> None:
    from bot.logs import setup_logging

    level = settings.log_level
    if terminal and logging.getLevelName(level) < logging.WARNING:
        level = "WARNING"
    setup_logging(level, json_lines=settings.log_json)


def _app(settings: Settings):  # type: ignore[no-untyped-def]
    from bot.app import build_app
    from bot.console import attach_console

    app = build_app(settings)
    attach_console(app)
    return app


async def _ensure_schema(settings: Settings, *, wait: bool = True) -> str | None:
    """The schema `helpline run` needs. The embedded SQLite database (one process) is migrated
    here; a PostgreSQL database is migrated as its own step, once, before the workers start:
    if it is not current, say what to run instead of failing later on a missing table."""
    from storage.db import Database
    from storage.health import schema_state

    db = Database(settings.database_url)
    try:
        state = await schema_state(db)
    finally:
        await db.dispose()
    if state in ("empty", "behind") and db.is_sqlite:
        from storage.migrate import upgrade  # Alembic: only when there is something to do

        await asyncio.to_thread(upgrade, settings.database_url)
        return None
    if state in ("empty", "behind"):
        return (f"The database schema is {'empty' if state == 'empty' else 'out of date'}: run "
                "`helpline db upgrade` first (docker compose runs it as the `migrate` service).")
    if state == "unreachable" and not wait:
        return "The database cannot be reached: check DATABASE_URL and that it is running."
    return None  # current; or made by tests; or away and `helpline run` waits for it


# ---------------------------------------------------------------------- verbs
async def _run(settings: Settings, args: argparse.Namespace) -> int:
    from collections.abc import Coroutine
    from typing import Any

    from bot.console import ConsoleChat
    from bot.http import build_web_app
    from bot.runner import (
        background_tasks,
        cancelled_on,
        exit_if_left_behind,
        freeze_startup_heap,
        shut_down,
        start_http,
        stop_on_signals,
        thaw_startup_heap,
    )

    if not (settings.telegram_bot_token or settings.vk_token):
        early_stop.release()  # the console has no graceful stop: signals act as usual
        if early_stop.requested() is not None:
            return 0
    elif _stopped_early():
        return 0
    else:
        # The channels' modules (aiogram's alone takes seconds to import) before anything is
        # built, while a stop is still only noted (bot.early_stop), so that a stop asked for in
        # those seconds ends the start-up here instead of after it.
        if settings.telegram_bot_token:
            importlib.import_module("bot.telegram")
        if settings.vk_token:
            importlib.import_module("bot.vk")
        if _stopped_early():
            return 0
    app = _app(settings)
    if not (settings.telegram_bot_token or settings.vk_token):
        print("No TELEGRAM_BOT_TOKEN or VK_TOKEN set: running the local console chat.",
              file=sys.stderr)
        return await _run_console(app, ConsoleChat(app, user=args.user))
    if _stopped_early():  # asked while the app was being built (the triage model loads)
        await app.close()
        return 0
    stop = asyncio.Event()
    channels: list[asyncio.Task[None]] = []
    jobs: list[asyncio.Task[None]] = []
    runner = None
    code = 1  # unless the channels end or stop as they should
    with stop_on_signals(stop):
        try:
            # First every channel and desk registers with app.delivery (nothing runs yet)...
            web_app = build_web_app(app)
            starts: list[Coroutine[Any, Any, None]] = []
            if settings.telegram_bot_token:
                from bot.telegram import serve_telegram

                starts.append(await serve_telegram(app, web_app, stop))
            if settings.vk_token:
                from bot.vk import build_vk

                vk = build_vk(app)
                vk.attach()
                starts.append(cancelled_on(stop, vk.run()))
            if settings.web_enabled:
                from bot.web import mount_web_console

                mount_web_console(web_app, app)
            runner = await start_http(app, web_app)  # the web console's desk registers here
            # ...then what a crash or a stop left is handled and delivered (desk notices reach
            # the staff group), and only then do the channels take new updates.
            await app.take_over()
            await app.recover(older_than=0)
            freeze_startup_heap()
            jobs = background_tasks(app, stop)
            channels = [asyncio.create_task(start) for start in starts]
            starts.clear()
            waiter = asyncio.create_task(stop.wait())
            await asyncio.wait([waiter, *channels], return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            for task in channels:
                if task.done() and not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]  # a channel could not run
            code = 0
            return code
        finally:
            for start in starts:
                start.close()  # built but never started (start-up failed)
            stop.set()
            if runner is not None:
                await runner.cleanup()  # no more webhook requests; in-flight ones finish
            left = await shut_down(app, channels, jobs)
            thaw_startup_heap()
            exit_if_left_behind(left, code)


def _stopped_early() -> bool:
    """Whether SIGTERM or SIGINT came while `helpline run` was starting up (bot.early_stop).
    Nothing has been taken in yet then: the start-up stops where it is, with exit code 0, and
    what an earlier run left (journalled updates, unsent replies) waits for the next start's
    recovery, as it would have if this start had not begun. (Once the event loop's handlers
    exist, `bot.runner.stop_on_signals` takes over.)"""
    early = early_stop.requested()
    if early is None:
        return False
    log.warning("%s during start-up: stopping (nothing taken in yet)", early.name)
    return True


async def _run_console(app: App, chat: ConsoleChat) -> int:
    """`helpline run` with no platform token: the console chat (which registers itself)."""
    from bot.runner import background_tasks, freeze_startup_heap, thaw_startup_heap

    settings = app.settings
    stop = asyncio.Event()
    jobs: list[asyncio.Task[None]] = []
    console_runner = None
    try:
        if settings.web_enabled:
            from bot.web import start_console

            console_runner = await start_console(app)
        await app.take_over()
        await app.recover(older_than=0)
        freeze_startup_heap()
        jobs = background_tasks(app, stop)
        await chat.run()
        return 0
    finally:
        stop.set()
        await asyncio.gather(*jobs, return_exceptions=True)
        if console_runner is not None:
            await console_runner.cleanup()
        await app.close()
        thaw_startup_heap()


async def _chat(settings: Settings, args: argparse.Namespace) -> int:
    from bot.console import ConsoleChat

    app = _app(settings)
    try:
        await app.take_over()  # it sends too: what a dead process held goes out now
        await ConsoleChat(app, user=args.user, locale=args.locale).run()
    finally:
        await app.close()
    return 0


async def _desk(settings: Settings, args: argparse.Namespace) -> int:
    from bot.console import ConsoleDesk
    from storage.repositories import Repos

    app = _app(settings)
    try:
        async with app.db.session() as s:
            counsellor = await Repos(s).counsellors.by_name(args.as_name)
        if counsellor is None or not counsellor.active:
            print(
                f"{args.as_name!r} is not a registered counsellor "
                "(helpline counsellor add NAME --channel console --id NAME)",
                file=sys.stderr,
            )
            return 1
        await app.take_over()  # it sends too: what a dead process held goes out now
        await ConsoleDesk(app, counsellor).run()
    finally:
        await app.close()
    return 0


def _db(settings: Settings, args: argparse.Namespace) -> int:
    from storage.migrate import upgrade

    url = settings.database_url
    if args.db_verb == "rotate-keys":
        from storage.db import Database
        from storage.rotate import rotate_keys

        async def _rotate() -> int:
            db = Database(url)
            try:
                return await rotate_keys(db)
            finally:
                await db.dispose()

        print(f"re-encrypted {asyncio.run(_rotate())} values under the first key")
        return 0
    if args.db_verb == "upgrade":
        upgrade(url)
        print(f"database is at the latest schema ({make_url(url).render_as_string()})")
        return 0
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        print(
            "backup and restore here are for SQLite; for PostgreSQL use pg_dump and "
            "pg_restore (see the README)",
            file=sys.stderr,
        )
        return 2
    db_path = Path(parsed.database)
    target = Path(args.file)
    if args.db_verb == "backup":
        # The online backup API copies a consistent snapshot even while the bot writes.
        target.parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(db_path) as src, sqlite3.connect(target) as dst:
            src.backup(dst)
        print(f"backed up to {target}")
        return 0
    if not target.exists():
        print(f"no backup file {target}", file=sys.stderr)
        return 2
    with sqlite3.connect(target) as src, sqlite3.connect(db_path) as dst:
        src.backup(dst)
    print(f"restored {db_path} from {target}")
    return 0


async def _counsellor(settings: Settings, args: argparse.Namespace) -> int:
    from storage.db import Database
    from storage.repositories import Repos

    if args.c_verb == "password":
        from bot.web.admin import password

        return await password(settings, args)
    db = Database(settings.database_url)
    try:
        async with db.session() as s:
            repos = Repos(s)
            if args.c_verb == "list":
                for c in await repos.counsellors.all():
                    print(
                        f"{c.id:4} {c.name:20} {c.role:11} {c.channel:9} "
                        f"{'active' if c.active else 'disabled'}"
                    )
                return 0
            if await repos.counsellors.by_name(args.name) is not None:
                print(f"a counsellor named {args.name!r} exists already", file=sys.stderr)
                return 1
            c = await repos.counsellors.add(args.name, args.channel, args.id, args.role)
            await repos.audit.record(
                "counsellor_added",
                counsellor_id=c.id,
                case_id=None,
                detail=f"{c.name} {c.channel} {c.role}",
            )
            print(f"registered {c.name} ({c.role}) on {c.channel}")
            return 0
    finally:
        await db.dispose()


def _kb(settings: Settings, args: argparse.Namespace) -> int:
    if args.kb_verb == "check":
        from datetime import date

        from dialogs.contacts import stale
        from knowledge_base.check import main as check_main

        status = check_main([])
        # The emergency contacts are checked like the articles: a year at most.
        old = stale(date.today())
        for line in old:
            print(f"contacts.yaml: {line}: older than a year, check it against its source")
        return status or (1 if old else 0)
    from knowledge_base import KnowledgeBase

    kb = KnowledgeBase.load()
    hits = kb.search(args.query, args.locale, args.audience, args.limit)
    rows = [
        {
            "id": h.article.id,
            "title": h.article.title,
            "topics": list(h.article.topics),
            "score": round(h.score, 3),
            "snippet": h.snippet,
        }
        for h in hits
    ]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
    elif not rows:
        print("no article fits: the bot would offer a person")
    else:
        for h in hits:
            topics = ", ".join(h.article.topics)
            print(f"{h.score:7.3f}  {h.article.id}  [{topics}]  {h.article.title}")
    return 0


def _triage(settings: Settings, args: argparse.Namespace) -> int:
    words = [args.text] if args.text_option else list(args.words)
    if words == ["train"]:
        return _triage_train()
    if words == ["eval"]:
        return _triage_eval(args.json)
    if not words:
        print("helpline triage: give a text, or 'train', or 'eval'", file=sys.stderr)
        return 2
    from dialogs.triage import assess

    result = assess(" ".join(words), args.locale)
    if args.json:
        print(json.dumps(result.to_json(explain=True), ensure_ascii=False, indent=2))
    else:
        verdict = "danger" if result.danger else "check-in" if result.check_in else "none"
        print(
            f"verdict={verdict} risk={result.risk} category={result.category} "
            f"score={result.score:.3f} reach={result.reach:.3f} "
            f"signals={','.join(result.signals) or '-'} matched={','.join(result.matched) or '-'}"
        )
    return 0


def _triage_train() -> int:
    """Rebuild the model from the shipped corpus (reproducible: same corpus, same model)."""
    from dialogs.triage.train import CORPUS_DIR, train

    meta = train()
    print(f"trained on {meta['lines']} corpus lines ({meta['augmented']} with variants) "
          f"from {CORPUS_DIR}")
    print(f"corpus sha256 {meta['corpus_sha256']}")
    print(f"thresholds {json.dumps(meta['thresholds'])}")
    print(f"out-of-fold on the corpus {json.dumps(meta['out_of_fold'])}")
    long = meta["long"]
    print(f"model for long messages: {long['lines']} lines with the read sets "
          f"({long['augmented']} with variants), corpus sha256 {long['corpus_sha256']}")
    print(f"its thresholds {json.dumps(long['thresholds'])}")
    print(f"its out-of-fold on the corpus {json.dumps(long['out_of_fold'])}")
    return 0


def _triage_eval(as_json: bool) -> int:
    """Figures on the phrase sets shipped with the tests (held-out first)."""
    from dialogs.triage.evaluate import default_sets, report, timing

    root = Path(__file__).resolve().parent.parent
    sets = default_sets(root)
    if not sets:
        print("helpline triage eval: no phrase sets (run it from a source checkout)",
              file=sys.stderr)
        return 2
    figures = report(sets, root)
    speed = timing(sets)
    if as_json:
        print(json.dumps({"sets": [f.to_json() for f in figures], "speed": speed}, indent=2))
    else:
        for f in figures:
            print(f.line())
        print(f"speed: {speed['messages']} messages, median {speed['median_ms']} ms, "
              f"p99 {speed['p99_ms']} ms per message")
    return 0


def _flows(settings: Settings, args: argparse.Namespace) -> int:
    from dialogs.diagrams import flows_markdown

    print(flows_markdown(), end="")
    return 0


async def _audit(settings: Settings, args: argparse.Namespace) -> int:
    app = _app(settings)
    try:
        rows = await app.desk.audit_trail(args.case)
        if not rows:
            print(f"no audit records for case {args.case}")
        for at, who, action, detail in rows:
            print(f"{at:%Y-%m-%d %H:%M:%S} {who or 'system':14} {action:14} {detail}")
    finally:
        await app.close()
    return 0


async def _purge(settings: Settings, args: argparse.Namespace) -> int:
    from dialogs.retention import purge

    app = _app(settings)
    try:
        # --days 0 purges everything closed (0 is a number of days, not "the default").
        days = settings.retention_days if args.days is None else args.days
        if days < 0:
            print("--days must be 0 or more", file=sys.stderr)
            return 2
        counts = await purge(
            app.db,
            days=days,
            journal_days=settings.journal_retention_days,
            outbox_days=settings.outbox_retention_days,
        )
        print(", ".join(f"{k}: {v}" for k, v in counts.items()))
    finally:
        await app.close()
    return 0


async def _report(settings: Settings, args: argparse.Namespace) -> int:
    from datetime import date

    from dialogs.hours import load_hours
    from dialogs.reports import build_report
    from storage.db import Database

    try:
        start, end = date.fromisoformat(args.date_from), date.fromisoformat(args.date_to)
    except ValueError:
        print("--from and --to are dates like 2026-01-31", file=sys.stderr)
        return 2
    if end < start:
        print("--to is before --from", file=sys.stderr)
        return 2
    zone = load_hours(settings.hours_file).zone
    db = Database(settings.database_url)
    try:
        report = await build_report(
            db, start, end, zone=zone, locale=args.locale or settings.default_locale
        )
    finally:
        await db.dispose()
    print(report.text())
    out = Path(args.out) / f"{start:%Y-%m-%d}_{end:%Y-%m-%d}"
    files = report.write_csv(out)
    try:
        files += report.write_charts(out)
    except ImportError:  # the production image has no plotting library
        print("PNG charts need matplotlib (pip install 'helpline-bot[reports]'): CSV only",
              file=sys.stderr)
    print(f"\nwrote {len(files)} files to {out}")
    return 0


async def _web(settings: Settings, args: argparse.Namespace) -> int:
    from bot.web.admin import serve

    return await serve(settings)


# ---------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="helpline", description="The child help-line bot.")
    sub = p.add_subparsers(dest="verb", required=True)

    run = sub.add_parser(
        "run",
        help="the main job: every channel whose token is set, or the console chat when none is",
    )
    run.add_argument("--user", default="local", help="console user name (no tokens set)")

    chat = sub.add_parser("chat", help="the child's side in this terminal (or piped lines)")
    chat.add_argument("--user", default="local", help="who you are in this chat")
    chat.add_argument("--locale", choices=["ru", "en"], default=None)

    desk = sub.add_parser("desk", help="the counsellor's side in this terminal")
    desk.add_argument("--as", dest="as_name", required=True, help="registered counsellor name")

    db = sub.add_parser("db", help="migrations and backups")
    dbs = db.add_subparsers(dest="db_verb", required=True)
    dbs.add_parser("upgrade", help="bring the database to the latest schema")
    b = dbs.add_parser("backup", help="copy the SQLite database to FILE")
    b.add_argument("file")
    r = dbs.add_parser("restore", help="replace the SQLite database with FILE")
    r.add_argument("file")
    dbs.add_parser(
        "rotate-keys", help="re-encrypt stored data under the first ENCRYPTION_KEYS key"
    )

    keys = sub.add_parser("keys", help="encryption keys")
    ks = keys.add_subparsers(dest="k_verb", required=True)
    ks.add_parser("new", help="print a new key for ENCRYPTION_KEYS")

    c = sub.add_parser("counsellor", help="register staff")
    cs = c.add_subparsers(dest="c_verb", required=True)
    add = cs.add_parser("add", help="register a counsellor")
    add.add_argument("name")
    add.add_argument("--channel", choices=["telegram", "vk", "console", "web"], required=True)
    add.add_argument("--id", required=True, help="their account id on that channel")
    add.add_argument("--role", choices=["counsellor", "supervisor"], default="counsellor")
    cs.add_parser("list", help="list counsellors")
    pw = cs.add_parser(
        "password", help="set a web console password (typed, or the first line of stdin)"
    )
    pw.add_argument("name")
    second = pw.add_mutually_exclusive_group()
    second.add_argument("--totp", action="store_true", help="turn on a TOTP second factor")
    second.add_argument("--no-totp", action="store_true", help="turn the second factor off")

    kb = sub.add_parser("kb", help="the knowledge base")
    kbs = kb.add_subparsers(dest="kb_verb", required=True)
    kbs.add_parser("check", help="validate every article")
    search = kbs.add_parser("search", help="what the bot would answer")
    search.add_argument("query")
    search.add_argument("--locale", choices=["ru", "en"], default="ru")
    search.add_argument("--audience", choices=["child", "parent"], default=None)
    search.add_argument("--limit", type=int, default=3)
    search.add_argument("--json", action="store_true")

    tr = sub.add_parser(
        "triage",
        help="what triage makes of a text; 'triage train' rebuilds the model, "
        "'triage eval' measures it",
    )
    tr.add_argument("words", nargs="*", metavar="TEXT", help="the text, or train, or eval")
    tr.add_argument("--text", dest="text_option", action="store_true",
                    help="read TEXT as a text even if it is 'train' or 'eval'")
    tr.add_argument("--locale", choices=["ru", "en"], default="ru")
    tr.add_argument("--json", action="store_true")

    sub.add_parser("flows", help="Mermaid diagrams of the flows")

    au = sub.add_parser("audit", help="who saw and did what on a case")
    au.add_argument("case", type=int)

    pu = sub.add_parser("purge", help="delete transcripts past the retention period")
    pu.add_argument("--days", type=int, default=None)

    rp = sub.add_parser(
        "report",
        help="contacts by category, platform and week, risks, times, outcomes, ratings: "
        "printed, and written as CSV and PNG charts (counts under 5 shown as <5)",
    )
    rp.add_argument("--from", dest="date_from", required=True, help="first day, YYYY-MM-DD")
    rp.add_argument("--to", dest="date_to", required=True, help="last day (included)")
    rp.add_argument("--out", default="var/reports", help="folder for the CSV and PNG files")
    rp.add_argument("--locale", choices=["ru", "en"], default=None, help="labels' language")

    sub.add_parser("web", help="the counsellors' web console alone, at WEB_HOST:WEB_PORT")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.verb == "flows":
        return _flows(Settings.model_construct(), args)
    if args.verb == "keys":
        from storage.crypto import new_key

        print(new_key())
        return 0
    settings = _settings()
    console_run = args.verb == "run" and not (settings.telegram_bot_token or settings.vk_token)
    _setup_logging(settings, terminal=args.verb in TERMINAL_VERBS or console_run)
    sync = {"db": _db, "kb": _kb, "triage": _triage}
    if args.verb in sync:
        return sync[args.verb](settings, args)
    handlers = {
        "run": _run,
        "chat": _chat,
        "desk": _desk,
        "counsellor": _counsellor,
        "audit": _audit,
        "purge": _purge,
        "report": _report,
        "web": _web,
    }
    return lane_run(_with_schema(handlers[args.verb], settings, args))


async def _with_schema(
    verb: Callable[[Settings, argparse.Namespace], Awaitable[int]],
    settings: Settings,
    args: argparse.Namespace,
) -> int:
    """Every verb that uses the database finds its schema ready (the embedded SQLite database
    is made and migrated on first use), or says in one line what to run; a database that
    cannot be reached is one line too, never a traceback."""
    try:
        problem = await _ensure_schema(settings, wait=verb is _run)
    except Exception as exc:  # unreachable or refusing: say so plainly
        print(f"The database cannot be used ({type(exc).__name__}): check DATABASE_URL.",
              file=sys.stderr)
        return 2
    if problem:
        print(problem, file=sys.stderr)
        return 2
    return await verb(settings, args)
