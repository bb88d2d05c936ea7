# The README's two commands: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
SUDO = $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test benchmark docs

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# The demo: an app and its consumers in one process, its tasks in a SQLite
# file under examples/plain.
demo: $(BIN)/python
	$(BIN)/pip install --quiet -e .
	$(BIN)/wsgi-taskqueue serve examples/plain/sqlite.ini

# Programs the suite runs: its own redis-server on a free port, openssl for
# throw-away TLS certificates, Debian's Chromium for the dashboard's browser
# test (driven by Playwright from the `test` extra; Playwright's own browser
# downloads are never used), PostgreSQL's and MariaDB's servers (each test
# session starts its own, in a temporary directory, on a free port).
# apt-get installs whichever is missing; `program=package` names a Debian
# package that is not called like its program.
ensure = @missing=$$(for p in $(1); do command -v $${p%%=*} >/dev/null || \
	  ls /usr/lib/postgresql/*/bin/$${p%%=*} >/dev/null 2>&1 || echo $${p\#*=}; done); \
	if [ -n "$$missing" ]; then $(SUDO) apt-get update && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; fi

# The suite runs in parallel (pytest-xdist): a worker per CPU, at most
# TEST_WORKERS_MAX; `make test TEST_WORKERS=0` runs it in one process.
# Whole modules go to one worker (loadscope; those with the most tests
# first): a module's fixtures (a Zope site, a ZEO server, the benchmark
# smoke run) start once.
# load and worksteal would start them in each worker; loadgroup ignores
# its marks under pytest 9.2 (pytest-xdist issue #1386).
TEST_WORKERS ?= logical
TEST_WORKERS_MAX ?= 4

test: $(BIN)/python
	$(call ensure,redis-server openssl chromium initdb=postgresql mariadbd=mariadb-server)
	$(BIN)/pip install --quiet -e '.[test,redis]' -r benchmarks/requirements.txt
	$(BIN)/pytest -n $(TEST_WORKERS) --maxprocesses $(TEST_WORKERS_MAX) \
	  --dist loadscope

benchmark: $(BIN)/python
	$(call ensure,redis-server initdb=postgresql)
	$(BIN)/pip install --quiet -e '.[test,redis]' -r benchmarks/requirements.txt
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/sql.py

# The documentation site, as the suite builds it (warnings are errors).
docs: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[docs]'
	$(BIN)/python -m sphinx -W -b html docs docs/_build
