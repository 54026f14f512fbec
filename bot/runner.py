"""The main job's background work: the outbox worker, the daily retention purge, the desk's
minute sweep (re-announcing unanswered cases), and the HTTP server for health and metrics; and
the way it stops (SIGTERM, SIGINT): `stop_on_signals` and `shut_down`."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import io
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Iterator, Sequence

from aiohttp import web

from bot import early_stop
from bot.app import App
from bot.delivery import IN_FLIGHT_GRACE
from dialogs.retention import purge

log = logging.getLogger(__name__)


async def _every(seconds: float, stop: asyncio.Event, job: Callable[[], Awaitable[object]],
                 name: str) -> None:
    while not stop.is_set():
        try:
            await job()
        except Exception:  # a failing pass is logged and tried again next time
            log.exception("%s failed", name)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=seconds)


async def _purge(app: App) -> None:
    settings = app.settings
    counts = await purge(
        app.db,
        days=settings.retention_days,
        journal_days=settings.journal_retention_days,
        outbox_days=settings.outbox_retention_days,
    )
    log.info("retention purge: %s", counts)


async def _sweep(app: App) -> None:
    sweep = getattr(app.desk, "sweep", None)
    if sweep is not None:
        await app.delivery.deliver(await sweep())


def freeze_startup_heap() -> None:
    """Keep what start-up built out of the garbage collector's full passes.

    The triage model's vocabularies, the catalogues, the knowledge base's index, SQLAlchemy's
    mappers and aiogram's models live as long as the process. A full collection walked all of
    them: under load the event loop stalled for about 230 ms every few seconds, and a danger
    message that arrived meanwhile waited behind it. Frozen (`gc.freeze`), they are never
    collected and never walked; a full pass costs 5-14 ms instead. Called once, after
    start-up and recovery, before the channels take updates."""
    gc.collect()
    gc.freeze()


def thaw_startup_heap() -> None:
    """Undo `freeze_startup_heap` when the job ends (a process that runs the job again, as
    the tests do, would otherwise never collect what the first run left)."""
    gc.unfreeze()


def background_tasks(app: App, stop: asyncio.Event) -> list[asyncio.Task[None]]:
    return [
        asyncio.create_task(app.delivery.run_worker(stop), name="outbox"),
        asyncio.create_task(_every(24 * 3600, stop, lambda: _purge(app), "purge"),
                            name="purge"),
        asyncio.create_task(_every(60, stop, lambda: _sweep(app), "sweep"), name="sweep"),
        asyncio.create_task(_every(30, stop, app.recover, "recover"), name="recover"),
    ]


async def start_http(app: App, web_app: web.Application) -> web.AppRunner:
    # A short shutdown timeout: webhook requests only journal, and Docker waits 10 s in all.
    runner = web.AppRunner(web_app, access_log=None, shutdown_timeout=3.0)
    await runner.setup()
    site = web.TCPSite(runner, app.settings.webhook_host, app.settings.webhook_port)
    await site.start()
    log.info("http server on %s:%s", app.settings.webhook_host, app.settings.webhook_port)
    return runner


@contextlib.contextmanager
def stop_on_signals(stop: asyncio.Event) -> Iterator[None]:
    """While inside, SIGTERM and SIGINT set `stop` (a graceful stop); a second signal gets the
    default behaviour (an impatient operator can still end the process at once)."""
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    early = early_stop.requested()
    if early is not None:  # asked while starting up: stop now; the next signal acts at once
        log.warning("%s during start-up: stopping (finishing the work in hand)", early.name)
        stop.set()
        yield
        return

    def _on_signal(sig: signal.Signals) -> None:
        log.warning("%s: stopping (finishing the work in hand)", sig.name)
        stop.set()
        for each in installed:
            loop.remove_signal_handler(each)
        installed.clear()

    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, _on_signal, sig)
        except (NotImplementedError, RuntimeError, ValueError):  # Windows, not the main thread
            continue
        installed.append(sig)
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


async def cancelled_on(stop: asyncio.Event, work: Awaitable[None]) -> None:
    """Run `work` (a channel that runs until cancelled, like VK's) until `stop` is set."""
    task = asyncio.ensure_future(work)
    waiter = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        if not task.done():
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    if not task.cancelled() and task.exception() is not None:
        raise task.exception()  # type: ignore[misc]


# Of shutdown's grace period, what the stages after the handling keep for themselves: the
# background jobs' pass, the sends in flight (`IN_FLIGHT_GRACE`), the claims and the close.
_AFTER_HANDLING = IN_FLIGHT_GRACE + 1.5


async def _settle(tasks: Sequence[asyncio.Task[None]], seconds: float,
                  what: str) -> set[asyncio.Task[None]]:
    """Wait up to `seconds` for `tasks` to end on their own, then cancel what is left and wait
    as long again. A task still running then (it swallowed the cancel, or waits in a cleanup
    for something that will not come) is left behind, its stack logged, and returned: shutdown
    must end within its grace, and what the task held is in the journal or at the platform."""
    if not tasks:
        return set()
    _, pending = await asyncio.wait(tasks, timeout=seconds)
    if not pending:
        return set()
    log.warning("%d %s still running after %.1fs: cancelled", len(pending), what, seconds)
    for task in pending:
        task.cancel()
    _, stuck = await asyncio.wait(pending, timeout=seconds)
    for task in stuck:
        trace = io.StringIO()
        task.print_stack(file=trace)
        log.error("%s: %s did not end after it was cancelled: left behind\n%s",
                  what, task.get_name(), trace.getvalue())
    return stuck


def exit_if_left_behind(left: set[asyncio.Task[None]], code: int) -> None:
    """After `shut_down`: if it `left` a task behind, exit now with `code` (the event loop's
    own teardown would wait for that task, past Docker's SIGKILL). Logs are flushed first."""
    if left:
        log.error("exiting with %d task(s) left behind", len(left))
        logging.shutdown()
        os._exit(code)


async def shut_down(
    app: App,
    channels: Sequence[asyncio.Task[None]],
    jobs: Sequence[asyncio.Task[None]],
    *,
    grace: float = 8.0,
) -> set[asyncio.Task[None]]:
    """Stop in order, within about `grace` seconds (Docker waits 10 before SIGKILL): channels
    stop taking updates (the update in hand is journalled first); updates already journalled
    finish handling; the background jobs end their pass; sends already with the platform end
    and are marked, and outbox claims cut short are released for the next worker; the database
    is closed. The handling gets what the later stages do not need (`_AFTER_HANDLING`), so that
    a backlog cannot push them past the grace. Set the jobs' stop event before calling.
    Returns the tasks left behind (`_settle`): the process must exit without waiting for them."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    deadline = started + grace
    handling_until = deadline - min(_AFTER_HANDLING, 0.5 * grace)
    app.delivery.stop()
    left = await _settle(channels, max(0.5, 0.25 * grace), "channels")
    drain = asyncio.ensure_future(app.drain())
    try:
        await asyncio.wait_for(asyncio.shield(drain),
                               timeout=max(0.5, handling_until - loop.time()))
    except TimeoutError:
        log.warning("updates still being handled at shutdown: cancelled (their journal "
                    "entries are handled again at the next start)")
        app.cancel_pending()
        drain.cancel()
    await asyncio.gather(drain, return_exceptions=True)
    left |= await _settle(jobs, max(0.5, min(1.0, deadline - loop.time() - IN_FLIGHT_GRACE)),
                          "background jobs")
    try:
        await app.delivery.release(
            in_flight=max(0.2, min(IN_FLIGHT_GRACE, deadline - loop.time())))
    except Exception as exc:  # the database is away: the claims expire on their own
        log.warning("could not release outbox claims (%s)", type(exc).__name__)
    await app.close()
    log.info("stopped in %.1fs", loop.time() - started)
    return left
