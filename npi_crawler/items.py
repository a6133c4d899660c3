"""The shapes of what the spider yields. Each item is one fact about the site.

An article page is the archive's own record (``archive.records.ArticleRecord``); the other facts
are below. A pointer to the page's WARC record is an ``archive.records.WarcPointer``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only annotations: site.pdftext reads the statuses without the archive package
    from npi_crawler.archive.records import ListPageRecord, WarcPointer

# Statuses a download can end in. A transient failure (``error``: timeout, connection lost; or
# an HTTP 5xx after Scrapy's retries) is tried again by the next run; the others are final until
# a --full run re-checks the PDF.
OK, NO_TEXT, BROKEN, ENCRYPTED, TOO_LARGE, ERROR = (
    "ok",
    "no_text",
    "broken",
    "encrypted",
    "too_large",
    "error",
)


def retryable(status: str | None) -> bool:
    return status == ERROR or (status or "").startswith("http_5")


@dataclass
class ListingItem:
    """``urls`` (in page order) are listed on page ``page`` of ``section``'s list: they belong to
    that section. One item per list page: one transaction, not one per entry."""

    urls: list[str]
    section: str
    lang: str
    page: int


@dataclass
class ListPageItem:
    """A list page answered 200 (``page``: its validators and digest for the next conditional
    GET, and the pages its pagination shows), or 404/410 (``gone``: the list is shorter now)."""

    page: ListPageRecord
    gone: bool = False


@dataclass
class NotModifiedItem:
    """A known article answered 304 to a conditional GET: still there, unchanged."""

    url: str
    warc: WarcPointer | None = None


@dataclass
class GoneItem:
    """A known article's own page answered 404 or 410."""

    url: str
    status: int
    warc: WarcPointer | None = None


@dataclass
class FetchErrorItem:
    """A request that failed for good (after retries): recorded in the run, never a removal."""

    url: str
    kind: str
    message: str


@dataclass
class LinkedItem:
    """One fetch of a file an article links to (a PDF, an expert page): unchanged (``status``
    "not_modified"), failed (``status`` the failure, ``message`` why), or what the subclass says."""

    url: str
    status: str
    etag: str | None = None
    last_modified: str | None = None
    message: str | None = None
    warc: WarcPointer | None = None  # where the answer is in the WARC files (npi_crawler/warc_recorder.py)


@dataclass
class PdfItem(LinkedItem):
    """One PDF: fetched (``status`` "fetched" with ``body``), unchanged or failed."""

    body: bytes | None = None
    content_type: str | None = None


@dataclass
class ExpertItem(LinkedItem):
    """An expert page: fetched and parsed (``status`` "ok"), unchanged or failed. ``notes`` are
    parse fallbacks and misses (stat keys)."""

    lang: str | None = None
    name: str | None = None
    title: str | None = None
    areas: str | None = None
    biography: str | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class PageRecordItem:
    """A page written to the WARC files that stores no row of its own (a list page that changed):
    the pointer to its record, for the archive's ``warc_records``."""

    url: str
    kind: str
    warc: WarcPointer
