# syntax=docker/dockerfile:1
# Production image: `helpline run` as a non-root user. The build stage installs the package and
# its dependencies into a virtual environment without pip; the runtime stage copies only that
# environment. One image serves the one-off migration and every worker (docker-compose.yml).
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
RUN python -m venv --without-pip /opt/helpline
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY dialogs ./dialogs
COPY storage ./storage
COPY knowledge_base ./knowledge_base
# No plotting libraries: `helpline report` writes CSV in the image (PNG charts need the
# `reports` extra, on an analyst's machine).
RUN pip --python /opt/helpline/bin/python install --no-cache-dir --no-compile . \
    && find /opt/helpline -name '__pycache__' -prune -exec rm -rf {} + \
    && find /opt/helpline -path '*/tests' -prune -exec rm -rf {} +

FROM python:3.11-slim AS runtime
ENV PATH="/opt/helpline/bin:$PATH" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DATABASE_URL="sqlite+aiosqlite:////var/lib/helpline/helpline.db" \
    EVIDENCE_DIR=/var/lib/helpline/evidence \
    WEBHOOK_PORT=8080 \
    LOG_JSON=true
# The evidence folder exists in the image, owned by the service user: a named volume mounted
# there starts with that owner (else Docker makes it root's and every photo is refused).
RUN groupadd --system --gid 10001 helpline \
    && useradd --system --uid 10001 --gid helpline --home-dir /var/lib/helpline --create-home helpline \
    && install -d -o helpline -g helpline -m 0700 /var/lib/helpline/evidence \
    && chmod 0700 /var/lib/helpline
COPY --from=build /opt/helpline /opt/helpline
USER 10001
WORKDIR /var/lib/helpline
VOLUME ["/var/lib/helpline"]
EXPOSE 8080
# The health check asks the port the service listens on (WEBHOOK_PORT), not a fixed one.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os,sys,urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('WEBHOOK_PORT', '8080'), timeout=4); sys.exit(0)"]
# `helpline` is PID 1 (exec form): SIGTERM from `docker stop` reaches it, it stops taking
# updates, finishes or releases what it holds and exits 0 (compose allows 30 s for that).
STOPSIGNAL SIGTERM
ENTRYPOINT ["helpline"]
CMD ["run"]
