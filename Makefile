# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: run test lint format bench migrate clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

## run: the whole system, embedded: signup on :8000, a mailer, and a local SMTP sink
# The Procfile names bare commands, so the venv goes first on PATH. The SMTP sink's
# maildir needs new/, cur/ and tmp/ (Maildir only creates them with var/mail).
# SECRET_KEY signs the confirmation links: a SECRET_KEY of your own wins, else the
# development key in var/secret_key, made once, so links survive a restart.
run: $(STAMP) var/secret_key
	$(BIN)/alembic upgrade head && $(BIN)/outbox migrate
	mkdir -p var/mail/new var/mail/cur var/mail/tmp
	SECRET_KEY="$${SECRET_KEY:-$$(cat var/secret_key)}" \
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/honcho start -f Procfile

# Development only: var/ is git-ignored and never goes into the image.
var/secret_key:
	mkdir -p var
	umask 077 && $(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(32))' > $@

## test: lint, then the whole test suite, on $(PYTHON) (.ci/run: the oldest and
## the newest supported Python, e.g. make test PYTHON=python3.13 VENV=var/venv-3.13)
test: lint
	@$(BIN)/python -c 'import sys; print("make test: Python", sys.version.split()[0])'
	$(BIN)/pytest

## lint: ruff check, ruff format --check, and the package boundaries (import-linter)
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The signup service's history, then the outbox's own (`outbox migrate`).
migrate: $(STAMP)
	$(BIN)/alembic upgrade head && $(BIN)/outbox migrate

# The bench extra (matplotlib) has its own stamp: `make test` never needs it.
$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(BIN)/pip install --quiet -e '.[test,bench]'
	touch $(BENCH_STAMP)

## bench: the seed patterns vs the outbox, and the mailer against its ceilings;
## rewrites BENCHMARKS.md and the charts in docs/bench/
# Needs PostgreSQL and postfix's smtp-sink (an aiosmtpd fallback is used without
# it); pass e.g. BENCH_ARGS='--admin-url postgresql://... --capacity' to change it.
bench: $(BENCH_STAMP)
	$(BIN)/python -m bench.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
