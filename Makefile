# The README's two commands: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
SUDO = $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test redis-server benchmark

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

test: $(BIN)/python redis-server
	$(BIN)/pip install --quiet -e '.[test,redis]' -r benchmarks/requirements.txt
	$(BIN)/pytest

benchmark: $(BIN)/python redis-server
	$(BIN)/pip install --quiet -e '.[test,redis]' -r benchmarks/requirements.txt
	$(BIN)/python benchmarks/run.py
