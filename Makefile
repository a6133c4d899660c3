# One entry point for people and CI. Everything installs into ./.venv from the package registry.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DB     ?= npi.db

.PHONY: install system-deps crawl crawl-full watch test lint bench replica try-offline try-watch clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

## Chromium for the browser test of `serve` (apt-get, only if missing and root; else a note).
system-deps:
	scripts/install-system-deps

## The main job: crawl the live site (npi.or.jp, both languages) into $(DB), incrementally.
crawl: install
	$(BIN)/npi-crawler crawl --db $(DB)

## A deliberate whole pass: every list page, every known article re-checked at once (the rolling
## sweep of every run finds edits, removals and back-dated articles without it).
crawl-full: install
	$(BIN)/npi-crawler crawl --db $(DB) --full

## The change monitor: crawl, diff, alert. NOTIFY holds Apprise URLs (or set NPI_NOTIFY / use
## `npi-crawler watch --config FILE`); the first run is a silent baseline.
watch: install
	$(BIN)/npi-crawler watch --db $(DB) $(foreach url,$(NOTIFY),--notify '$(url)')

## The tests: lint, then every test (crawls run against a replica served on 127.0.0.1).
test: install system-deps lint
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check npi_crawler tests benchmarks
	$(BIN)/mypy

## Benchmarks (not tests): crawl speed vs bare Scrapy against nginx and against the replica, RSS,
## request counts, search/export on 100,000 articles, the crash test with 24 kills. Prints a table;
## see docs/performance.md. nginx and wrk come from apt-get (root only; else the nginx part skips).
bench: install
	scripts/install-bench-deps
	$(BIN)/python -m benchmarks

## Serve the bundled replica of the site on http://127.0.0.1:8000/ (Ctrl-C to stop).
replica: install
	$(BIN)/python -m tests.site --port 8000

## Crawl the bundled replica into $(DB) (npi.db: the archive the README's tour reads), without the
## network. An archive that holds a crawl of the real site is refused, never mixed with the replica.
try-offline: install
	$(BIN)/python scripts/try-offline --db $(DB) --port 8000

## The watcher end to end, offline: a baseline, then a new proposal published on the replica and
## its alert arriving on NOTIFY (any Apprise URL; without it, printed by a local channel).
try-watch: install
	NOTIFY='$(NOTIFY)' scripts/try-watch

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
