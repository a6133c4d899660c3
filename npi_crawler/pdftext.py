"""PDF text: the spider fetches the PDFs articles link to; this module turns them into text.

The fetching happens inside the Scrapy spider (``PdfFetcher`` builds the requests and reads the
responses), so robots.txt, throttling, retries and the offsite filter apply to PDFs as to pages.
Each PDF is downloaded once: later incremental runs skip every URL already in ``pdf_texts``, and
a ``--full`` run re-checks them with a conditional GET (ETag / Last-Modified). ``PdfTextPipeline``
extracts the text with pypdf and stores it; a broken, encrypted or text-less PDF is a warning of
the run (a ``npi/warnings/pdf/...`` stat and a ``run_errors`` row), never a failed run.
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import scrapy
from scrapy.crawler import Crawler
from scrapy.http import Response
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.python.failure import Failure

from npi_crawler.parsing import lang_from_url
from npi_crawler.storage import Archive, utcnow

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


logging.getLogger("pypdf").setLevel(logging.ERROR)  # pypdf warns about every odd object it meets


@dataclass
class PdfItem:
    """One PDF fetched (``status`` "fetched" with ``body``), unchanged ("not_modified"), or
    failed (``status`` the failure, ``message`` why)."""

    url: str
    status: str
    body: bytes | None = None
    etag: str | None = None
    last_modified: str | None = None
    content_type: str | None = None
    message: str | None = None


@dataclass
class Extracted:
    status: str  # ok, no_text, broken or encrypted
    text: str | None
    pages: int | None
    error: str | None = None


def extract_text(data: bytes) -> Extracted:
    """The text layer of a PDF, page after page. Never raises: a file pypdf cannot read is
    ``broken``, one that needs a password ``encrypted``, one without any text ``no_text``."""
    from pypdf import PdfReader  # imported here: only crawls that fetch PDFs need it

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                opened = reader.decrypt("")
            except Exception as exc:  # e.g. AES without the optional crypto library
                return Extracted(ENCRYPTED, None, None, f"encrypted ({exc})")
            if not opened:
                return Extracted(ENCRYPTED, None, None, "encrypted with a password")
        pages = [page.extract_text() or "" for page in reader.pages]
    except Exception as exc:  # pypdf raises many types on damaged files
        return Extracted(BROKEN, None, None, f"{type(exc).__name__}: {exc}"[:500])
    text = "\n\n".join(" ".join(p.split()) for p in pages if p.strip())
    if not text:
        return Extracted(NO_TEXT, None, len(pages), "no text layer (a scanned PDF?)")
    return Extracted(OK, text, len(pages))


# -- in the spider --------------------------------------------------------------------------------


class PdfFetcher:
    """Builds the spider's PDF requests and turns their responses into ``PdfItem``s.

    ``known`` maps each archived PDF URL to (status, etag, last_modified); ``linked`` is every
    (pdf URL, article URL) pair the archive knows, for the backlog and the ``--full`` re-check.
    """

    def __init__(
        self,
        *,
        enabled: bool,
        maxsize: int,
        allowed_domains: Iterable[str],
        known: dict[str, tuple[str, str | None, str | None]] | None = None,
        linked: list[tuple[str, str]] | None = None,
        crawler: Crawler | None = None,
    ):
        self.enabled = enabled
        self.maxsize = maxsize
        self.allowed_domains = [d.lower() for d in allowed_domains]
        self.known = known or {}
        self.linked = linked or []
        self.crawler = crawler  # for its stats, which exist once the crawl has started
        self.requested: set[str] = set()

    @classmethod
    def from_crawler(cls, crawler: Crawler, spider: Any, archive: Archive) -> PdfFetcher:
        arg = getattr(spider, "pdfs", None)  # spider argument -a pdfs=0 wins over NPI_PDFS
        enabled = crawler.settings.getbool("NPI_PDFS", True) if arg is None else _truthy(arg)
        known: dict[str, tuple[str, str | None, str | None]] = {}
        linked: list[tuple[str, str]] = []
        if enabled:
            known = {
                url: (status, etag, lm)
                for url, status, etag, lm in archive.db.execute(
                    "SELECT url, status, etag, last_modified FROM pdf_texts"
                )
            }
            linked = [
                (pdf, article)
                for pdf, article in archive.db.execute(
                    "SELECT p.url, p.article_url FROM pdfs p JOIN articles a ON a.url = p.article_url "
                    "WHERE a.removed_at IS NULL ORDER BY p.article_url, p.position"
                )
            ]
        return cls(
            enabled=enabled,
            maxsize=crawler.settings.getint("NPI_PDF_MAXSIZE"),
            allowed_domains=spider.allowed_domains,
            known=known,
            linked=linked,
            crawler=crawler,
        )

    def _inc(self, key: str) -> None:
        if self.crawler is not None and self.crawler.stats is not None:
            self.crawler.stats.inc_value(key)

    def on_site(self, url: str) -> bool:
        host = (urlsplit(url).hostname or "").lower()
        return any(host == d or host.endswith("." + d) for d in self.allowed_domains)

    def backlog(self, *, full: bool, langs: Iterable[str], in_scope: set[str] | None = None) -> Iterator:
        """At the start of a run: PDFs linked by archived articles that were never fetched (or
        whose fetch failed), and with ``full`` a conditional re-check of every archived one."""
        if not self.enabled:
            return
        langs = set(langs)
        for pdf, article in self.linked:
            if lang_from_url(article) not in langs or (in_scope is not None and article not in in_scope):
                continue
            status = self.known.get(pdf, (None,))[0]
            if status is None or retryable(status) or full:
                yield from self.requests([pdf], recheck=full)

    def requests(self, urls: Iterable[str], *, recheck: bool = False) -> Iterator[scrapy.Request]:
        """Requests for the PDFs an article links to: new ones only, archived ones only when
        ``recheck`` (conditional GET). Each URL at most once per run."""
        if not self.enabled:
            return
        for url in urls:
            if url in self.requested:
                continue
            if not self.on_site(url):
                self._inc("npi/pdf/offsite")
                continue
            status, etag, last_modified = self.known.get(url, (None, None, None))
            if status is not None and not retryable(status) and not recheck:
                continue
            self.requested.add(url)
            headers = {}
            if status is not None and not retryable(status):
                if etag:
                    headers["If-None-Match"] = etag
                if last_modified:
                    headers["If-Modified-Since"] = last_modified
            self._inc("npi/pdf/requests")
            yield scrapy.Request(
                url,
                callback=self.parse,
                errback=self.failed,
                headers=headers,
                meta={
                    "npi_kind": "pdf",
                    "download_maxsize": self.maxsize,
                    "download_warnsize": 0,
                    "handle_httpstatus_list": [304, 404, 410],
                },
            )

    def parse(self, response: Response) -> Iterator[PdfItem]:
        url = response.request.url if response.request else response.url
        if response.status == 304:
            yield PdfItem(url=url, status="not_modified")
            return
        if response.status in (404, 410):
            yield PdfItem(url=url, status=f"http_{response.status}", message=f"HTTP {response.status}")
            return
        yield PdfItem(
            url=url,
            status="fetched",
            body=response.body,
            etag=_header(response, "ETag"),
            last_modified=_header(response, "Last-Modified"),
            content_type=_header(response, "Content-Type"),
        )

    def failed(self, failure: Failure) -> Iterator[PdfItem]:
        request = failure.request  # type: ignore[attr-defined]
        message = f"{failure.type.__name__}: {failure.getErrorMessage()}"
        if failure.check(HttpError):
            status = f"http_{failure.value.response.status}"
            message = f"HTTP {failure.value.response.status}"
        elif "max size" in message or "maxsize" in message or "Cancelled" in failure.type.__name__:
            status = TOO_LARGE
            message = f"larger than NPI_PDF_MAXSIZE ({self.maxsize} bytes)"
        else:
            status = ERROR
        yield PdfItem(url=request.url, status=status, message=message)


def _truthy(value: Any) -> bool:
    return str(value).lower() in ("1", "true", "yes", "on")


def _header(response: Response, name: str) -> str | None:
    value = response.headers.get(name)
    return value.decode("latin-1") if value else None


# -- in the item pipeline -------------------------------------------------------------------------


def store_pdf(
    archive: Archive,
    url: str,
    *,
    status: str,
    run_id: int | None,
    text: str | None = None,
    error: str | None = None,
    etag: str | None = None,
    last_modified: str | None = None,
    content_type: str | None = None,
    size: int | None = None,
    sha256: str | None = None,
    pages: int | None = None,
    now: str | None = None,
) -> None:
    """Insert or update one PDF's row. A failed re-fetch keeps the text already archived."""
    now = now or utcnow()
    with archive.transaction() as conn:
        old = conn.execute("SELECT text FROM pdf_texts WHERE url = ?", [url]).fetchone()
        if old is None:
            conn.execute(
                "INSERT INTO pdf_texts (url, status, error, etag, last_modified, content_type, size, "
                "sha256, pages, text, first_fetched, last_fetched, run_id) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    url,
                    status,
                    error,
                    etag,
                    last_modified,
                    content_type,
                    size,
                    sha256,
                    pages,
                    text,
                    now,
                    now,
                    run_id,
                ],
            )
        elif size is None:  # not downloaded this time: status and error only
            conn.execute(
                "UPDATE pdf_texts SET status = ?, error = ?, last_fetched = ?, run_id = ? WHERE url = ?",
                [status, error, now, run_id, url],
            )
        else:
            conn.execute(
                "UPDATE pdf_texts SET status = ?, error = ?, etag = ?, last_modified = ?, content_type = ?, "
                "size = ?, sha256 = ?, pages = ?, text = ?, last_fetched = ?, run_id = ? WHERE url = ?",
                [
                    status,
                    error,
                    etag,
                    last_modified,
                    content_type,
                    size,
                    sha256,
                    pages,
                    text,
                    now,
                    run_id,
                    url,
                ],
            )


class PdfTextPipeline:
    """Extracts and stores the text of each fetched PDF (after ``ArchivePipeline``, which has
    opened the run). Failures are warnings: stat ``npi/warnings/pdf/<status>`` + a run_errors row."""

    def __init__(self, crawler: Crawler, db_path: str):
        self.stats = crawler.stats
        self.db_path = db_path
        self.archive: Archive | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> PdfTextPipeline:
        return cls(crawler, crawler.settings.get("NPI_DB_PATH"))

    def open_spider(self) -> None:
        self.archive = Archive.open(self.db_path)

    def close_spider(self) -> None:
        if self.archive is not None:
            self.archive.close()

    def process_item(self, item: Any) -> Any:
        if not isinstance(item, PdfItem):
            return item
        archive = self.archive
        assert archive is not None
        run_id = self.stats.get_value("npi/run_id")
        if item.status == "not_modified":
            with archive.transaction() as conn:
                conn.execute(
                    "UPDATE pdf_texts SET last_fetched = ?, run_id = ? WHERE url = ?",
                    [utcnow(), run_id, item.url],
                )
            self.stats.inc_value("npi/pdf/not_modified")
            return PdfItem(url=item.url, status=item.status)
        if item.status == "fetched":
            body = item.body or b""
            extracted = extract_text(body)
            store_pdf(
                archive,
                item.url,
                status=extracted.status,
                run_id=run_id,
                text=extracted.text,
                error=extracted.error,
                etag=item.etag,
                last_modified=item.last_modified,
                content_type=item.content_type,
                size=len(body),
                sha256=hashlib.sha256(body).hexdigest(),
                pages=extracted.pages,
            )
            status, message = extracted.status, extracted.error
        else:
            store_pdf(archive, item.url, status=item.status, run_id=run_id, error=item.message)
            status, message = item.status, item.message
        if status == OK:
            self.stats.inc_value("npi/pdf/ok")
        else:
            self.stats.inc_value(f"npi/warnings/pdf/{status}")
            archive.record_error(run_id, item.url, f"pdf:{status}", message or status)
        return PdfItem(url=item.url, status=status, message=message)  # without the bytes


def summary_line(stats: dict[str, Any]) -> str | None:
    """The crawl summary's PDF line, or None when the run requested no PDF."""
    if not stats.get("npi/pdf/requests"):
        return None
    warnings = sum(v for k, v in stats.items() if k.startswith("npi/warnings/pdf/"))
    return (
        f"  pdfs       {stats['npi/pdf/requests']} requested: {stats.get('npi/pdf/ok', 0)} with text, "
        f"{stats.get('npi/pdf/not_modified', 0)} not modified (304), {warnings} unreadable"
    )
