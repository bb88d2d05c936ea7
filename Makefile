# The README's two commands: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
SUDO = $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test benchmark docs

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# The demo: an app and its consumers in one process, in-process queue.
demo: $(BIN)/python
	$(BIN)/pip install --quiet -e .
	$(BIN)/wsgi-taskqueue serve examples/plain/local.ini

# Programs the suite runs: its own redis-server on a free port, openssl for
# throw-away TLS certificates, Debian's Chromium for the dashboard's browser
# test (driven by Playwright from the `test` extra; Playwright's own browser
# downloads are never used).  apt-get installs whichever is missing; the
# Debian package of each has the program's name.
ensure = @missing=$$(for p in $(1); do command -v $$p >/dev/null || echo $$p; done); \
	if [ -n "$$missing" ]; then $(SUDO) apt-get update && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; fi

test: $(BIN)/python
	$(call ensure,redis-server openssl chromium)
	$(BIN)/pip install --quiet -e '.[test,redis]' -r benchmarks/requirements.txt
	$(BIN)/pytest

benchmark: $(BIN)/python
	$(call ensure,redis-server)
	$(BIN)/pip install --quiet -e '.[test,redis]' -r benchmarks/requirements.txt
	$(BIN)/python benchmarks/run.py

# The documentation site, as the suite builds it (warnings are errors).
docs: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[docs]'
	$(BIN)/python -m sphinx -W -b html docs docs/_build
