"""The crawl's pages as served, written to WARC files as they arrive (npi_crawler/archive/warc.py).

``WarcRecorderMiddleware`` is a downloader middleware placed just below Scrapy's RetryMiddleware
(550), so it sees each final answer (after retries, redirects and decompression) with the request
that got it. What it writes:

- an article page or a PDF answering 200: a ``response`` record, or an identical-payload
  ``revisit`` when the payload is the one last archived for that URL; answering 304: a
  server-not-modified ``revisit`` of that record; answering 404/410: a ``response`` (the evidence
  of a removal);
- a list page answering 200: a ``response`` only when it differs from the one last archived (the
  lists are fetched every run, and mostly unchanged).

Each exchange (response or revisit, its request, a metadata record naming the run) is fsynced
before its pointer goes on ``request.meta[WARC_META]``; the spider puts the pointer on the item and
the pipelines store it with the item's row, in one transaction. So the archive never points to a
record that is not on disk; a record whose row was never stored (a kill in between) is harmless.

``pipelines.WarcPagePipeline`` stores the pointers of the pages that have no row of their own
(list pages); the other pointers are stored by the archive pipelines with their rows.

Settings: ``NPI_WARC`` (on by default), ``NPI_WARC_DIR`` (default ``<archive stem>-warc/`` beside
``NPI_DB_PATH``), ``NPI_WARC_MAX_SIZE`` (bytes per file). The writer is opened on spider_opened,
after finishing the files a killed run left (``recover``), and closed on spider_closed. A write
that fails (a full disk) is an error of the run, recorded once; the crawl goes on without WARC,
and every article page or PDF answered after it is a ``warc:lost`` error of the run: archived
without its record. The run is then partial and needs attention (runstate.run_outcome), and the
next run fetches those pages whole (``Archive.warc_lost_urls``).
The archive is read and written through the run's connection (``runstate.RunState``): the
pointers its batch holds are seen before they are committed.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.http import Headers, Request, Response
from scrapy.settings import BaseSettings

from npi_crawler.archive.records import WarcPointer
from npi_crawler.archive.warc import (
    DEFAULT_MAX_SIZE,
    IDENTICAL_PAYLOAD,
    WarcError,
    WarcWriter,
    default_warc_dir,
    payload_digest,
)
from npi_crawler.constants import WARC_ERROR_STAT, WARC_LOST_STAT
from npi_crawler.errors import ArchiveError
from npi_crawler.runstate import RunState
from npi_crawler.spiders.common import WARC_META

logger = logging.getLogger(__name__)
KINDS = ("list", "article", "pdf")  # request.meta["npi_kind"] of the pages archived


def warc_directory(settings: BaseSettings) -> Path:
    """The WARC folder of a crawl: ``NPI_WARC_DIR``, else ``<archive stem>-warc/`` beside the archive."""
    return Path(settings.get("NPI_WARC_DIR") or default_warc_dir(settings.get("NPI_DB_PATH")))


def _header_pairs(headers: Headers) -> list[tuple[str, str]]:
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, values in headers.items() for v in values]


class WarcRecorderMiddleware:
    def __init__(self, crawler: Crawler, directory: Path, max_size: int):
        self.crawler = crawler
        self.stats = crawler.stats
        self.directory = directory.resolve()
        self.max_size = max_size
        self.state = RunState.of(crawler)
        self.writer: WarcWriter | None = None
        self.stopped: str | None = None  # why writing stopped, once it did

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> WarcRecorderMiddleware:
        settings = crawler.settings
        if not settings.getbool("NPI_WARC", True):
            raise NotConfigured
        max_size = settings.getint("NPI_WARC_MAX_SIZE", DEFAULT_MAX_SIZE)
        recorder = cls(crawler, warc_directory(settings), max_size)
        crawler.signals.connect(recorder.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(recorder.spider_closed, signal=signals.spider_closed)
        return recorder

    # -- lifecycle ------------------------------------------------------------------------------
    def spider_opened(self, spider: Any) -> None:
        try:
            self.writer = WarcWriter(
                self.directory,
                run_id=self.state.run_id,
                max_size=self.max_size,
                info={"http-header-user-agent": self.crawler.settings.get("USER_AGENT")},
            )
        except (WarcError, OSError) as exc:
            self._fail(str(self.directory), exc)
            return
        self.stats.set_value("npi/warc/directory", str(self.directory))
        for name, cut in self.writer.recovered:
            # A killed run's file: its torn last record (never pointed to) is cut off.
            logger.warning("WARC file %s left by a killed run: finished, %d bytes of a torn record cut", name, cut)
            self.stats.inc_value("npi/warc/recovered_files")

    def spider_closed(self, spider: Any) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def _fail(self, url: str, exc: BaseException) -> None:
        """The first failure to write is an error of the run; no more WARC this run."""
        message = f"WARC writing stopped for this run: {exc}; the pages are still archived as text"
        logger.error("%s", message)
        self.stopped = f"WARC writing stopped: {exc}"
        self.stats.set_value(WARC_ERROR_STAT, self.stopped)
        if self.writer is not None:
            try:
                self.writer.close()
            except OSError:
                pass
        self.writer = None
        self.stats.inc_value("npi/errors")
        self.stats.inc_value("npi/errors/warc:error")
        try:
            with self.state.writing() as archive:
                archive.record_error(self.state.run_id, url, "warc:error", message)
        except (sqlite3.Error, ArchiveError):  # counted by RunState.writing
            pass

    def _lost(self, kind: str, response: Response) -> None:
        """A page answered after writing stopped: its record is lost. An article page or a PDF
        (whose content the archive keeps) is an error of the run, which the next run fetches
        whole; a list page is fetched by every run anyway; a 304 changed nothing to record."""
        if response.status not in (200, 404, 410):
            return
        self.stats.inc_value(WARC_LOST_STAT)
        if kind == "list":
            return
        self.stats.inc_value("npi/errors")
        self.stats.inc_value("npi/errors/warc:lost")
        try:
            with self.state.writing() as archive:
                archive.record_error(self.state.run_id, response.url, "warc:lost", f"no WARC record ({self.stopped})")
        except (sqlite3.Error, ArchiveError):  # counted by RunState.writing
            pass

    # -- responses ------------------------------------------------------------------------------
    def process_response(self, request: Request, response: Response) -> Response:
        kind = request.meta.get("npi_kind")
        if kind not in KINDS:
            return response
        if self.writer is None:
            if self.stopped:
                self._lost(kind, response)
            return response
        before = self.writer.bytes_written
        try:
            pointer = self._write(kind, request, response)
        except (WarcError, OSError) as exc:
            self._fail(response.url, exc)
            self._lost(kind, response)
            return response
        if pointer is not None:
            self.stats.inc_value(f"npi/warc/{pointer.record_type}s")
            self.stats.inc_value("npi/warc/bytes", self.writer.bytes_written - before)
            request.meta[WARC_META] = pointer  # with the directory and run the archive's warc_files need
        return response

    def _write(self, kind: str, request: Request, response: Response) -> WarcPointer | None:
        """Write the exchange as the module docstring says; None when nothing is written."""
        writer, status = self.writer, response.status
        assert writer is not None
        if writer.run_id is None:
            writer.run_id = self.state.run_id
        exchange: dict[str, Any] = {
            "headers": _header_pairs(response.headers),
            "request_headers": _header_pairs(request.headers),
            "method": request.method,
            "metadata": {"npi-kind": kind},
        }
        if status not in (200, 304) and not (status in (404, 410) and kind != "list"):
            return None
        last = self.state.archive.last_warc_response(response.url) if status in (200, 304) else None
        if status == 304:
            if last is None:  # archived before WARC was on: nothing to refer to
                self.stats.inc_value("npi/warc/unreferenced_304")
                return None
            return writer.write_revisit(response.url, refers_to=WarcPointer.from_row(last), status=304, **exchange)
        if last is not None and last["payload_digest"] == payload_digest(response.body):
            if kind == "list":
                self.stats.inc_value("npi/warc/lists_unchanged")
                return None
            return writer.write_revisit(
                response.url,
                refers_to=WarcPointer.from_row(last),
                status=200,
                profile=IDENTICAL_PAYLOAD,
                body=response.body,
                **exchange,
            )
        return writer.write_response(response.url, status=status, body=response.body, **exchange)
