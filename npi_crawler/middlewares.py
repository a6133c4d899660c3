"""Downloader middlewares.

``RetryAfterMiddleware`` makes a retry of a 429/503 wait for the server's ``Retry-After`` (Scrapy's
RetryMiddleware retries at the normal pace); a wait longer than ``NPI_RETRY_AFTER_MAX`` is not
waited for: the page fails now, is recorded, and the next run fetches it.

``OffsiteRedirectMiddleware`` stops a redirect to another host before Scrapy's RedirectMiddleware
follows it. Scrapy's own OffsiteMiddleware would drop the redirected request too, but silently (no
errback, so no error of the run); here the original request fails with ``OffsiteRedirect`` and
the spider records it.

``RedirectLoopMiddleware`` fails a request whose redirects come back to a URL of its own chain,
or go past ``REDIRECT_MAX_TIMES``, with ``RedirectLoop`` / ``TooManyRedirects``: Scrapy would drop
a loop silently (the dupefilter discards the repeated URL: no errback, no error of the run).

``RobotsTxtMiddleware`` replaces Scrapy's: on Scrapy 2.19 with the asyncio reactor, the requests
that wait for a site's robots.txt share one Deferred, and turning it into a Future for the first
waiter consumes its result, so every other waiter gets ``None`` ("no robots.txt") and is let
through, disallowed or not. Here each waiter gets its own copy of the parser.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin, urlsplit

from scrapy.crawler import Crawler
from scrapy.downloadermiddlewares import robotstxt
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.http import Request, Response
from scrapy.robotstxt import RobotParser
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.defer import Deferred
from w3lib.url import safe_url_string

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
        location = urljoin(request.url, (response.headers.get("Location") or b"").decode("latin-1"))
        allowed = list(getattr(self.crawler.spider, "allowed_domains", None) or [])
        if urlsplit(location).scheme in ("http", "https") and (not allowed or host_allowed(location, allowed)):
            return response
        self.crawler.stats.inc_value("npi/offsite/redirects")
        raise OffsiteRedirect(f"redirect off the site to {location}")


class RedirectLoop(IgnoreRequest):
    """A redirect back to a URL this request was already redirected from."""


class TooManyRedirects(IgnoreRequest):
    """More redirects in a row than ``REDIRECT_MAX_TIMES``."""


class RedirectLoopMiddleware:
    """Sees a redirect just before Scrapy's RedirectMiddleware (600) follows it."""

    def __init__(self, max_times: int):
        self.max_times = max_times

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RedirectLoopMiddleware:
        if not crawler.settings.getbool("REDIRECT_ENABLED"):
            raise NotConfigured
        return cls(crawler.settings.getint("REDIRECT_MAX_TIMES"))

    def process_response(self, request: Request, response: Response) -> Response:
        if (
            response.status not in REDIRECT_STATUSES
            or "Location" not in response.headers
            or request.meta.get("dont_redirect")
            or response.status in request.meta.get("handle_httpstatus_list", ())
        ):
            return response
        chain = [*request.meta.get("redirect_urls", []), request.url]
        target = safe_url_string(urljoin(request.url, (response.headers.get("Location") or b"").decode("latin-1")))
        if target in chain:
            raise RedirectLoop(f"redirect loop: {request.url} redirects back to {target}")
        if len(chain) > self.max_times:
            raise TooManyRedirects(f"more than {self.max_times} redirects in a row, the last to {target}")
        return response


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


class RobotsForbidden(IgnoreRequest):
    """The site's robots.txt disallows the URL: never requested (and no reason to walk every list
    page again next run, as after a list page that failed)."""


class RobotsTxtMiddleware(robotstxt.RobotsTxtMiddleware):
    """Scrapy's robots.txt middleware, with every request that waits for robots.txt checked.

    ``Deferred.asFuture`` (what ``maybe_deferred_to_future`` uses on the asyncio reactor) leaves
    the Deferred firing ``None`` for the callbacks added after it; Scrapy awaits the one shared
    Deferred once per waiting request. Each waiter here awaits a Deferred of its own, fed by a
    callback that passes the parser on. A disallowed request fails with ``RobotsForbidden``.
    """

    def process_request_2(self, rp: RobotParser | None, request: Request) -> None:
        try:
            super().process_request_2(rp, request)
        except IgnoreRequest as exc:
            raise RobotsForbidden(str(exc)) from None

    async def robot_parser(self, request: Request) -> RobotParser | None:
        pending = self._parsers.get(urlparse_cached(request).netloc)
        if not isinstance(pending, Deferred):
            return await super().robot_parser(request)  # ready, or this request fetches it
        own: Deferred[RobotParser | None] = Deferred()

        def relay(parser: RobotParser | None) -> RobotParser | None:
            own.callback(parser)
            return parser

        pending.addCallback(relay)
        return await maybe_deferred_to_future(own)
