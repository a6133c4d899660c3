"""Downloader middlewares.

``RetryAfterMiddleware`` makes a retry of a 429/503 wait for the server's ``Retry-After`` (Scrapy's
RetryMiddleware retries at the normal pace); a wait longer than ``NPI_RETRY_AFTER_MAX`` is not
waited for: the page fails now, is recorded, and the next run fetches it.

``OffsiteRedirectMiddleware`` stops a redirect to another host before Scrapy's RedirectMiddleware
follows it. Scrapy's own OffsiteMiddleware would drop the redirected request too, but silently (no
errback, so no error of the run); here the original request fails with ``OffsiteRedirect`` and
the spider records it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin, urlsplit

from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.http import Request, Response

REDIRECT_STATUSES = (301, 302, 303, 307, 308)


class OffsiteRedirect(IgnoreRequest):
    """A page answered with a redirect to a host outside the spider's ``allowed_domains``."""


def host_allowed(url: str, allowed_domains: list[str]) -> bool:
    """The rule of Scrapy's OffsiteMiddleware: the URL's host is an allowed domain or under one.

    (Not ``scrapy.utils.url.url_is_from_any_domain``: it compares the netloc, port and user
    included, so ``127.0.0.1:8000`` would not be ``127.0.0.1``.)"""
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:  # a malformed URL is on no allowed host
        return False
    return bool(host) and any(host == d or host.endswith("." + d) for d in (d.lower() for d in allowed_domains))


class OffsiteRedirectMiddleware:
    def __init__(self, crawler: Crawler):
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> OffsiteRedirectMiddleware:
        return cls(crawler)

    def process_response(self, request: Request, response: Response) -> Response:
        if response.status not in REDIRECT_STATUSES or "Location" not in response.headers:
            return response
        location = urljoin(request.url, response.headers["Location"].decode("latin-1"))
        allowed = list(getattr(self.crawler.spider, "allowed_domains", None) or [])
        if urlsplit(location).scheme in ("http", "https") and (not allowed or host_allowed(location, allowed)):
            return response
        self.crawler.stats.inc_value("npi/offsite/redirects")
        raise OffsiteRedirect(f"redirect off the site to {location}")


class RetryAfterTooLong(IgnoreRequest):
    """The server asked to wait longer than ``NPI_RETRY_AFTER_MAX`` before retrying."""


def retry_after_seconds(value: str | None, now: dt.datetime | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date; None if unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return max(0.0, (when - (now or dt.datetime.now(dt.timezone.utc))).total_seconds())


class RetryAfterMiddleware:
    """Waits ``Retry-After`` before a 429/503 answer goes on to RetryMiddleware (placed just after
    it in the response chain), up to ``NPI_RETRY_AFTER_MAX`` seconds."""

    STATUSES = (429, 503)

    def __init__(self, crawler: Crawler, max_wait: float):
        self.crawler = crawler
        self.max_wait = max_wait

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RetryAfterMiddleware:
        if not crawler.settings.getbool("RETRY_ENABLED"):
            raise NotConfigured
        return cls(crawler, crawler.settings.getfloat("NPI_RETRY_AFTER_MAX"))

    async def process_response(self, request: Request, response: Response) -> Response:
        if response.status not in self.STATUSES or request.meta.get("dont_retry"):
            return response
        header = response.headers.get("Retry-After")
        wait = retry_after_seconds(header.decode("latin-1") if header else None)
        if not wait:
            return response
        stats = self.crawler.stats
        if wait > self.max_wait:
            stats.inc_value("npi/retry_after/too_long")
            raise RetryAfterTooLong(f"HTTP {response.status} with Retry-After {wait:.0f} s")
        stats.inc_value("npi/retry_after/waits")
        stats.inc_value("npi/retry_after/seconds", int(wait))
        await asyncio.sleep(wait)
        return response
