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

BIN := $(VENV)/bin
export FLINK_HOME
export FLINK_GITOPS_FLINK_CACHE := $(FLINK_CACHE)

.PHONY: demo test lint typecheck venv flink schemas bench clean

$(BIN)/flink-gitops: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

venv: $(BIN)/flink-gitops

$(FLINK_HOME)/bin/jobmanager.sh:
	mkdir -p $(FLINK_CACHE)
	$(PYTHON) -m pip install --quiet --no-deps --target $(FLINK_CACHE)/flink-$(FLINK_VERSION).tmp \
		apache-flink==$(FLINK_VERSION) apache-flink-libraries==$(FLINK_VERSION)
	rm -rf $(FLINK_CACHE)/flink-$(FLINK_VERSION)
	mv $(FLINK_CACHE)/flink-$(FLINK_VERSION).tmp $(FLINK_CACHE)/flink-$(FLINK_VERSION)

flink: $(FLINK_HOME)/bin/jobmanager.sh

demo: venv flink
	$(BIN)/flink-gitops demo

lint: venv
	$(BIN)/ruff check daemon tests bench
	$(BIN)/ruff format --check daemon tests bench

typecheck: venv
	$(BIN)/mypy

test: venv flink lint typecheck
	$(BIN)/pytest $(PYTEST_ARGS)

schemas: venv
	$(BIN)/flink-gitops validate --write-schemas

bench: venv flink
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache
