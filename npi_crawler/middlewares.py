"""Downloader middlewares.

``PlannedAnswerMiddleware`` answers the requests the check before the crawl already asked
(npi_crawler/check.py): a changed page is read from its answer, not asked twice.

``RetryAfterMiddleware`` makes the site's ``Retry-After`` law: a 429/503 with it stops the crawl's
requests at once and holds every later run until then (not a wait and a retry, as before).

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

import datetime as dt
from urllib.parse import urljoin, urlsplit

from scrapy.crawler import Crawler
from scrapy.downloadermiddlewares import robotstxt
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.http import Headers, Request, Response
from scrapy.responsetypes import responsetypes
from scrapy.robotstxt import RobotParser
from scrapy.utils.defer import deferred_from_coro, maybe_deferred_to_future
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure
from w3lib.url import safe_url_string

from npi_crawler.archive.db import stamp
from npi_crawler.crawlplan import PLANNED_META
from npi_crawler.fetch import RETRY_AFTER_STATUSES, retry_after_seconds
from npi_crawler.site.urls import host_allowed
from npi_crawler.spiders.common import STOPPED_META

REDIRECT_STATUSES = (301, 302, 303, 307, 308)


class OffsiteRedirect(IgnoreRequest):
    """A page answered with a redirect to a host outside the spider's ``allowed_domains``."""


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


def drop_queued_requests(crawler: Crawler) -> int:
    """Fail the requests waiting in Scrapy's download queues (for their delay or a free slot), so
    that a graceful stop waits only for the transfers already under way: with the live site's
    politeness a queue holds several seconds of requests. (Downloader slots are Scrapy 2.19's
    internals, pinned in pyproject.toml.)"""
    downloader = getattr(crawler.engine, "downloader", None)
    dropped = 0
    for slot in getattr(downloader, "slots", {}).values():
        while slot.queue:
            request, deferred = slot.queue.popleft()
            request.meta[STOPPED_META] = True
            deferred.errback(Failure(IgnoreRequest("dropped: the run was stopped")))
            dropped += 1
    if dropped:
        crawler.stats.inc_value("npi/stop/dropped_requests", dropped)
    return dropped


class RetryAfterStop(IgnoreRequest):
    """The site answered 429 or 503 with ``Retry-After``: this run asks nothing more."""


class RetryAfterMiddleware:
    """The site's Retry-After is law (issue 20). A 429 or 503 with a readable ``Retry-After``
    (seconds or an HTTP date) stops the crawl's requests at once: what is in flight may finish,
    what is queued is dropped as a stop drops it (drop_queued_requests), and the run's row
    keeps the time (capped at ``NPI_RETRY_AFTER_CAP`` seconds, a day), before which every later run
    sends nothing (``runs.retry_after``; npi_crawler/check.py). Placed just after RetryMiddleware in
    the response chain, so such an answer is never retried; one without the header is retried as
    any 5xx is."""

    STATUSES = RETRY_AFTER_STATUSES

    def __init__(self, crawler: Crawler, cap: float):
        self.crawler = crawler
        self.cap = cap

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RetryAfterMiddleware:
        return cls(crawler, crawler.settings.getfloat("NPI_RETRY_AFTER_CAP"))

    def process_response(self, request: Request, response: Response) -> Response:
        if response.status not in self.STATUSES:
            return response
        header = response.headers.get("Retry-After")
        wait = retry_after_seconds(header.decode("latin-1") if header else None)
        if not wait:
            return response
        from npi_crawler.runstate import RETRY_AFTER_REASON, RunState

        until = stamp(dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=min(wait, self.cap)))
        message = f"HTTP {response.status} with Retry-After {wait:.0f} s: no request to the site before {until}"
        self.crawler.stats.inc_value("npi/retry_after/stops")
        request.meta[STOPPED_META] = True  # recorded once, as the site's answer, not as the page's error
        if RunState.of(self.crawler).hold_site(until, response.url, message):
            drop_queued_requests(self.crawler)
            engine = self.crawler.engine
            if engine is not None and engine.spider is not None:
                deferred_from_coro(engine.close_spider_async(reason=RETRY_AFTER_REASON))
        raise RetryAfterStop(message)


class PlannedAnswerMiddleware:
    """Answers a request from the check that ran before the crawl (npi_crawler/check.py): a page
    it asked this run and found changed (or gone) is read from its answer, robots.txt from what it
    keeps, instead of being asked again. First in the chain (before robots.txt), so nothing else
    runs for it but the answer's way back (the WARC recorder writes it as any answer)."""

    def __init__(self, crawler: Crawler):
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> PlannedAnswerMiddleware:
        return cls(crawler)

    def process_request(self, request: Request) -> Response | None:
        plan = getattr(self.crawler.spider, "plan", None)
        answer = plan.answer_for(request.url) if plan is not None else None
        if plan is None or answer is None:
            return None
        if answer is plan.robots:
            self.crawler.stats.inc_value("npi/plan/robots")  # not asked this run (check.py keeps it a day)
        else:
            plan.answers.pop(request.url, None)  # once: a retry or a second request asks the site
        request.meta[PLANNED_META] = True
        self.crawler.stats.inc_value("npi/plan/answers")
        headers = Headers()
        for name, value in answer.headers:
            headers.appendlist(name, value)
        kind = responsetypes.from_args(headers=headers, url=answer.url, body=answer.body)
        return kind(url=answer.url, status=answer.status, headers=headers, body=answer.body, request=request)


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
