# Self-bootstrapping targets: each creates .venv when it is missing.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXTRAS ?= test

.PHONY: lab test build bench system-deps clean-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# Debian's chromium for the real-browser test, and PostgreSQL for the database lab,
# installed when missing and the machine allows it (root with apt). Without them the
# tests that need them say exactly what is missing.
system-deps:
	@if ! command -v chromium >/dev/null 2>&1 || [ ! -x /usr/lib/postgresql/15/bin/initdb ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian packages: chromium postgresql"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium postgresql >/dev/null; \
	  else \
	    echo "note: chromium or PostgreSQL 15 missing and apt is not available as root; see README"; \
	  fi; \
	fi

lab: $(STAMP)
	$(BIN)/dtcourse lab

test: $(STAMP) system-deps
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m ruff check dtcourse tests bench
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest

build: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dtcourse build

bench: $(STAMP)
	for f in bench/*.py; do PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python $$f; done

clean-venv:
	rm -rf $(VENV)
