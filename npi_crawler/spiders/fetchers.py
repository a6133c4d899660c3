"""What the spider's fetchers of linked files share (PDFs in pdfs.py, expert pages in experts.py).

Each linked URL is requested at most once per run and only on the site's hosts. An archived one
is asked again only to re-check it (``--full``), with a conditional GET; one whose last fetch
failed for a transient reason is retried by every run.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

from scrapy.crawler import Crawler
from scrapy.http import Response
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.python.failure import Failure

from npi_crawler.items import retryable
from npi_crawler.site.urls import host_allowed

# Answers a re-check reads itself instead of Scrapy dropping them as errors (``handle_httpstatus_list``):
# unchanged (304), gone (404, 410).
WITHOUT_CONTENT = (304, 404, 410)
NOT_MODIFIED = "not_modified"
NOT_MODIFIED_STATUS = 304


class LinkedFetcher:
    """The archived state of the linked URLs and the run's bookkeeping. ``kind`` names the
    requests (``npi_kind``) and their stats (``npi/<kind>/requests``, ``npi/<kind>/offsite``).

    ``known`` maps each archived URL to (status, etag, last_modified); ``linked`` is every
    (linked URL, article URL) pair the archive knows, for the backlog and the ``--full`` re-check.
    """

    kind = "linked"

    def __init__(
        self,
        *,
        enabled: bool,
        allowed_domains: Iterable[str],
        known: dict[str, tuple[str, str | None, str | None]] | None = None,
        linked: list[tuple[str, str]] | None = None,
        crawler: Crawler | None = None,
    ):
        self.enabled = enabled
        self.allowed_domains = [d.lower() for d in allowed_domains]
        self.known = known or {}
        self.linked = linked or []
        self.crawler = crawler  # for its stats, which exist once the crawl has started
        self.requested: set[str] = set()

    def _inc(self, key: str) -> None:
        if self.crawler is not None and self.crawler.stats is not None:
            self.crawler.stats.inc_value(key)

    def on_site(self, url: str) -> bool:
        return host_allowed(url, self.allowed_domains)

    def headers_for(self, url: str, *, recheck: bool) -> dict[str, str] | None:
        """The headers of this run's request for ``url`` (validators when it is archived), or
        None when it is not to be requested: already this run, off the site, or archived and not
        ``recheck``ed. Counts the request."""
        if not self.enabled or url in self.requested:
            return None
        if not self.on_site(url):
            self._inc(f"npi/{self.kind}/offsite")
            return None
        status, etag, last_modified = self.known.get(url, (None, None, None))
        final = status is not None and not retryable(status)
        if final and not recheck:
            return None
        self.requested.add(url)
        self._inc(f"npi/{self.kind}/requests")
        return conditional_headers(etag, last_modified) if final else {}


def conditional_headers(etag: str | None, last_modified: str | None) -> dict[str, str]:
    """The headers of a conditional GET: a 304 answer when the file is as archived."""
    headers = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    return headers


def failure_reason(failure: Failure) -> tuple[str, str]:
    """(status, message) of a failed request: ``http_<code>`` for an HTTP error status, else the
    exception's name, with its message."""
    if http := http_failure(failure):
        return http
    name = failure_name(failure)
    return name, f"{name}: {failure.getErrorMessage()}"


def failure_name(failure: Failure) -> str:
    """The name of what failed the request (``TimeoutError``, ``RobotsForbidden``...)."""
    return type(failure.value).__name__


def http_failure(failure: Failure) -> tuple[str, str] | None:
    """(status, message) of a request that ended in an HTTP error status, else None."""
    if failure.check(HttpError):
        status = cast(HttpError, failure.value).response.status
        return f"http_{status}", f"HTTP {status}"
    return None


def answered_without_content(response: Response) -> tuple[str, str | None] | None:
    """(status, message) of a response that carries no file: ``not_modified`` for a 304, the
    HTTP status for a 404/410; None for a response to read."""
    if response.status == 304:
        return NOT_MODIFIED, None
    if response.status in (404, 410):
        return f"http_{response.status}", f"HTTP {response.status}"
    return None
