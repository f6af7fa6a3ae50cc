# The two quick-start commands:
#   make demo   - venv + project + local Flink 2.3.0, then `flink-gitops demo` on example-repo
#   make test   - lint, type-check and the whole test suite (what .ci/run calls)
# Flink is installed once into $(FLINK_CACHE), outside the repo, and reused.

PYTHON ?= python3
VENV ?= .venv
FLINK_CACHE ?= $(HOME)/.cache/flink-gitops
FLINK_VERSION ?= 2.3.0
FLINK_HOME ?= $(FLINK_CACHE)/flink-$(FLINK_VERSION)/pyflink
PYTEST_ARGS ?=
DEMO_ARGS ?=

BIN := $(VENV)/bin
export FLINK_HOME
export FLINK_GITOPS_FLINK_CACHE := $(FLINK_CACHE)

.PHONY: demo test lint typecheck venv flink flink120 schemas bench clean

$(BIN)/flink-gitops: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

venv: $(BIN)/flink-gitops

# ensure_flink: pip wheels for 2.x, an assembled home for 1.20.x; locked, installed atomically.
ENSURE_FLINK = $(BIN)/python -c 'import sys; from flink_gitops.flink.local import ensure_flink; print(ensure_flink(sys.argv[1]))'

$(FLINK_HOME)/bin/jobmanager.sh: | $(BIN)/flink-gitops
	$(ENSURE_FLINK) $(FLINK_VERSION)

flink: $(FLINK_HOME)/bin/jobmanager.sh

# Flink 1.20.5 for the flink120 tests (the fixture installs it on first use otherwise; ~232 MB download).
flink120: venv
	$(ENSURE_FLINK) 1.20.5

demo: venv flink
	$(BIN)/flink-gitops demo $(DEMO_ARGS)

lint: venv
	$(BIN)/ruff check daemon tests bench
	$(BIN)/ruff format --check daemon tests bench

typecheck: venv
	$(BIN)/mypy

test: venv flink lint typecheck
	$(BIN)/pytest $(PYTEST_ARGS)

schemas: venv
	$(BIN)/flink-gitops schema --write schemas

bench: venv flink
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache
