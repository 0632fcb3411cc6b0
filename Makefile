# One-command setup: every target installs what it needs, once (stamps keyed on the lock files).
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMPS := .stamps
UV_VERSION := $(shell sed -n 's/^uv==\([0-9.]*\).*/\1/p' requirements.lock)
DEVNET_LOCK := $(wildcard deploy/devnet/package-lock.json)
APT_LIST := deploy/apt-packages.txt
CONFIG ?= config/devnet.yaml
PYTEST_ARGS ?=
# `make test` runs on this many pytest-xdist workers (0: one process), a test module per worker
# (--dist loadfile: a module's nats-server / anvil fixtures start once), modules in file order
# so the long e2e and chaos modules start first instead of last.
TEST_WORKERS ?= 2
BENCH_ARGS ?=

.PHONY: setup test test-fast lint fmt run bench e2e compose-config clean help
.DEFAULT_GOAL := help

help:
	@echo "make run    - set up, then start NATS, the devnet and the four services (Ctrl-C stops all)"
	@echo "make test   - set up, then ruff and pytest (real nats-server, real anvil)"
	@echo "make test-fast - lint, unit and contract tests (no devnet runs, about a minute)"
	@echo "make lint   - ruff and mypy (strict on the runtime library and pure modules)"
	@echo "make bench  - benchmarks (bench/)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMPS)/uv: requirements.lock | $(BIN)/python
	@mkdir -p $(STAMPS)
	$(BIN)/python -m pip install --quiet "uv==$(UV_VERSION)"
	@touch $@

$(STAMPS)/python-deps: requirements.lock pyproject.toml libs/common/pyproject.toml libs/ops/pyproject.toml $(STAMPS)/uv
	$(BIN)/uv pip sync --python $(BIN)/python --require-hashes requirements.lock
	$(BIN)/uv pip install --python $(BIN)/python --no-deps -e libs/common -e libs/ops -e .
	@touch $@

$(STAMPS)/npm: $(DEVNET_LOCK)
	@mkdir -p $(STAMPS)
	@if [ -f deploy/devnet/package-lock.json ]; then cd deploy/devnet && npm ci --no-audit --no-fund --loglevel=error; fi
	@touch $@

$(STAMPS)/apt: $(wildcard $(APT_LIST))
	@mkdir -p $(STAMPS)
	@if [ -f $(APT_LIST) ]; then \
	  missing=$$(grep -vE '^\s*(#|$$)' $(APT_LIST) | while read -r pkg bin; do \
	    command -v "$${bin:-$$pkg}" >/dev/null 2>&1 || echo "$$pkg"; done | tr '\n' ' '); \
	  if [ -n "$$missing" ]; then \
	    echo "installing Debian packages: $$missing"; \
	    SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	    $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	  fi; \
	fi
	@touch $@

# Bytecode, compiled once here: with PYTHONDONTWRITEBYTECODE set (CI images, some shells)
# Python never caches it, and every process compiles its imports from source again (a service
# or devnet process: 2-3 s of CPU instead of ~1 s; `mev-bot run` starts seven of them).
# A compile failure (a package's py2-only test file) only leaves that file uncompiled.
$(STAMPS)/bytecode: $(STAMPS)/python-deps
	-$(BIN)/python -m compileall -q -j 0 $$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') >/dev/null
	@touch $@

# the project's own sources change often: recompiled on every setup (only the changed files)
setup: $(STAMPS)/python-deps $(STAMPS)/npm $(STAMPS)/apt $(STAMPS)/bytecode
	@$(BIN)/python -m compileall -q libs/common/mev_common libs/ops/mev_ops services >/dev/null

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: lint
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

# The inner loop: lint, unit tests and the contract tests (anvil, no devnet run, no NATS).
FAST_TESTS := tests/unit tests/integration/devnet/test_contract_build.py tests/security/test_executor_attacks.py
test-fast: lint
	$(BIN)/pytest -q $(FAST_TESTS) $(PYTEST_ARGS)

run: setup
	exec $(BIN)/mev-bot run --config $(CONFIG)

# degenbot (scenario 5's peer) pins its own web3/scipy: its own venv, from a hashed lock.
DEGENBOT_VENV := bench/.venv-degenbot
DEGENBOT_LOCK := bench/peers/requirements-degenbot.txt

$(STAMPS)/degenbot: $(DEGENBOT_LOCK) $(STAMPS)/uv
	$(PYTHON) -m venv $(DEGENBOT_VENV)
	$(BIN)/uv pip sync --python $(DEGENBOT_VENV)/bin/python --require-hashes $(DEGENBOT_LOCK)
	@touch $@

bench: setup $(STAMPS)/degenbot
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(STAMPS)

compose-config: setup
	docker-compose -f deploy/compose/docker-compose.yml --profile devnet config --quiet
	@echo "deploy/compose/docker-compose.yml: valid"
