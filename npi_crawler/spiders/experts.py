"""The spider's expert-page requests: the profile pages articles link to, as ``ExpertItem``s.

Each expert page is fetched once: later incremental runs skip every URL already in ``experts``,
and a ``--full`` run re-checks them with a conditional GET (ETag / Last-Modified), as articles.
A transient failure (timeout, HTTP 5xx after Scrapy's retries) is retried by the next run. The
requests go through the same downloader as every other: robots.txt, throttling and the offsite
checks apply; a link off the site's hosts is never requested.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import scrapy
from scrapy.crawler import Crawler
from scrapy.http import Response
from twisted.python.failure import Failure

from npi_crawler.archive import Archive
from npi_crawler.items import ERROR, ExpertItem
from npi_crawler.middlewares import RobotsForbidden
from npi_crawler.site.experts import parse_expert_page
from npi_crawler.site.urls import lang_from_url
from npi_crawler.spiders.common import STOPPED_META, header, page_text, truthy
from npi_crawler.spiders.fetchers import (
    WITHOUT_CONTENT,
    LinkedFetcher,
    answered_without_content,
    failure_name,
    http_failure,
)

KEY_META = "npi_expert_url"  # the URL as ``authors.profile_url`` holds it, whatever the redirects
ROBOTS_FORBIDDEN = "robots_forbidden"  # final until a --full run asks again, as an HTTP 404


class ExpertFetcher(LinkedFetcher):
    """Builds the spider's expert-page requests and turns their answers into ``ExpertItem``s
    (see ``LinkedFetcher`` for ``known`` and ``linked``: profile URL, article URL)."""

    kind = "expert"

    @classmethod
    def from_crawler(cls, crawler: Crawler, spider: Any, archive: Archive) -> ExpertFetcher:
        arg = getattr(spider, "experts", None)  # spider argument -a experts=0 wins over NPI_EXPERTS
        enabled = crawler.settings.getbool("NPI_EXPERTS", True) if arg is None else truthy(arg)
        return cls(
            enabled=enabled,
            allowed_domains=spider.allowed_domains,
            known=archive.fetch_states("experts") if enabled else {},
            linked=archive.linked_experts() if enabled else [],
            crawler=crawler,
        )

    def backlog(self, *, full: bool, langs: Iterable[str], in_scope: set[str] | None = None) -> Iterator:
        """At the start of a run: expert pages linked by archived articles in scope that were
        never fetched (or whose fetch failed), and with ``full`` a re-check of every one."""
        langs = set(langs)
        urls = [
            profile
            for profile, article in self.linked
            if lang_from_url(article) in langs and (in_scope is None or article in in_scope)
        ]
        yield from self.requests(dict.fromkeys(urls), recheck=full)

    def requests(self, urls: Iterable[str], *, recheck: bool = False) -> Iterator[scrapy.Request]:
        """Requests for expert pages: new ones only, archived ones only when ``recheck``
        (conditional GET). Each URL at most once per run."""
        for url in urls:
            headers = self.headers_for(url, recheck=recheck)
            if headers is not None:
                meta = {"npi_kind": "expert", KEY_META: url, "handle_httpstatus_list": list(WITHOUT_CONTENT)}
                yield scrapy.Request(url, callback=self.parse, errback=self.failed, headers=headers, meta=meta)

    def parse(self, response: Response) -> Iterator[ExpertItem]:
        url = response.meta.get(KEY_META, response.url)
        if answer := answered_without_content(response):
            yield ExpertItem(url=url, status=answer[0], message=answer[1])
            return
        if not hasattr(response, "text"):
            yield ExpertItem(url=url, status="not_html", message=f"{header(response, 'Content-Type')}")
            return
        parsed = parse_expert_page(page_text(response), url)
        yield ExpertItem(
            url=url,
            status="ok",
            lang=lang_from_url(url),
            name=parsed.name,
            title=parsed.title,
            areas=parsed.areas,
            biography=parsed.biography,
            etag=header(response, "ETag"),
            last_modified=header(response, "Last-Modified"),
            notes=parsed.notes,
        )

    def failed(self, failure: Failure) -> Iterator[ExpertItem]:
        request = failure.request  # type: ignore[attr-defined]
        if request.meta.get(STOPPED_META):
            return
        if http := http_failure(failure):
            status, message = http
        elif failure.check(RobotsForbidden):
            status, message = ROBOTS_FORBIDDEN, "robots.txt disallows it"
        else:
            status, message = ERROR, f"{failure_name(failure)}: {failure.getErrorMessage()}"
        yield ExpertItem(url=request.meta.get(KEY_META, request.url), status=status, message=message)
