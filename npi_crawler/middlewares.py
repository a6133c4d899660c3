"""Downloader middlewares.

``OffsiteRedirectMiddleware`` stops a redirect to another host before Scrapy's RedirectMiddleware
follows it. Scrapy's own OffsiteMiddleware would drop the redirected request too, but silently (no
errback, so no error of the run); here the original request fails with ``OffsiteRedirect`` and
the spider records it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urljoin, urlsplit

from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Request, Response

REDIRECT_STATUSES = (301, 302, 303, 307, 308)


class OffsiteRedirect(IgnoreRequest):
    """A page answered with a redirect to a host outside the spider's ``allowed_domains``."""


def host_allowed(host: str | None, allowed_domains: list[str]) -> bool:
    """The rule of Scrapy's OffsiteMiddleware: the host is an allowed domain or under one."""
    host = (host or "").lower()
    return bool(host) and any(host == d or host.endswith("." + d) for d in allowed_domains)


class OffsiteRedirectMiddleware:
    def __init__(self, crawler: Crawler):
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> OffsiteRedirectMiddleware:
        return cls(crawler)

    def process_response(self, request: Request, response: Response, spider: Any = None) -> Response:
        if response.status not in REDIRECT_STATUSES or "Location" not in response.headers:
            return response
        location = urljoin(request.url, response.headers["Location"].decode("latin-1"))
        parts = urlsplit(location)
        allowed = list(getattr(self.crawler.spider, "allowed_domains", None) or [])
        if parts.scheme in ("http", "https") and (not allowed or host_allowed(parts.hostname, allowed)):
            return response
        self.crawler.stats.inc_value("npi/offsite/redirects")
        raise OffsiteRedirect(f"redirect off the site to {location}")
