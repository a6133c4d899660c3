"""Item pipelines: one class per concern, tunables read in ``from_crawler``.

``ValidateArticlePipeline`` checks and normalizes parsed articles; ``ArchivePipeline`` writes every
item into the SQLite archive and records the run. Stats go under ``npi/``.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem

from npi_crawler.items import ArticleItem, FetchErrorItem, GoneItem, ListingItem, NotModifiedItem
from npi_crawler.parsing import LANGS, normalize_space
from npi_crawler.storage import Archive

# Parse notes that mean "the documented selectors found nothing" for a field that matters.
DEGRADED_NOTES = {
    "fallback/no_main",
    "fallback/title_og",
    "fallback/title_tag",
    "miss/title",
    "fallback/body_main",
    "miss/body",
    "fallback/date_any",
    "miss/date",
}


class ValidateArticlePipeline:
    """Drops articles that cannot be archived (no URL, unknown language, no title) and
    normalizes the rest. With ``NPI_REQUIRE_DATE`` an article without any date is dropped too."""

    def __init__(self, stats, require_date: bool = False):
        self.stats = stats
        self.require_date = require_date

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ValidateArticlePipeline:
        return cls(crawler.stats, crawler.settings.getbool("NPI_REQUIRE_DATE"))

    def _drop(self, reason: str, item: ArticleItem) -> DropItem:
        self.stats.inc_value(f"npi/items/dropped/{reason}")
        error = DropItem(f"{reason}: {item.url}")
        error.npi_reason = reason  # type: ignore[attr-defined] - read by ArchivePipeline.dropped
        return error

    def process_item(self, item: Any) -> Any:
        if not isinstance(item, ArticleItem):
            return item
        for note in item.notes:
            self.stats.inc_value(f"npi/parse/{note}")
        if not item.url:
            raise self._drop("no_url", item)
        if item.lang not in LANGS:
            raise self._drop("bad_lang", item)
        title = normalize_space(item.title)
        if not title:
            raise self._drop("no_title", item)
        if self.require_date and not item.published:
            raise self._drop("no_date", item)
        return dataclasses.replace(
            item,
            title=title,
            pdfs=list(dict.fromkeys(item.pdfs)),
            authors=[(normalize_space(n), u) for n, u in item.authors if normalize_space(n)],
        )


class ArchivePipeline:
    """Stores items in the archive at ``NPI_DB_PATH`` and records the run in ``runs``."""

    def __init__(self, crawler: Crawler, db_path: str, keep_clean: bool = True):
        self.crawler = crawler
        self.keep_clean = keep_clean
        self.stats = crawler.stats
        self.db_path = db_path
        self.archive: Archive | None = None
        self.run_id: int | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ArchivePipeline:
        pipeline = cls(
            crawler,
            crawler.settings.get("NPI_DB_PATH"),
            crawler.settings.getbool("NPI_KEEP_CLEAN_VERSION", True),
        )
        crawler.signals.connect(pipeline.dropped, signal=signals.item_dropped)
        return pipeline

    def _degraded(self, item: ArticleItem) -> bool:
        worse = set(item.notes) & DEGRADED_NOTES
        if not worse:
            return False
        row = self.archive.db.execute("SELECT parse_notes FROM articles WHERE url = ?", [item.url]).fetchone()
        return row is not None and bool(worse - set(json.loads(row[0] or "[]")))

    def open_spider(self) -> None:
        spider = self.crawler.spider
        self.archive = Archive.open(self.db_path)
        self.run_id = self.archive.start_run(
            mode="full" if getattr(spider, "full", False) else "incremental",
            base_url=getattr(spider, "base_url", ""),
            langs=getattr(spider, "langs", ()),
            sections=getattr(spider, "sections", ()),
        )
        self.stats.set_value("npi/run_id", self.run_id)

    def process_item(self, item: Any) -> Any:
        archive = self.archive
        assert archive is not None
        if isinstance(item, ArticleItem):
            if self.keep_clean and self._degraded(item):
                # The page now parses only through fallbacks where the stored version did not:
                # most likely a changed layout. Keep the clean version (the layout alarm fires).
                archive.touch_article(item.url)
                self.stats.inc_value("npi/articles/degraded_kept")
                return item
            result = archive.store_article(dataclasses.asdict(item), run_id=self.run_id)
            self.stats.inc_value(f"npi/articles/{result.status}")
        elif isinstance(item, ListingItem):
            if archive.add_listing(item.url, item.section, run_id=self.run_id):
                self.stats.inc_value("npi/listings/new")
        elif isinstance(item, NotModifiedItem):
            archive.touch_article(item.url)
            self.stats.inc_value("npi/articles/not_modified")
        elif isinstance(item, GoneItem):
            if archive.mark_removed(item.url, item.status):
                self.stats.inc_value("npi/articles/removed")
        elif isinstance(item, FetchErrorItem):
            archive.record_error(self.run_id, item.url, item.kind, item.message)
            self.stats.inc_value("npi/errors")
            self.stats.inc_value(f"npi/errors/{item.kind}")
        return item

    def dropped(self, item: Any, exception: BaseException, **_kwargs: Any) -> None:
        """An article the validator dropped is an error of the run, not a silent loss (and,
        never archived, it is fetched again by the next run)."""
        if self.archive is None or not isinstance(item, ArticleItem):
            return
        reason = getattr(exception, "npi_reason", "invalid")
        self.archive.record_error(self.run_id, item.url, f"article:dropped/{reason}", str(exception))
        self.stats.inc_value("npi/errors")
        self.stats.inc_value(f"npi/errors/article:dropped/{reason}")

    def close_spider(self) -> None:
        if self.archive is None or self.run_id is None:
            return
        stats = self.stats.get_stats()
        reason = stats.get("finish_reason", "finished")
        warnings = sum(
            v for k, v in stats.items() if k.startswith(("npi/parse/", "npi/items/dropped/", "npi/warnings/"))
        )
        counts = {
            "requests": stats.get("downloader/request_count", 0),
            "responses": stats.get("downloader/response_count", 0),
            "list_pages": stats.get("npi/list/pages", 0),
            "articles_new": stats.get("npi/articles/new", 0),
            "articles_updated": stats.get("npi/articles/updated", 0),
            "articles_unchanged": stats.get("npi/articles/unchanged", 0),
            "articles_not_modified": stats.get("npi/articles/not_modified", 0),
            "articles_removed": stats.get("npi/articles/removed", 0),
            "errors": stats.get("npi/errors", 0),
            "warnings": warnings,
        }
        # A run that never got a list page answered has checked nothing: it failed. One that lost
        # some list pages is partial, and the next run walks every page again.
        if reason != "finished" or not stats.get("npi/list/pages"):
            status = "failed"
        elif stats.get("npi/list/errors"):
            status = "partial"
        else:
            status = "ok"
        self.stats.set_value("npi/run_status", status)
        self.archive.finish_run(self.run_id, status=status, counts=counts, stats=stats)
        self.archive.close()
