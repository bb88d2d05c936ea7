# The README's two commands: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
SUDO = $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test redis-server chromium benchmark

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# The demo: an app and its consumers in one process, in-process queue.
demo: $(BIN)/python
	$(BIN)/pip install --quiet -e .
	$(BIN)/wsgi-taskqueue serve examples/plain/local.ini

# The suite starts its own redis-server on a free port; it only needs the
# program to exist.
redis-server:
	@command -v redis-server >/dev/null || { \
	  $(SUDO) apt-get update && $(SUDO) apt-get install -y redis-server; }

# The dashboard's browser test drives Debian's Chromium through Playwright
# (the `test` extra); Playwright's own browser downloads are never used.
chromium:
	@command -v chromium >/dev/null || { \
	  $(SUDO) apt-get update && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; }

test: $(BIN)/python redis-server chromium
	$(BIN)/pip install --quiet -e '.[test,redis]' -r benchmarks/requirements.txt
	$(BIN)/pytest

benchmark: $(BIN)/python redis-server
	$(BIN)/pip install --quiet -e '.[test,redis]' -r benchmarks/requirements.txt
	$(BIN)/python benchmarks/run.py
