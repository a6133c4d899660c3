"""Small helpers the spider and its fetchers (PDFs, expert pages) share."""

from __future__ import annotations

from typing import Any

from scrapy.http import Response

from npi_crawler.archive.records import WarcPointer
from npi_crawler.site.decoding import decode_page

# Set on a request that a stop signal dropped from the download queue (middlewares.drop_queued_requests):
# its failure is the stop, recorded once as the run's status, not as an error of each request.
STOPPED_META = "npi_stopped"
# Set by the WARC recorder (npi_crawler/warc_recorder.py) on a response it wrote: the record's pointer.
WARC_META = "npi_warc"


def truthy(value: Any) -> bool:
    """A spider argument (always a string on the command line) read as a flag."""
    return str(value).lower() in ("1", "true", "yes", "on")


def warc_pointer(response: Response) -> WarcPointer | None:
    """The pointer to the response's WARC record, when the recorder wrote one (None for a
    response built without a request, as in tests)."""
    request = response.request
    return request.meta.get(WARC_META) if request is not None else None


def header(response: Response, name: str) -> str | None:
    value = response.headers.get(name)
    return value.decode("latin-1") if value else None


def page_text(response: Response) -> str:
    """The page as text (site.decoding.decode_page), Scrapy's own detector for what is left undecided."""
    return decode_page(response.body, header(response, "Content-Type"), fallback=lambda: response.text)
