# The two quick-start commands:
#   make demo   - venv + project + local Flink 2.3.0, then `flink-gitops demo`: the daemon on a Git
#                 repo made from example-repo deploys it, then upgrades a commit through a savepoint
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

.PHONY: demo test lint typecheck venv flink flink120 schemas bench clean lock

# Refresh the lock files on purpose (the only way dependencies change): a pinned uv resolves
# pyproject.toml for Python 3.11+ on every platform; runtime.lock is dev.lock's subset.
UV_VERSION ?= 0.9.30
UV_TOOL := $(VENV)-uv/bin/uv
UV_COMPILE = $(UV_TOOL) pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes --no-header --quiet
lock:
	test -x $(UV_TOOL) || { $(PYTHON) -m venv $(VENV)-uv && $(VENV)-uv/bin/pip install --quiet uv==$(UV_VERSION); }
	$(UV_COMPILE) $(LOCK_ARGS) --extra dev --extra build -o requirements/dev.lock
	grep -E '^[a-z0-9]' requirements/dev.lock | sed 's/ *\\$$//' > requirements/.pins
	$(UV_COMPILE) --no-annotate --extra build -c requirements/.pins -o requirements/runtime.lock
	rm -f requirements/.pins

# Installs only what requirements/dev.lock pins, by hash; the project itself goes in without
# build isolation so that its build backend (setuptools, wheel) comes from the lock too.
$(BIN)/flink-gitops: pyproject.toml requirements/dev.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes --no-deps -r requirements/dev.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
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
	$(BIN)/lint-imports --no-cache

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
