"""The bot's HTTP server: /healthz, /readyz and /metrics (and the Telegram webhook when set)."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bot import metrics
from bot.app import App
from storage.health import readiness
from storage.models import utcnow
from storage.repositories import Repos

APP_KEY: web.AppKey[App] = web.AppKey("helpline", App)


async def healthz(request: web.Request) -> web.Response:
    """The process is up and its event loop answers."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready when the database answers and its schema is at the latest migration."""
    state = await readiness(request.app[APP_KEY].db)
    body = {"database": state.database, "revision": state.revision, "head": state.head}
    return web.json_response(body, status=200 if state.ready else 503)


# The claim that makes a worker the one that exports the shared figures (`metrics_view`).
SHARED_FIGURES = ("metrics", "shared figures")


async def exports_shared(app: App) -> bool:
    """Is this worker the one that exports the figures read from the database (the queue, the
    backlog, the journal's and the outbox's age)? The first to claim it, for as long as it
    lives (a claim on PostgreSQL dies with its process, and another worker takes over)."""
    claims = app.mailbox.claims
    if claims.holds(SHARED_FIGURES):
        return True
    try:
        return await claims.try_claim(SHARED_FIGURES)
    except Exception:  # the database is away: this scrape says nothing shared
        return False


async def metrics_view(request: web.Request) -> web.Response:
    """Prometheus's scrape. Each worker's own figures always; the shared ones (read from the
    database) from one worker only, so that summing the workers never counts them twice."""
    app = request.app[APP_KEY]
    pool = app.db.engine.pool
    checked_out = getattr(pool, "checkedout", None)
    metrics.POOL_WAITERS.set(checked_out() if callable(checked_out) else 0)
    body = generate_latest(metrics.REGISTRY)
    if await exports_shared(app):
        await _read_shared(app)
        body += generate_latest(metrics.SHARED)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _read_shared(app: App) -> None:
    async with app.db.session() as s:
        repos = Repos(s)
        stats = await repos.cases.queue_stats()
        backlog = await repos.outbox.backlog()
        journal = await repos.inbox.oldest_open()
        outbox = await repos.outbox.oldest_pending()
    now = utcnow()
    metrics.JOURNAL_LAG.set((now - journal).total_seconds() if journal else 0)
    metrics.OUTBOX_OLDEST.set((now - outbox).total_seconds() if outbox else 0)
    for risk in ("critical", "high", "medium", "low"):
        count, oldest = stats.get(risk, (0, None))
        metrics.QUEUE.labels(risk).set(count)
        metrics.WAITING.labels(risk).set((now - oldest).total_seconds() if oldest else 0)
    metrics.OUTBOX.set(backlog)


def build_web_app(app: App) -> web.Application:
    web_app = web.Application(client_max_size=2 * 1024 * 1024)
    web_app[APP_KEY] = app
    web_app.router.add_get("/healthz", healthz)
    web_app.router.add_get("/readyz", readyz)
    web_app.router.add_get("/metrics", metrics_view)
    return web_app
