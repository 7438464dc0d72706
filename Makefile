# The README's two commands are `make serve` and `make test`; everything else is for developers.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTANCE ?= instance
CONF := $(INSTANCE)/rpcserver.toml
STAMP := $(VENV)/.installed

.PHONY: install serve test lint format check bench docs clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,dev]'
	touch $(STAMP)

install: $(STAMP)

# First run: create ./instance and its admin; later runs: a fresh admin key replaces the last
# one `make serve` printed. Either way the key is printed, then the server starts.
serve: install
	@if [ -f $(CONF) ]; then \
	  $(BIN)/rpcserver --config $(CONF) create-api-key admin --description "make serve" \
	    --rotate --with-example; \
	else \
	  $(BIN)/rpcserver init $(INSTANCE) --key-description "make serve"; \
	fi
	$(BIN)/rpcserver --config $(CONF) serve

test: install
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check rpcserver client tests bench
	$(BIN)/ruff format --check rpcserver client tests bench

format: install
	$(BIN)/ruff format rpcserver client tests bench
	$(BIN)/ruff check --fix rpcserver client tests bench

typecheck: install
	$(BIN)/mypy

check: lint typecheck test

docs: install
	$(BIN)/python -m rpcserver.apidoc > docs/api.md

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis .mypy_cache .ruff_cache
