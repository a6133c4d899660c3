"""The spider's PDF requests: which PDFs to fetch, and their answers as ``PdfItem``s.

Each PDF is downloaded once: later incremental runs skip every URL already in ``pdf_texts``, and
a ``--full`` run re-checks them with a conditional GET (ETag / Last-Modified). A transient failure
(timeout, connection lost, HTTP 5xx after Scrapy's retries) is retried by the next run.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import scrapy
from scrapy.crawler import Crawler
from scrapy.http import Response
from twisted.python.failure import Failure

from npi_crawler.archive import Archive
from npi_crawler.items import ERROR, TOO_LARGE, PdfItem, retryable
from npi_crawler.site.urls import lang_from_url
from npi_crawler.spiders.common import STOPPED_META, header, truthy, warc_pointer
from npi_crawler.spiders.fetchers import (
    WITHOUT_CONTENT,
    LinkedFetcher,
    answered_without_content,
    failure_name,
    http_failure,
)


class PdfFetcher(LinkedFetcher):
    """Builds the spider's PDF requests and turns their responses into ``PdfItem``s (see
    ``LinkedFetcher`` for ``known`` and ``linked``)."""

    kind = "pdf"

    def __init__(self, *, maxsize: int, **kwargs: Any):
        super().__init__(**kwargs)
        self.maxsize = maxsize

    @classmethod
    def from_crawler(cls, crawler: Crawler, spider: Any, archive: Archive) -> PdfFetcher:
        arg = getattr(spider, "pdfs", None)  # spider argument -a pdfs=0 wins over NPI_PDFS
        enabled = crawler.settings.getbool("NPI_PDFS", True) if arg is None else truthy(arg)
        known: dict[str, tuple[str, str | None, str | None]] = {}
        linked: list[tuple[str, str]] = []
        if enabled:
            known = archive.pdf_states()
            linked = archive.linked_pdfs()
        return cls(
            enabled=enabled,
            maxsize=crawler.settings.getint("NPI_PDF_MAXSIZE"),
            allowed_domains=spider.allowed_domains,
            known=known,
            linked=linked,
            crawler=crawler,
        )

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
        for url in urls:
            headers = self.headers_for(url, recheck=recheck)
            if headers is None:
                continue
            yield scrapy.Request(
                url,
                callback=self.parse,
                errback=self.failed,
                headers=headers,
                meta={
                    "npi_kind": "pdf",
                    "download_maxsize": self.maxsize,
                    "download_warnsize": 0,
                    "handle_httpstatus_list": list(WITHOUT_CONTENT),
                },
            )

    def parse(self, response: Response) -> Iterator[PdfItem]:
        url = response.request.url if response.request else response.url
        warc = warc_pointer(response)
        if answer := answered_without_content(response):
            yield PdfItem(url=url, status=answer[0], message=answer[1], warc=warc)
            return
        yield PdfItem(
            url=url,
            status="fetched",
            body=response.body,
            etag=header(response, "ETag"),
            last_modified=header(response, "Last-Modified"),
            content_type=header(response, "Content-Type"),
            warc=warc,
        )

    def failed(self, failure: Failure) -> Iterator[PdfItem]:
        request = failure.request  # type: ignore[attr-defined]
        if request.meta.get(STOPPED_META):
            return
        message = f"{failure_name(failure)}: {failure.getErrorMessage()}"
        if http := http_failure(failure):
            status, message = http
        elif "max size" in message or "maxsize" in message or "Cancelled" in failure_name(failure):
            status = TOO_LARGE
            message = f"larger than NPI_PDF_MAXSIZE ({self.maxsize} bytes)"
        else:
            status = ERROR
        yield PdfItem(url=request.url, status=status, message=message)
