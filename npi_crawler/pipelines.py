"""Item pipelines: one class per concern, tunables read in ``from_crawler``, stats under ``npi/``.

``ValidateArticlePipeline`` checks parsed articles; ``ArchivePipeline`` writes the
spider's facts into the archive; ``PdfTextPipeline`` extracts and stores the text of fetched PDFs.
They write through the run's one connection, in its batches, and read the run's id from the run
state (``runstate.RunState``, found through the crawler), which opens and closes the run.
"""

from __future__ import annotations

import functools
import hashlib
import sqlite3
from collections.abc import Callable
from typing import Any

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem, NotConfigured

from npi_crawler.archive import Archive
from npi_crawler.archive.records import ArticleRecord
from npi_crawler.constants import REPEATABLE_ERRORS
from npi_crawler.items import (
    OK,
    ExpertItem,
    FetchErrorItem,
    GoneItem,
    ListingItem,
    ListPageItem,
    NotModifiedItem,
    PageRecordItem,
    PdfItem,
)
from npi_crawler.runstate import RunState, WriteRefused
from npi_crawler.site import LANGS
from npi_crawler.site.notes import DEGRADED


class ValidateArticlePipeline:
    """Drops articles that cannot be archived (no URL, unknown language, no title). With
    ``NPI_REQUIRE_DATE`` an article without any date is dropped too."""

    def __init__(self, stats, require_date: bool = False):
        self.stats = stats
        self.require_date = require_date

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ValidateArticlePipeline:
        return cls(crawler.stats, crawler.settings.getbool("NPI_REQUIRE_DATE"))

    def _drop(self, reason: str, item: ArticleRecord) -> DropItem:
        self.stats.inc_value(f"npi/items/dropped/{reason}")
        error = DropItem(f"{reason}: {item.url}")
        error.npi_reason = reason  # type: ignore[attr-defined]  # read by ArchivePipeline.dropped
        return error

    def process_item(self, item: Any) -> Any:
        if not isinstance(item, ArticleRecord):
            return item
        for note in item.notes:
            self.stats.inc_value(f"npi/parse/{note}")
        if not item.url:
            raise self._drop("no_url", item)
        if item.lang not in LANGS:
            raise self._drop("bad_lang", item)
        if not item.title:
            raise self._drop("no_title", item)
        if self.require_date and not item.published:
            raise self._drop("no_date", item)
        return item


def _stores(process_item: Callable) -> Callable:
    """A write the archive refuses (full disk, lock held too long, read-only file) is an error of
    the run that stops the crawl (RunState.refuse); the item is dropped, never counted as stored.
    After the first one, items are dropped without another wait on the archive."""

    @functools.wraps(process_item)
    def wrapper(self: _ArchiveUser, item: Any) -> Any:
        try:
            return process_item(self, item)
        except WriteRefused as exc:  # counted by RunState.writing
            raise DropItem(str(exc)) from None
        except sqlite3.Error as exc:  # counted by RunState.writing
            raise DropItem(f"not stored: {' '.join(str(exc).split())}") from None

    return wrapper


class _ArchiveUser:
    """A pipeline that writes into the archive through the run's connection."""

    def __init__(self, crawler: Crawler):
        self.crawler = crawler
        self.stats = crawler.stats
        self.state = RunState.of(crawler)

    def close_spider(self) -> None:
        self.state.commit(stop=False)  # the run is ending: what the batch holds is kept

    @property
    def run_id(self) -> int | None:
        return self.state.run_id

    def _unreadable(
        self, archive: Archive, kind: str, url: str, status: str, message: str | None, previous: str | None
    ) -> None:
        """A PDF or expert page that could not be read: a warning (stat ``npi/warnings/<kind>/<status>``
        and a run_errors row) when it starts failing; failing the same way as last time (a dead link
        every full run re-checks, a 503 every run retries), a note (``npi/notes/<kind>/<status>``):
        the first time asked a person, every later run would only mail the same news again."""
        if status == previous:
            self.stats.inc_value(f"npi/notes/{kind}/{status}")
            return
        self.stats.inc_value(f"npi/warnings/{kind}/{status}")
        archive.record_error(self.run_id, url, f"{kind}:{status}", message or status)


class ArchivePipeline(_ArchiveUser):
    """Stores articles, listings, list pages' validators, 304s, removals, fetch errors and expert pages."""

    def __init__(self, crawler: Crawler, keep_clean: bool = True):
        super().__init__(crawler)
        self.keep_clean = keep_clean

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ArchivePipeline:
        pipeline = cls(crawler, crawler.settings.getbool("NPI_KEEP_CLEAN_VERSION", True))
        crawler.signals.connect(pipeline.dropped, signal=signals.item_dropped)
        return pipeline

    def _degraded(self, archive: Archive, item: ArticleRecord) -> bool:
        """The page now parses only through fallbacks where the stored version did not."""
        worse = set(item.notes) & DEGRADED
        stored = archive.parse_notes(item.url) if worse else None
        return stored is not None and bool(worse - set(stored))

    @_stores
    def process_item(self, item: Any) -> Any:
        if not isinstance(
            item, (ArticleRecord, ListingItem, ListPageItem, NotModifiedItem, GoneItem, FetchErrorItem, ExpertItem)
        ):
            return item
        with self.state.writing() as archive:
            self._store(archive, item)
        return item

    def _store(self, archive: Archive, item: Any) -> None:
        if isinstance(item, ArticleRecord):
            if self.keep_clean and self._degraded(archive, item):
                # Most likely a changed layout: keep the clean version (the layout alarm fires).
                archive.touch_article(item.url, warc=item.warc)
                self.stats.inc_value("npi/articles/degraded_kept")
                return
            result = archive.store_article(item, run_id=self.run_id)
            self.stats.inc_value(f"npi/articles/{result.status}")
        elif isinstance(item, ListingItem):
            if new := archive.add_listings(item.urls, item.section, run_id=self.run_id):
                self.stats.inc_value("npi/listings/new", new)
        elif isinstance(item, ListPageItem):
            if item.gone:
                archive.forget_list_page(item.page.url)
            elif archive.store_list_page(item.page, run_id=self.run_id):
                self.stats.inc_value("npi/list/changed")
        elif isinstance(item, NotModifiedItem):
            archive.touch_article(item.url, warc=item.warc)
            self.stats.inc_value("npi/articles/not_modified")
        elif isinstance(item, GoneItem):
            if archive.mark_removed(item.url, item.status, warc=item.warc):
                self.stats.inc_value("npi/articles/removed")
        elif isinstance(item, FetchErrorItem):
            # Met by the run before too (a listed page the site lost is fetched by every run): recorded,
            # counted as a note; the run that first met it was the error a person hears of.
            again = item.kind.startswith(REPEATABLE_ERRORS) and archive.failed_before(self.run_id, item.url, item.kind)
            archive.record_error(self.run_id, item.url, item.kind, item.message)
            if not again:
                self.stats.inc_value("npi/errors")
            self.stats.inc_value(f"npi/{'notes/errors' if again else 'errors'}/{item.kind}")
        elif isinstance(item, ExpertItem):
            self._store_expert(archive, item)

    def _store_expert(self, archive: Archive, item: ExpertItem) -> None:
        """An expert page is context, not an article: a page that cannot be read is a warning
        (stat ``npi/warnings/expert/<status>``, a run_errors row ``expert:<status>``), and its
        parse fallbacks count under ``npi/parse/`` as an article's do."""
        if item.status == "not_modified":
            archive.touch_expert(item.url, run_id=self.run_id)
            self.stats.inc_value("npi/expert/not_modified")
            return
        if item.status != OK:
            previous = archive.expert_status(item.url)
            archive.store_expert(item.url, status=item.status, run_id=self.run_id, error=item.message)
            self._unreadable(archive, "expert", item.url, item.status, item.message, previous)
            return
        for note in item.notes:
            self.stats.inc_value(f"npi/parse/{note}")
        fields = ("lang", "name", "title", "areas", "biography", "etag", "last_modified")
        page = {f: getattr(item, f) for f in fields}
        archive.store_expert(item.url, status=OK, run_id=self.run_id, parse_notes=item.notes, **page)
        self.stats.inc_value("npi/expert/ok")

    def dropped(self, item: Any, exception: BaseException, **_kwargs: Any) -> None:
        """An article the validator dropped is an error of the run, not a silent loss (and,
        never archived, it is fetched again by the next run)."""
        if not isinstance(item, ArticleRecord) or self.state.failed:
            return
        reason = getattr(exception, "npi_reason", "invalid")
        try:
            with self.state.writing() as archive:
                archive.record_error(self.run_id, item.url, f"article:dropped/{reason}", str(exception))
        except (sqlite3.Error, WriteRefused):  # counted by RunState.writing
            return
        self.stats.inc_value("npi/errors")
        self.stats.inc_value(f"npi/errors/article:dropped/{reason}")


class PdfTextPipeline(_ArchiveUser):
    """Extracts and stores the text of each fetched PDF. Failures are warnings: stat
    ``npi/warnings/pdf/<status>`` and a run_errors row ``pdf:<status>``; the same failure as the
    PDF's last fetch is a note (``_unreadable``)."""

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> PdfTextPipeline:
        return cls(crawler)

    @_stores
    def process_item(self, item: Any) -> Any:
        if not isinstance(item, PdfItem):
            return item
        with self.state.writing() as archive:
            return self._store(archive, item)

    def _store(self, archive: Archive, item: PdfItem) -> PdfItem:
        if item.status == "not_modified":
            archive.touch_pdf(item.url, run_id=self.run_id, warc=item.warc)
            self.stats.inc_value("npi/pdf/not_modified")
            return PdfItem(url=item.url, status=item.status)
        previous = archive.pdf_statuses([item.url]).get(item.url, (None, None))[0]
        if item.status == "fetched":
            status, message = self._store_download(archive, item)
        else:
            archive.store_pdf(item.url, status=item.status, run_id=self.run_id, error=item.message, warc=item.warc)
            status, message = item.status, item.message
        if status == OK:
            self.stats.inc_value("npi/pdf/ok")
        else:
            self._unreadable(archive, "pdf", item.url, status, message, previous)
        return PdfItem(url=item.url, status=status, message=message)  # without the bytes

    def _store_download(self, archive: Archive, item: PdfItem) -> tuple[str, str | None]:
        from npi_crawler.site.pdftext import extract_text  # pypdf: only for crawls that fetch PDFs

        body = item.body or b""
        extracted = extract_text(body)
        archive.store_pdf(
            item.url,
            status=extracted.status,
            run_id=self.run_id,
            warc=item.warc,
            text=extracted.text,
            error=extracted.error,
            etag=item.etag,
            last_modified=item.last_modified,
            content_type=item.content_type,
            size=len(body),
            sha256=hashlib.sha256(body).hexdigest(),
            pages=extracted.pages,
        )
        return extracted.status, extracted.error


class WarcPagePipeline(_ArchiveUser):
    """Stores the pointer of a page written to the WARC files that stores no row of its own (a list
    page; warc_recorder.WarcRecorderMiddleware wrote the record)."""

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> WarcPagePipeline:
        if not crawler.settings.getbool("NPI_WARC", True):
            raise NotConfigured
        return cls(crawler)

    @_stores
    def process_item(self, item: Any) -> Any:
        if isinstance(item, PageRecordItem):
            with self.state.writing() as archive:
                archive.add_warc_record(item.url, item.kind, item.warc)
        return item
