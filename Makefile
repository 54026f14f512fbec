# Two commands matter: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-pg lint typecheck venv bench bench-flood bench-kb clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(PY) -m bot db upgrade
	$(PY) -m bot run

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/hadolint Dockerfile

typecheck: $(STAMP)
	$(VENV)/bin/mypy dialogs storage knowledge_base bot

test: $(STAMP) lint typecheck
	$(VENV)/bin/pytest

# The whole suite again on a throwaway PostgreSQL cluster (installed if missing).
test-pg: $(STAMP)
	scripts/with-postgres.sh $(VENV)/bin/pytest

# The load benchmark (docs/benchmarks.md): `helpline run` against a fake Bot API with 1,000
# simulated users, next to a bare aiogram echo bot. ARGS="--db pg" for PostgreSQL.
bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) bench/load.py $(ARGS)

# One child flooding the bot (500 messages, danger in the middle) beside 100 thinking users:
# the others' latency, quiet against flooding, and the flooder's danger and "slow down".
bench-flood: $(STAMP)
	$(PY) bench/load.py --flood --users 100 $(ARGS)

# Knowledge-base search on a synthetic corpus.
bench-kb: $(STAMP)
	$(PY) bench/kb_search.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
