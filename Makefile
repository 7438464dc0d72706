# The README's two commands are `make serve` and `make test`; everything else is for developers.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTANCE ?= instance
CONF := $(INSTANCE)/rpcserver.toml
STAMP := $(VENV)/.installed
# Kallithea 0.7.0's own `kallithea-api`, for tests/compat (docs/compatibility.md). Python 3.11:
# Kallithea 0.7 imports distutils, which 3.12 removed.
KALLITHEA_PYTHON ?= $(shell command -v python3.11 2>/dev/null || echo $(PYTHON))
KALLITHEA_VENV ?= .venv-kallithea
KALLITHEA_REQS := tests/compat/kallithea-client.txt
KALLITHEA_STAMP := $(KALLITHEA_VENV)/.installed

.PHONY: install kallithea-client kallithea-server serve test lint format typecheck check bench bench-hg docs clean fuzz

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,dev]'
	touch $(STAMP)

install: $(STAMP)

# Kallithea with --no-deps plus only what its client imports (the file says why); mercurial pure,
# because 5.8's C extensions do not build on Python 3.11; pip 24.0, because later pips refuse
# celery 5.0.5's metadata. Checked by running the client before the stamp is written.
$(KALLITHEA_STAMP): $(KALLITHEA_REQS)
	rm -rf $(KALLITHEA_VENV)
	$(KALLITHEA_PYTHON) -m venv $(KALLITHEA_VENV)
	$(KALLITHEA_VENV)/bin/python -m pip install --quiet pip==24.0
	$(KALLITHEA_VENV)/bin/python -m pip install --quiet --no-deps \
	  --config-settings=--global-option=--pure mercurial==5.8.1
	DISABLE_SQLALCHEMY_CEXT=1 $(KALLITHEA_VENV)/bin/python -m pip install --quiet --no-deps \
	  -r $(KALLITHEA_REQS)
	$(KALLITHEA_VENV)/bin/kallithea-api --help > /dev/null
	touch $(KALLITHEA_STAMP)

kallithea-client: $(KALLITHEA_STAMP)

# A real Kallithea 0.7.0 server, for tests/differential: built into a cache outside the clone
# (${XDG_CACHE_HOME:-~/.cache}/rpcserver/kallithea-0.7.0), from nothing in about 50 s; a no-op
# (under a second) while the stamp there matches tests/differential/kallithea-server.txt and
# the script. The script checks that itself, so the target is always run.
kallithea-server:
	KALLITHEA_PYTHON=$(KALLITHEA_PYTHON) tests/differential/install-kallithea.sh > /dev/null

# First run: create ./instance and its admin; later runs: the schema is brought up to date and
# a fresh admin key replaces the last one `make serve` printed. Either way the key is printed,
# then the server starts (making instance/secret.keys if it is missing).
serve: install
	@if [ -f $(CONF) ]; then \
	  $(BIN)/rpcserver --config $(CONF) db upgrade && \
	  $(BIN)/rpcserver --config $(CONF) create-api-key admin --description "make serve" \
	    --rotate --with-example; \
	else \
	  $(BIN)/rpcserver init $(INSTANCE) --key-description "make serve"; \
	fi
	$(BIN)/rpcserver --config $(CONF) serve

test: install kallithea-client kallithea-server
	$(BIN)/pytest

# ruff's linter, not its formatter: the code keeps its hand-kept layout (aligned hanging
# indents), which a one-off reformat of every file would churn without changing meaning.
lint: install
	$(BIN)/ruff check rpcserver client tests bench
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff check --fix rpcserver client tests bench

typecheck: install
	$(BIN)/mypy

check: lint typecheck test

# docs/api.md and client/methods.json (rpc-api's method table), both from the method registry.
docs: install
	$(BIN)/python -m rpcserver.admin.apidoc > docs/api.md
	$(BIN)/python -m rpcserver.admin.apidoc --client-table > client/methods.json

# Load, scaling and memory figures (docs/performance.md); about 15 minutes, not part of `check`.
# Installs wrk with apt-get when it is missing. Options: make bench BENCH_ARGS="--rounds 1".
BENCH_ARGS ?=
bench: install
	$(BIN)/python -m bench $(BENCH_ARGS)

# hg: pull against plain hg pull, get_repo/get_changesets against git (bench/hg.py); a few
# minutes, the 5,000-changeset remote cached in ~/.cache/rpcserver/bench/ after the first run.
bench-hg: install
	$(BIN)/python -m bench.hg $(BENCH_ARGS)

# The hostile fuzz suites at scale (tests/security/test_fuzz_*.py; CI runs them at 10,000
# bodies and 40 examples per method): 200,000 bodies, 300 examples per method, new examples
# each run. About 5 minutes; not part of `check`. Reproduce a bulk failure with its FUZZ_SEED.
FUZZ_BODIES ?= 200000
FUZZ_EXAMPLES ?= 300
FUZZ_SEED ?= 20250601
fuzz: install
	FUZZ_BODIES=$(FUZZ_BODIES) FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) FUZZ_SEED=$(FUZZ_SEED) FUZZ_RANDOM=1 \
	  $(BIN)/pytest tests/security/test_fuzz_envelope.py tests/security/test_fuzz_args.py -q -s

clean:
	rm -rf $(VENV) $(KALLITHEA_VENV) build *.egg-info .pytest_cache .hypothesis .mypy_cache .ruff_cache
