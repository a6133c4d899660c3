"""The run being crawled, in one place: ``RunState``, a Scrapy extension the other components find
through the crawler (``RunState.of(crawler)``).

It owns the run's one connection to the archive, which every writer of the crawl shares (the
pipelines' articles, listings, PDFs, experts and errors, the WARC recorder's pointers and errors,
the run row), and writes through it in batches (archive/batches.py): a transaction spans
``NPI_COMMIT_ITEMS`` items or ``NPI_COMMIT_SECONDS`` seconds, and is committed then, at the end of
the run and at a stop. It records the run (a ``runs`` row, status ``running``, committed at once)
on ``spider_opened`` and finishes it on ``spider_closed`` with its counts, a status read from the
stats and the close reason (like Scrapy's CoreStats), and its ``ParseHealth`` built from the
parser's notes. A write the archive refuses (a full disk, a lock held past the busy timeout, a
read-only file) is counted with every write it lost and stops the crawl (``refuse``).
"""

from __future__ import annotations

import logging
import sqlite3
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import CloseSpider
from scrapy.utils.asyncio import create_looping_call
from scrapy.utils.defer import deferred_from_coro

from npi_crawler.archive import Archive, ParseHealth
from npi_crawler.archive.batches import Batches
from npi_crawler.archive.db import sqlite_error_message
from npi_crawler.archive.runlock import held_here
from npi_crawler.constants import PARSE_STAT, WARC_ERROR_STAT, WARC_LOST_STAT, run_warnings
from npi_crawler.errors import ArchiveError, NpiError

# Stats the run adds to Scrapy's dump (the log, Scrapyd's job stats); nothing reads them back.
RUN_ID_STAT = "npi/run_id"
RUN_STATUS_STAT = "npi/run_status"
RETRY_UNTIL_STAT = "npi/retry_after/until"  # the site's Retry-After: no request before then
ARCHIVE_ERROR_STAT = "npi/archive/error"  # the first refused write's message
ARCHIVE_WRITE_ERRORS = "npi/errors/archive:write"  # writes lost: refused, rolled back or dropped after
ARCHIVE_ERROR_REASON = "archive_error"  # the close reason of a crawl the archive stopped
RETRY_AFTER_REASON = "retry_after"  # the close reason of a crawl the site's Retry-After stopped
HOLD_REASON = "retry_after_hold"  # ... of a crawl that did not start: the site asked to wait
logger = logging.getLogger(__name__)
_DETACHED: weakref.WeakKeyDictionary[Crawler, RunState] = weakref.WeakKeyDictionary()


class WriteRefused(ArchiveError):
    """A write not even tried: the archive refused an earlier write of this run."""


def _answered_lists(stats: dict[str, Any]) -> int:
    """List pages that answered this run: read, unchanged (304), or unchanged by the check that
    ran before the crawl (npi_crawler/check.py)."""
    return sum(stats.get(k, 0) for k in ("npi/list/pages", "npi/list/not_modified", "npi/check/lists_not_modified"))


def run_counts(stats: dict[str, Any]) -> dict[str, int]:
    """The ``runs`` columns a finished crawl fills, from its stats (the check's requests and
    304s included: the check before the crawl asked them for this run)."""
    return {
        "requests": stats.get("downloader/request_count", 0) + stats.get("npi/check/requests", 0),
        "responses": stats.get("downloader/response_count", 0) + stats.get("npi/check/responses", 0),
        "list_pages": _answered_lists(stats),
        "articles_new": stats.get("npi/articles/new", 0),
        "articles_updated": stats.get("npi/articles/updated", 0),
        "articles_unchanged": stats.get("npi/articles/unchanged", 0),
        "articles_not_modified": stats.get("npi/articles/not_modified", 0) + stats.get("npi/check/articles_not_modified", 0),
        "articles_removed": stats.get("npi/articles/removed", 0),
        "errors": stats.get("npi/errors", 0),
        # What a person must act on; the other parse notes are only counted (run_parse_notes).
        "warnings": sum(run_warnings(stats).values()),
    }


_STORED = ("npi/articles/new", "npi/articles/updated", "npi/articles/unchanged", "npi/articles/not_modified", "npi/articles/removed")


def run_outcome(stats: dict[str, Any], reason: str) -> tuple[str, str | None]:
    """The run's status, and why it is not ok when a person should know (one line; None when
    the next run mends it by itself).

    A run stopped by a signal (Scrapy's close reason ``shutdown``) is interrupted, never ok. One
    the site's Retry-After stopped is partial: what was not asked is asked after that time. A run
    that never got a list page answered (read, 304, or unchanged by the check before the crawl),
    or whose every article page failed (it archived nothing: the site's articles answer 503,
    say), has checked nothing: it failed. One that lost some list pages is partial; so is one
    that archived pages without their WARC record (a full WARC folder), which a person must see
    to. After any of them the next run walks every list page again, and fetches whole the pages
    that have no record."""
    if reason == "shutdown":
        return "interrupted", None
    if reason == RETRY_AFTER_REASON:
        return "partial", None
    if reason != "finished":
        return "failed", f"the crawl ended early ({reason})"
    if not _answered_lists(stats):
        return "failed", "no list page answered"
    if stats.get("npi/article/errors") and not any(stats.get(key) for key in _STORED):
        failed = stats["npi/article/errors"]
        kinds = sorted({k.rpartition("article:")[2] for k in stats if k.startswith(("npi/errors/article:", "npi/notes/errors/article:"))})
        return "failed", f"it archived nothing: the {failed} article page(s) it requested all failed ({', '.join(kinds)})"
    if lost := stats.get(WARC_LOST_STAT):
        why = stats.get(WARC_ERROR_STAT, "WARC writing stopped")
        return "partial", f"{lost} page(s) have no WARC record ({why}); the next run fetches them whole"
    if stats.get("npi/list/errors"):
        return "partial", None
    return "ok", None


def parse_health(stats: dict[str, Any]) -> ParseHealth:
    """The run's parse health from the counts the spider and the pipelines kept: the pages
    parsed, and per parser note the pages noted with it (stats ``npi/parse/<note>``)."""
    return ParseHealth(
        article_pages=int(stats.get("npi/article/pages", 0)),
        list_pages=int(stats.get("npi/list/pages", 0)),
        notes={k.removeprefix(PARSE_STAT): int(v) for k, v in stats.items() if k.startswith(PARSE_STAT) and v},
    )


class RunState:
    """The run of one crawl: id, archive connection and batches, refusals, and at close its
    status, counts and parse health."""

    def __init__(self, crawler: Crawler, db_path: str, *, commit_items: int = 1, commit_seconds: float = 0.0):
        self.crawler = crawler
        self.stats = crawler.stats
        self.db_path = db_path
        self.commit_items = commit_items
        self.commit_seconds = commit_seconds
        self.run_id: int | None = None
        self.status: str | None = None  # set when the run is finished
        self.problem: str | None = None  # why it is not ok, set when the run is finished
        self.health: ParseHealth | None = None  # set when the run is finished
        self.failure: str | None = None  # the first refused write's one line
        self.lost_writes = 0
        self._batches: Batches[Archive] | None = None
        self._timer: Any = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RunState:
        settings = crawler.settings
        state = cls(
            crawler,
            settings.get("NPI_DB_PATH"),
            commit_items=settings.getint("NPI_COMMIT_ITEMS"),
            commit_seconds=settings.getfloat("NPI_COMMIT_SECONDS"),
        )
        crawler.signals.connect(state.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(state.spider_closed, signal=signals.spider_closed)
        return state

    @classmethod
    def of(cls, crawler: Crawler) -> RunState:
        """The run state of ``crawler``: the extension (settings.EXTENSIONS). A crawler built
        without it (a test, a project that left it out) gets one that records no run and commits
        every item."""
        try:
            state = crawler.get_extension(cls)
        except RuntimeError:  # its extensions are not built yet (the crawl has not started)
            state = None
        if state is None:
            state = _DETACHED.setdefault(crawler, cls(crawler, crawler.settings.get("NPI_DB_PATH")))
        return state

    # -- the archive: one connection, batched ---------------------------------------------------
    @property
    def archive(self) -> Archive:
        """The run's connection (opened on first use): reads see this run's writes."""
        return self._open().archive

    def _open(self) -> Batches[Archive]:
        if self._batches is None:
            archive = Archive.open(self.db_path)
            self._batches = Batches(archive, items=self.commit_items, seconds=self.commit_seconds)
        return self._batches

    @contextmanager
    def writing(self) -> Iterator[Archive]:
        """The writes of one item, kept or undone together in the open batch. A write the archive
        refuses is recorded (``refuse``) and raised (sqlite3.Error); after the first one, every
        write is counted as lost without another wait on the archive (WriteRefused)."""
        if self.failed:
            self.refuse(None)
            raise WriteRefused("not stored: the archive refused an earlier write of this run")
        try:
            with self._open().item() as archive:
                yield archive
        except sqlite3.Error as exc:
            self.refuse(exc)
            raise

    def commit(self, *, stop: bool = True) -> None:
        """Commit the open batch now (a pipeline closing, a stop, the idle timer); a refusal
        stops the crawl unless ``stop`` is False (it is ending anyway)."""
        if self._batches is None:
            return
        try:
            self._batches.commit()
        except sqlite3.Error as exc:
            self.refuse(exc, stop=stop)

    def _tick(self) -> None:
        """The idle timer: a batch older than NPI_COMMIT_SECONDS is committed even when no item
        comes to fill it (a slow answer, a long retry)."""
        if self._batches is not None and self._batches.due():
            self.commit()

    # -- refusals -------------------------------------------------------------------------------
    @property
    def failed(self) -> bool:
        return self.failure is not None

    def refuse(self, exc: BaseException | None, *, stop: bool = True) -> None:
        """Count a write the archive refused (``exc``; None: an item dropped unstored after an
        earlier refusal), with the items of the open batch it took with it, as errors of the run
        and, at the first one, stop the crawl: a run that cannot store what it fetches must end
        ``failed``, never ``ok``; the next run walks every list page and fetches what it lost."""
        lost = 1 + (self._batches.settle() if self._batches is not None else 0)
        self.lost_writes += lost
        self.stats.inc_value("npi/errors", lost)
        self.stats.inc_value(ARCHIVE_WRITE_ERRORS, lost)
        if exc is None or self.failure is not None:
            return
        message = str(exc) if isinstance(exc, NpiError) else sqlite_error_message(exc, self.db_path)  # type: ignore[arg-type]
        self.failure = message
        self.stats.set_value(ARCHIVE_ERROR_STAT, message)
        logger.error("the archive refused a write, the crawl stops: %s", message)
        engine = self._engine()
        if stop and engine is not None and engine.spider is not None:
            deferred_from_coro(engine.close_spider_async(reason=ARCHIVE_ERROR_REASON))

    def hold_site(self, until: str, url: str, message: str) -> bool:
        """The site asked to wait until ``until`` (a 429/503 with Retry-After): kept in the run's
        row and its errors, committed at once. False when the crawl already stops for it."""
        first = not self.stats.get_value(RETRY_UNTIL_STAT)
        self.stats.set_value(RETRY_UNTIL_STAT, until)
        self.stats.inc_value("npi/errors")
        try:
            with self.writing() as archive:
                if self.run_id is not None:
                    archive.set_retry_after(self.run_id, until)
                archive.record_error(self.run_id, url, "site:retry_after", message)
            self.commit()
        except (sqlite3.Error, ArchiveError):  # counted by writing()
            pass
        logger.error("the site asked to wait, the crawl stops: %s (%s)", message, url)
        return first

    # -- the run's row --------------------------------------------------------------------------
    def spider_opened(self, spider: Any) -> None:
        try:
            archive = self.archive
            self.commit(stop=False)
            hold = archive.retry_hold()
            if hold and not self.crawler.settings.getbool("NPI_IGNORE_RETRY_AFTER"):
                # A crawl started by plain Scrapy or Scrapyd obeys it too (the CLI never gets here).
                logger.error("the site asked for no request before %s (run %s); this crawl sends nothing", hold["until"], hold["run_id"])
                self.stats.set_value(RETRY_UNTIL_STAT, hold["until"])
                raise CloseSpider(HOLD_REASON)
            with archive.atomic():  # committed at once: a killed run is found `running`
                if held_here(self.db_path):  # no other run can be going: a `running` one was killed
                    archive.mark_killed_runs()
                self.run_id = archive.start_run(
                    mode="full" if getattr(spider, "full", False) else "incremental",
                    base_url=getattr(spider, "base_url", ""),
                    langs=getattr(spider, "langs", ()),
                    sections=getattr(spider, "sections", ()),
                )
        except (sqlite3.Error, ArchiveError) as exc:
            self.refuse(exc, stop=False)
            raise CloseSpider(ARCHIVE_ERROR_REASON) from None  # Scrapy 2.19: not a single request
        self.stats.set_value(RUN_ID_STAT, self.run_id)
        if self._engine() is not None and self.commit_seconds > 0:
            self._timer = create_looping_call(self._tick)
            self._timer.start(self.commit_seconds, now=False)

    def spider_closed(self, spider: Any, reason: str) -> None:
        self._stop_timer()
        self.commit(stop=False)  # before the counts: a batch it loses counts among the run's errors
        self.finish(reason)

    def finish(self, reason: str) -> None:
        """Finish the run's row with its counts, status and parse health, then close the
        connection. ``reason``: Scrapy's close reason (``shutdown`` after a stop signal)."""
        if self.run_id is None:
            self.close()
            return
        stats = self.stats.get_stats()
        self.status, self.problem = ("failed", self.failure) if self.failed else run_outcome(stats, reason)
        self.health = parse_health(stats)
        self.stats.set_value(RUN_STATUS_STAT, self.status)
        try:
            with self.archive.atomic():
                counts = run_counts(stats)
                self.archive.finish_run(self.run_id, status=self.status, counts=counts, stats=stats, problem=self.problem)
                self.archive.store_parse_health(self.run_id, self.health)
        except (sqlite3.Error, ArchiveError) as exc:
            self.refuse(exc, stop=False)
            self._fail_row(self.run_id)
        self.close()

    def _fail_row(self, run_id: int) -> None:
        """The row could not be finished: its status and one-line problem may still fit (a full
        disk; status then gives that reason, not "killed"). Else the row stays ``running``: status
        and doctor report it, and the next run walks every page."""
        self.status, self.problem = "failed", self.failure or "the archive refused a write"
        try:
            with self.archive.atomic():
                self.archive.fail_run(run_id, self.problem)
        except (sqlite3.Error, ArchiveError):
            pass

    def close(self) -> None:
        """Commit what the open batch holds and close the connection (again: nothing to do)."""
        self._stop_timer()
        if self._batches is None:
            return
        self.commit(stop=False)
        self._batches.archive.close()
        self._batches = None

    def close_after_stop(self) -> None:
        """After the reactor stopped before ``spider_closed`` (a second stop signal, the grace
        period over): what the batch holds is committed and the run recorded as interrupted."""
        if self._batches is None:
            return
        self.commit(stop=False)
        run = self.archive.run(self.run_id) if self.run_id is not None else None
        if run is not None and run["status"] == "running":
            self.finish("shutdown")
        self.close()

    def _engine(self) -> Any:
        """The crawl's engine; None for a crawler that is not crawling (Scrapy 2.19 raises)."""
        try:
            return self.crawler.engine
        except RuntimeError:
            return None

    def _stop_timer(self) -> None:
        if self._timer is not None and self._timer.running:
            self._timer.stop()
        self._timer = None
