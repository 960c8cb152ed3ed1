# Self-bootstrapping targets: each creates .venv when it is missing.
# PYTHON: any python3 >= 3.11; found on PATH unless given (make PYTHON=/path/to/python3).
PYTHON ?= $(shell for p in python3 python3.14 python3.13 python3.12 python3.11; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
	&& { command -v $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN := PATH="$(CURDIR)/$(BIN):$$PATH"

.PHONY: lab test build bench system-deps clean-venv

$(BIN)/python:
	@if [ -z "$(PYTHON)" ]; then echo "no python3 >= 3.11 found on PATH; install one or pass PYTHON=/path/to/python3" >&2; exit 2; fi
	@echo "using $(PYTHON) ($$($(PYTHON) --version))"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Both distributions, editable: the student package with its PostgreSQL and test extras,
# and the instructor package that builds, runs and grades.
$(STAMP): $(BIN)/python pyproject.toml instructor/pyproject.toml VERSION
	$(BIN)/python -m pip install --quiet -e '.[postgres,test]' -e ./instructor
	touch $(STAMP)

# Debian's chromium for the real-browser test, PostgreSQL for the database lab and
# bubblewrap for grading, installed when missing and the machine allows it (root with
# apt). Without them the tests that need them say exactly what is missing.
system-deps:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	{ command -v pg_config >/dev/null 2>&1 || ls -d /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; } || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "note: missing$$missing and apt is not available as root; see README"; \
	  fi; \
	fi

lab: $(STAMP)
	$(BIN)/dtcourse lab

test: $(STAMP) system-deps
	$(RUN) $(BIN)/python -m ruff check dtcourse instructor tests bench
	$(RUN) $(BIN)/python -m mypy
	$(RUN) $(BIN)/python -m pytest

build: $(STAMP)
	$(RUN) $(BIN)/dtcourse build

bench: $(STAMP)
	for f in bench/*.py; do $(RUN) $(BIN)/python $$f; done

clean-venv:
	rm -rf $(VENV)
