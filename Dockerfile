# syntax=docker/dockerfile:1
# Production image: `helpline run` as a non-root user. Build stage installs the wheel and its
# dependencies into a virtual environment; the runtime stage copies only that environment.
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
RUN python -m venv /opt/helpline
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY dialogs ./dialogs
COPY storage ./storage
COPY knowledge_base ./knowledge_base
RUN /opt/helpline/bin/pip install --no-cache-dir .

FROM python:3.11-slim AS runtime
ENV PATH="/opt/helpline/bin:$PATH" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DATABASE_URL="sqlite+aiosqlite:////var/lib/helpline/helpline.db" \
    EVIDENCE_DIR=/var/lib/helpline/evidence \
    LOG_JSON=true
RUN groupadd --system --gid 10001 helpline \
    && useradd --system --uid 10001 --gid helpline --home-dir /var/lib/helpline --create-home helpline
COPY --from=build /opt/helpline /opt/helpline
USER 10001
WORKDIR /var/lib/helpline
VOLUME ["/var/lib/helpline"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4); sys.exit(0)"]
ENTRYPOINT ["helpline"]
CMD ["run"]
