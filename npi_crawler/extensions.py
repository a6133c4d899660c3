"""Scrapy extensions: the run's lifecycle, the run lock, and a progress line on a terminal.

``RunLifecycle`` records the run in the archive on ``spider_opened`` (a ``runs`` row, status
``running``) and finishes it on ``spider_closed`` with its counts and a status read from the stats
and the close reason, like Scrapy's own CoreStats. Pipelines only store items; they read the run
id with ``current_run_id``.

``RunLockExtension`` takes the archive's run lock for crawls started by plain Scrapy or Scrapyd
(npi-crawler's commands hold it themselves). ``ProgressLine`` shows pages, articles and errors on
a terminal while the run goes, when ``NPI_PROGRESS`` is true (the CLI sets it on a TTY).
"""

from __future__ import annotations

import logging
import sqlite3
import sys
import time
from typing import IO, Any

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import CloseSpider, NotConfigured
from scrapy.utils.defer import deferred_from_coro

from npi_crawler.archive import Archive
from npi_crawler.archive.db import sqlite_error_message
from npi_crawler.archive.records import ArticleRecord
from npi_crawler.archive.runlock import held_here, run_lock
from npi_crawler.constants import WARNING_PREFIXES
from npi_crawler.errors import ArchiveError, LockUnavailable, NpiError, RunLocked
from npi_crawler.items import FetchErrorItem, GoneItem, NotModifiedItem

RUN_ID_STAT = "npi/run_id"
RUN_STATUS_STAT = "npi/run_status"
# A write to the archive that failed (full disk, a lock held past the busy timeout, a read-only
# file): the first one's message, and the count of writes lost.
ARCHIVE_ERROR_STAT = "npi/archive/error"
ARCHIVE_WRITE_ERRORS = "npi/errors/archive:write"
ARCHIVE_ERROR_REASON = "archive_error"
logger = logging.getLogger(__name__)


def archive_failed(crawler: Crawler, exc: BaseException | None, *, stop: bool = True) -> None:
    """Count a write the archive refused (``exc``; None: an item dropped unstored after an earlier
    refusal) as an error of the run and, at the first one, stop the crawl: a run that cannot store
    what it fetches must end ``failed``, never ``ok``; the next run walks every list page and
    fetches what this one lost."""
    stats = crawler.stats
    stats.inc_value("npi/errors")
    stats.inc_value(ARCHIVE_WRITE_ERRORS)
    if exc is None or stats.get_value(ARCHIVE_ERROR_STAT) is not None:
        return
    db_path = crawler.settings.get("NPI_DB_PATH")
    message = str(exc) if isinstance(exc, NpiError) else sqlite_error_message(exc, db_path)  # type: ignore[arg-type]
    stats.set_value(ARCHIVE_ERROR_STAT, message)
    logger.error("the archive refused a write, the crawl stops: %s", message)
    if stop and crawler.engine is not None and crawler.engine.spider is not None:
        deferred_from_coro(crawler.engine.close_spider_async(reason=ARCHIVE_ERROR_REASON))


def archive_has_failed(crawler: Crawler) -> bool:
    return crawler.stats.get_value(ARCHIVE_ERROR_STAT) is not None


def current_run_id(crawler: Crawler) -> int | None:
    """The id of the run ``RunLifecycle`` opened for this crawl (None before it did)."""
    return crawler.stats.get_value(RUN_ID_STAT) if crawler.stats else None


def run_counts(stats: dict[str, Any]) -> dict[str, int]:
    """The ``runs`` columns a finished crawl fills, from its stats."""
    return {
        "requests": stats.get("downloader/request_count", 0),
        "responses": stats.get("downloader/response_count", 0),
        "list_pages": stats.get("npi/list/pages", 0),
        "articles_new": stats.get("npi/articles/new", 0),
        "articles_updated": stats.get("npi/articles/updated", 0),
        "articles_unchanged": stats.get("npi/articles/unchanged", 0),
        "articles_not_modified": stats.get("npi/articles/not_modified", 0),
        "articles_removed": stats.get("npi/articles/removed", 0),
        "errors": stats.get("npi/errors", 0),
        "warnings": sum(v for k, v in stats.items() if k.startswith(WARNING_PREFIXES)),
    }


def run_status(stats: dict[str, Any], reason: str) -> str:
    """A run stopped by a signal (Scrapy's close reason ``shutdown``) is interrupted, never ok. A
    run that never got a list page answered has checked nothing: it failed. One that lost some
    list pages is partial. After any of them the next run walks every list page again."""
    if reason == "shutdown":
        return "interrupted"
    if reason != "finished" or not stats.get("npi/list/pages"):
        return "failed"
    if stats.get("npi/list/errors"):
        return "partial"
    return "ok"


class RunLifecycle:
    """The run's row in ``runs``, opened and finished on Scrapy's signals."""

    def __init__(self, crawler: Crawler, db_path: str):
        self.crawler = crawler
        self.db_path = db_path

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RunLifecycle:
        ext = cls(crawler, crawler.settings.get("NPI_DB_PATH"))
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def spider_opened(self, spider: Any) -> None:
        try:
            with Archive.open(self.db_path) as archive:
                if held_here(self.db_path):  # no other run can be going: a `running` one was killed
                    archive.mark_killed_runs()
                run_id = archive.start_run(
                    mode="full" if getattr(spider, "full", False) else "incremental",
                    base_url=getattr(spider, "base_url", ""),
                    langs=getattr(spider, "langs", ()),
                    sections=getattr(spider, "sections", ()),
                )
        except (sqlite3.Error, ArchiveError) as exc:
            archive_failed(self.crawler, exc, stop=False)
            raise CloseSpider(ARCHIVE_ERROR_REASON) from None  # Scrapy 2.19: not a single request
        self.crawler.stats.set_value(RUN_ID_STAT, run_id)

    def spider_closed(self, spider: Any, reason: str) -> None:
        run_id = current_run_id(self.crawler)
        if run_id is None:
            return
        stats = self.crawler.stats.get_stats()
        status = run_status(stats, reason)
        self.crawler.stats.set_value(RUN_STATUS_STAT, status)
        try:
            with Archive.open(self.db_path) as archive:
                archive.finish_run(run_id, status=status, counts=run_counts(stats), stats=stats)
        except (sqlite3.Error, ArchiveError) as exc:
            # The row stays ``running``: status and doctor report it, the next run walks every page.
            archive_failed(self.crawler, exc, stop=False)


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
