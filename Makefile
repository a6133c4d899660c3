# One entry point for people and CI. Everything installs into ./.venv from the package registry.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DB     ?= npi.db

.PHONY: install crawl crawl-full test lint bench replica try-offline clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

## The main job: crawl the live site (npi.or.jp, both languages) into $(DB), incrementally.
crawl: install
	$(BIN)/npi-crawler crawl --db $(DB)

## The weekly pass: every list page, every known article re-checked (edits, removals).
crawl-full: install
	$(BIN)/npi-crawler crawl --db $(DB) --full

## The tests: lint, then every test (crawls run against a replica served on 127.0.0.1).
test: install lint
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check npi_crawler tests benchmarks

## Benchmarks (not tests): crawl speed vs bare Scrapy, RSS, request counts, search/export on
## 100,000 articles, the crash test with 24 kills. Prints a table; see docs/performance.md.
bench: install
	$(BIN)/python -m benchmarks

## Serve the bundled replica of the site on http://127.0.0.1:8000/ (Ctrl-C to stop).
replica: install
	$(BIN)/python -m tests.site --port 8000

## Crawl the bundled replica into replica.db, without the network.
try-offline: install
	$(BIN)/python -m tests.site --port 8000 & pid=$$!; sleep 2; \
	$(BIN)/npi-crawler crawl --db replica.db --base-url http://127.0.0.1:8000/; rc=$$?; \
	kill $$pid; exit $$rc

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
