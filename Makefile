# One entry point for people and CI alike: `make demo`, `make test`, `make bench`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# torch first, pinned to the local CPU build: any other version pulls CUDA wheels.
TORCH_SPEC ?= torch==2.13.0

.PHONY: install test test-unit test-integration lint format demo bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[all,dev]"
	touch $(STAMP)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test-unit: install
	$(BIN)/python -m pytest tests/unit --cov --cov-branch --cov-report=term --cov-report=xml --cov-fail-under=80 --junitxml=junit-unit.xml

test-integration: install
	$(BIN)/python -m pytest tests/integration tests/e2e --junitxml=junit-integration.xml

test: lint test-unit test-integration

demo: install
	$(BIN)/twentyq demo

bench: install
	$(BIN)/twentyq bench

clean:
	rm -rf $(VENV) .twentyq .pytest_cache .mypy_cache .ruff_cache .coverage coverage.xml junit-*.xml
