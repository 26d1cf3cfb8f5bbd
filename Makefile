VENV ?= .venv
# Test processes (pytest-xdist). Tests mostly wait on Postgres and sockets, so four keep two cores busy.
WORKERS ?= 4
STAMP := $(VENV)/.installed
# The TypeScript SDK's packages (npm ci writes this file; it changes with the lockfile).
JS := clients/js
JSDEPS := $(JS)/node_modules/.package-lock.json
# The chat app (clients/web): its packages, and its build, redone only when a source is newer than dist/.
WEB := clients/web
WEBDEPS := $(WEB)/node_modules/.package-lock.json
WEBSRC := $(shell find $(WEB)/src $(JS)/src -type f 2>/dev/null) $(wildcard $(WEB)/*.json $(WEB)/*.ts $(WEB)/index.html)
WEBBUILD := $(WEB)/dist/index.html

.PHONY: install install-js web demo test test-fast test-clock lint

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet --editable ".[dev,load]"
	touch $(STAMP)

install: $(STAMP)

$(JSDEPS): $(JS)/package-lock.json
	cd $(JS) && npm ci --no-audit --no-fund
	touch $(JSDEPS)

install-js: $(JSDEPS)

$(WEBDEPS): $(WEB)/package-lock.json
	cd $(WEB) && npm ci --no-audit --no-fund
	touch $(WEBDEPS)

$(WEBBUILD): $(WEBDEPS) $(JSDEPS) $(WEBSRC)
	cd $(WEB) && npm run --silent build

web: $(WEBBUILD)

demo: $(STAMP) web
	$(VENV)/bin/imdemo

lint: $(STAMP) $(JSDEPS) $(WEBDEPS)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	cd $(JS) && npm run --silent check
	cd $(WEB) && npm run --silent typecheck

# The browser tests (tests/web/) run in a process of their own after the rest (tests/web/conftest.py says why).
test: lint web
	$(VENV)/bin/pytest -n $(WORKERS) --ignore=tests/web
	$(VENV)/bin/pytest tests/web

# The tests that start no process or cluster (those are marked slow); no lint (make lint).
test-fast: $(STAMP)
	$(VENV)/bin/pytest -q -n $(WORKERS) -m "not slow"

# The whole suite with the machine's clock at awkward times in Shanghai and the machine in other zones
# (DESIGN rule 10; tests/run_at.sh, needs faketime): a minute before a month ends, a minute into the next,
# a leap day's last minute and the first of the day after. PYTEST_ARGS narrows it, e.g. PYTEST_ARGS=tests/bots.
test-clock: $(STAMP)
	ZONE=UTC tests/run_at.sh '2027-01-31 23:59' -q -n $(WORKERS) $(PYTEST_ARGS)
	ZONE=Asia/Shanghai tests/run_at.sh '2027-02-01 00:01' -q -n $(WORKERS) $(PYTEST_ARGS)
	ZONE=America/Los_Angeles tests/run_at.sh '2028-02-29 23:59' -q -n $(WORKERS) $(PYTEST_ARGS)
	ZONE=UTC tests/run_at.sh '2028-03-01 00:01' -q -n $(WORKERS) $(PYTEST_ARGS)
