"""Scrapy extensions: the run lock, and a progress line on a terminal.

The run itself (its row, its connection to the archive, its batches) is ``runstate.RunState``'s.
``RunLockExtension`` takes the archive's run lock for crawls started by plain Scrapy or Scrapyd
(npi-crawler's commands hold it themselves). ``ProgressLine`` shows pages, articles and errors on
a terminal while the run goes, when ``NPI_PROGRESS`` is true (the CLI sets it on a TTY).
"""

from __future__ import annotations

import logging
import sys
import time
from typing import IO, Any

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured

from npi_crawler.archive.records import ArticleRecord
from npi_crawler.archive.runlock import held_here, run_lock
from npi_crawler.errors import LockUnavailable, RunLocked
from npi_crawler.items import FetchErrorItem, GoneItem, NotModifiedItem


class RunLockExtension:
    """The run lock for crawls not started by ``npi-crawler`` (``scrapy crawl npi``, Scrapyd jobs).
    When another run holds the lock, the crawl does not start: the error is logged and the process
    ends without touching the archive. Off with ``NPI_RUN_LOCK = False``."""

    def __init__(self, db_path: str):
        self._lock = run_lock(db_path, "scrapy crawl")
        self._lock.__enter__()  # raises RunLocked: the crawler is not built, nothing is stored

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RunLockExtension:
        db_path = crawler.settings.get("NPI_DB_PATH")
        if not crawler.settings.getbool("NPI_RUN_LOCK", True) or not db_path or held_here(db_path):
            raise NotConfigured
        try:
            ext = cls(db_path)
        except (RunLocked, LockUnavailable) as exc:
            logging.getLogger(__name__).error("%s", exc)
            raise
        crawler.signals.connect(ext.release, signal=signals.engine_stopped)
        return ext

    def release(self) -> None:
        self._lock.__exit__(None, None, None)


class Progress:
    """Counts what a run did so far and formats it as one line."""

    def __init__(self) -> None:
        self.pages = 0
        self.articles = 0
        self.checked = 0
        self.errors = 0
        self.extra: dict[str, int] = {}  # e.g. {"alerts": 2}, for commands built on a crawl

    def line(self) -> str:
        parts = [f"{self.pages} pages", f"{self.articles} articles"]
        if self.checked:
            parts.append(f"{self.checked} re-checked")
        parts.append(f"{self.errors} errors")
        parts += [f"{v} {k}" for k, v in self.extra.items()]
        return "crawling: " + ", ".join(parts)


class ProgressLine:
    """Scrapy extension: writes ``Progress.line()`` to a terminal as the run goes."""

    def __init__(self, stream: IO[str], interval: float = 0.25):
        self.stream = stream
        self.interval = interval
        self.progress = Progress()
        self._last = 0.0
        self._shown = False

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ProgressLine:
        if not crawler.settings.getbool("NPI_PROGRESS"):
            raise NotConfigured
        # Its own ESC [ K, past the terminal gate (cli/textwidth.py), which removes any ESC.
        ext = cls(getattr(sys.stderr, "unfiltered", sys.stderr))
        crawler.signals.connect(ext.response_received, signal=signals.response_received)
        crawler.signals.connect(ext.item_scraped, signal=signals.item_scraped)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def response_received(self, **_: Any) -> None:
        self.progress.pages += 1
        self.show()

    def item_scraped(self, item: Any, **_: Any) -> None:
        if isinstance(item, ArticleRecord):
            self.progress.articles += 1
        elif isinstance(item, (NotModifiedItem, GoneItem)):
            self.progress.checked += 1
        elif isinstance(item, FetchErrorItem):
            self.progress.errors += 1
        self.show()

    def show(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            return
        self._last = now
        self.stream.write("\r\x1b[K" + self.progress.line())
        self.stream.flush()
        self._shown = True

    def spider_closed(self, **_: Any) -> None:
        if self._shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
