VENV ?= .venv
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast lint

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet --editable ".[dev,load]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/imserver demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

test: lint
	$(VENV)/bin/pytest

# The tests that start no process or cluster (those are marked slow); no lint (make lint).
test-fast: $(STAMP)
	$(VENV)/bin/pytest -q -m "not slow"
