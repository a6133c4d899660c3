"""One spider for the whole site: article lists -> pagination -> articles.

Incremental by default: articles already in the archive are not downloaded again, and a list's
pagination is followed only while a page holds something new. ``full=1`` walks every page and
re-checks every known article with a conditional GET (ETag / Last-Modified), which is how edits and
removals are found.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import AsyncIterator, Generator, Iterable
from typing import Any
from urllib.parse import urlsplit

import scrapy
from scrapy.crawler import Crawler
from scrapy.http import Response
from twisted.python.failure import Failure

from npi_crawler import items
from npi_crawler.archive import Archive
from npi_crawler.archive.records import ListPageRecord
from npi_crawler.constants import crawl_user_agent
from npi_crawler.crawlplan import CrawlPlan, Sweep, sweep_windows
from npi_crawler.middlewares import RobotsForbidden
from npi_crawler.site import DEFAULT_BASE_URL, LANGS, NPI_HOSTS, SECTIONS
from npi_crawler.site.articles import parse_article
from npi_crawler.site.lists import ListPage, next_page, page_number, parse_list_page
from npi_crawler.site.notes import DEGRADED
from npi_crawler.site.profile import DEFAULT_PROFILE, profile_setting
from npi_crawler.site.urls import canonical_url, lang_from_url, list_url, site_url
from npi_crawler.spiders.common import STOPPED_META, header, page_text, truthy, warc_pointer
from npi_crawler.spiders.experts import ExpertFetcher
from npi_crawler.spiders.fetchers import (
    NOT_MODIFIED,
    NOT_MODIFIED_STATUS,
    WITHOUT_CONTENT,
    answered_without_content,
    conditional_headers,
    failure_reason,
)
from npi_crawler.spiders.pdfs import PdfFetcher

# Pages a list may be walked to beyond twice what the archive knows of it (NpiSpider._page_cap).
LIST_PAGES_MARGIN = 50


def _split(value: str | Iterable[str] | None, allowed: Iterable[str]) -> tuple[str, ...]:
    if not value:
        return tuple(allowed)
    chosen = value.split(",") if isinstance(value, str) else list(value)
    chosen = [i.strip() for i in chosen if i.strip()]
    unknown = sorted(set(chosen) - set(allowed))
    if unknown:
        raise ValueError(f"unknown value(s) {', '.join(unknown)}; choose from {', '.join(allowed)}")
    return tuple(i for i in allowed if i in chosen)


class NpiSpider(scrapy.Spider):
    name = "npi"

    def __init__(
        self,
        base_url: str | None = None,
        langs: str | Iterable[str] | None = None,
        sections: str | Iterable[str] | None = None,
        full: Any = False,
        plan: CrawlPlan | None = None,
        sweep_lists: Any = None,
        sweep_articles: Any = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.base_url = canonical_url(base_url or DEFAULT_BASE_URL)
        self.langs = _split(langs, LANGS)
        self.sections = _split(sections, SECTIONS)
        self.full = truthy(full)
        base_host = urlsplit(self.base_url).hostname or ""
        self.allowed_domains = sorted({*NPI_HOSTS, base_host})
        self.known_urls: set[str] = set()
        self.known_listings: set[tuple[str, str]] = set()
        self.list_seen: dict[tuple[str, str], set[str]] = {}  # (lang, section) -> entries seen this run
        self.page_caps: dict[tuple[str, str], int] = {}  # (lang, section) -> pages it may be walked to
        self.capped: set[tuple[str, str]] = set()  # lists cut at their page cap
        self.list_sizes: dict[tuple[str, str], int] = {}  # (lang, section) -> archived articles listed
        self.validators: dict[str, tuple[str | None, str | None]] = {}
        self.held: list[str] = []  # held by the layout alarm, stored through fallbacks: fetch again
        self.warc_lost: list[str] = []  # articles an earlier run archived without a WARC record
        self.warc_lost_pdfs: list[str] = []  # and PDFs
        self.walk_all_pages = True
        self.max_new_articles = 0  # NPI_MAX_NEW_ARTICLES; 0: no cap
        self.new_requested = 0
        self.pdf_fetcher = PdfFetcher(enabled=False, maxsize=0, allowed_domains=self.allowed_domains)
        self.expert_fetcher = ExpertFetcher(enabled=False, allowed_domains=self.allowed_domains)
        self.profile = DEFAULT_PROFILE  # NPI_SELECTORS: the site profile the parser uses
        # The check before the crawl (npi_crawler/check.py): what it settled, its answers, the sweep.
        self.planned = plan is not None
        self.plan = plan or CrawlPlan()
        self.sweep_args = (sweep_lists, sweep_articles)  # None: NPI_SWEEP_LISTS, NPI_SWEEP_ARTICLES
        self.sweep = Sweep()
        self.list_states: dict[str, ListPageRecord] = {}  # first pages' validators: conditional GETs

    @classmethod
    def update_settings(cls, settings: Any) -> None:
        """The User-Agent names ``NPI_CONTACT`` (settings can only be changed before the crawl
        starts: here). A USER_AGENT set by hand is left alone. At the spider's priority: a
        CrawlerRunner re-applies its own (project) settings to the crawler after this."""
        super().update_settings(settings)
        agent = crawl_user_agent(settings.get("USER_AGENT"), settings.get("NPI_CONTACT"))
        if agent != settings.get("USER_AGENT"):
            settings.set("USER_AGENT", agent, priority="spider")

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> NpiSpider:
        kwargs.setdefault("base_url", crawler.settings.get("NPI_BASE_URL"))
        spider = super().from_crawler(crawler, *args, **kwargs)
        extra = crawler.settings.getlist("NPI_ALLOWED_DOMAINS")
        spider.allowed_domains = sorted({*spider.allowed_domains, *extra})
        spider.max_new_articles = crawler.settings.getint("NPI_MAX_NEW_ARTICLES")
        spider.profile = profile_setting(crawler.settings.get("NPI_SELECTORS"))
        # Read what the archive knows now, before this run's pipeline records anything.
        with Archive.open(crawler.settings.get("NPI_DB_PATH")) as archive:
            spider.known_urls = archive.known_urls()
            spider.known_listings = archive.known_memberships()
            spider.list_sizes = Counter(
                (lang_from_url(url), section) for url, section in spider.known_listings if url in spider.known_urls
            )
            spider.validators = archive.validators() if spider.full else {}
            spider.held = archive.held_urls(DEGRADED)
            stop_early = crawler.settings.getbool("NPI_STOP_AT_KNOWN_PAGE", True)
            spider.walk_all_pages = spider.full or not stop_early or not archive.last_run_complete()
            spider.pdf_fetcher = PdfFetcher.from_crawler(crawler, spider, archive)
            spider.expert_fetcher = ExpertFetcher.from_crawler(crawler, spider, archive)
            if spider.full and crawler.settings.getbool("NPI_WARC", True):
                spider.fetch_unrecorded_whole(archive)
            spider.read_sweep(archive)
            if crawler.settings.getbool("NPI_WARC", True):
                # after the sweep: a swept page without its record is fetched whole too
                spider.fetch_lost_records_whole(archive)
        return spider

    def fetch_lost_records_whole(self, archive: Archive) -> None:
        """Pages and PDFs an earlier run archived without their WARC record (its WARC folder was
        full) are fetched whole by this run, whatever its mode: a 304 would record nothing, or
        refer to an older version than the one archived."""
        pages, pdfs = archive.warc_lost_urls()
        self.warc_lost = sorted(pages)
        self.validators = {u: (None, None) if u in pages else v for u, v in self.validators.items()}
        known = self.pdf_fetcher.known
        self.warc_lost_pdfs = sorted(pdfs & known.keys())
        for url in self.warc_lost_pdfs:
            known[url] = (known[url][0], None, None)

    def read_sweep(self, archive: Archive) -> None:
        """This run's windows of the rolling sweep (the plan's, when the check asked them) and the
        first pages' validators for conditional GETs. A full run, or one that walks every page,
        needs neither: every page is read anyway."""
        if self.full:
            return
        if self.planned:
            self.sweep = Sweep(self.plan.sweep_lists, self.plan.sweep_articles, {})
        elif any(counts := self._sweep_counts()):
            self.sweep = sweep_windows(archive, self.langs, self.sections, *counts)
        self.validators.update({url: (etag, last_modified) for url, etag, last_modified in self.sweep.articles})
        if not self.walk_all_pages:
            firsts = [list_url(self.base_url, lang, section) for lang in self.langs for section in self.sections]
            self.list_states = archive.list_page_rows(firsts)

    def _sweep_counts(self) -> tuple[float, float]:
        """Pages and articles per run: the spider arguments, else the settings."""
        names = ("NPI_SWEEP_LISTS", "NPI_SWEEP_ARTICLES")
        return tuple(  # type: ignore[return-value]
            float(arg) if arg not in (None, "") else self.crawler.settings.getfloat(name)
            for arg, name in zip(self.sweep_args, names, strict=True)
        )

    def fetch_unrecorded_whole(self, archive: Archive) -> None:
        """A full run re-checks a page with no WARC record yet (archived before WARC was on) without
        a conditional GET: a 304 would leave nothing to record, and the next runs refer to it."""
        pages, pdfs = archive.warc_recorded_urls("article"), archive.warc_recorded_urls("pdf")
        self.validators = {u: v if u in pages else (None, None) for u, v in self.validators.items()}
        known = self.pdf_fetcher.known
        self.pdf_fetcher.known = {u: s if u in pdfs else (s[0], None, None) for u, s in known.items()}

    # -- URLs -----------------------------------------------------------------------------------
    def site_url(self, url: str) -> str:
        """A link as this crawl requests it (``site.urls.site_url``: on a replica's host)."""
        return site_url(url, self.base_url)

    # -- requests -------------------------------------------------------------------------------
    async def start(self) -> AsyncIterator[Any]:
        # The check's counts (its requests are the run's) and where the sweep leaves off.
        for key, value in {**self.plan.stats, **self.sweep.stats}.items():
            self.crawler.stats.set_value(key, value)
        settled = self.plan.settled
        for lang in self.langs:
            for section in self.sections:
                url = list_url(self.base_url, lang, section)
                if url not in settled:  # asked by the check this run, and unchanged
                    yield self._list_request(url, lang, section, 1, state=self.list_states.get(url))
        if not self.walk_all_pages:  # else every page is walked anyway
            for page in self.sweep.lists:
                if page.url not in settled:
                    yield self._list_request(page.url, page.lang, page.section, page.page, state=page, sweep=True)
        for url, _etag, _last_modified in self.sweep.articles:
            if url not in settled:
                yield self._article_request(url)
        in_scope = {url for url, section in self.known_listings if section in self.sections}
        # Listed in an earlier run but never archived (its fetch failed, or the run was killed):
        # fetch it now, even if this run stops at a first page that holds nothing new.
        pending = {url for url in in_scope if url not in self.known_urls and lang_from_url(url) in self.langs}
        # Known at once, not one by one: Scrapy reads this generator lazily, and a list page parsed
        # between two yields would request a pending article a second time (the dupefilter drops
        # it, but it would count twice against NPI_MAX_NEW_ARTICLES).
        self.known_urls.update(pending)
        for url in sorted(pending):
            self.crawler.stats.inc_value("npi/article/pending")
            for request in self._new_article(url, url):
                yield request
        for url in self.held:
            # Alerts held by the layout alarm wait for a clean version: fetched again, without
            # validators (the page's ETag may not change with its layout), before any re-check.
            if lang_from_url(url) in self.langs:
                self.crawler.stats.inc_value("npi/article/held_refetch")
                yield self._article_request(url, validators=False)
        for url in self.warc_lost:
            if lang_from_url(url) in self.langs:
                self.crawler.stats.inc_value("npi/warc/lost_refetch")
                yield self._article_request(url, validators=False)
        for request in self.pdf_fetcher.requests(self.warc_lost_pdfs, recheck=True):
            self.crawler.stats.inc_value("npi/warc/lost_refetch")
            yield request
        if self.full:
            # Re-check every archived article, listed or not: one that slid off every list is
            # still checked, and only its own 404/410 marks it removed.
            for url in sorted(self.validators):
                if lang_from_url(url) in self.langs and url in in_scope:
                    yield self._article_request(url)
        # PDFs linked by archived articles but never fetched; with full, a re-check of all.
        for request in self.pdf_fetcher.backlog(full=self.full, langs=self.langs, in_scope=in_scope):
            yield request
        # Expert pages the same way: never fetched (or failed), and with full a re-check of all.
        for request in self.expert_fetcher.backlog(full=self.full, langs=self.langs, in_scope=in_scope):
            yield request

    def _list_request(
        self, url: str, lang: str, section: str, page: int, *, state: ListPageRecord | None = None, sweep: bool = False
    ) -> scrapy.Request:
        """A list page; with its stored ``state``, a conditional GET (a 304 is read as "nothing
        new here"). A page of the rolling sweep (``sweep``) is read for what it holds, never
        followed further, and its 404 means the list is shorter now."""
        meta: dict[str, Any] = {"npi_kind": "list"}
        if state is not None or sweep:
            meta["handle_httpstatus_list"] = [NOT_MODIFIED_STATUS, *((404, 410) if sweep else ())]
        return scrapy.Request(
            url,
            callback=self.parse_list,
            errback=self.failed,
            headers=conditional_headers(state.etag, state.last_modified) if state is not None else None,
            cb_kwargs={"lang": lang, "section": section, "page": page, "sweep": sweep},
            meta=meta,
        )

    def _article_request(self, url: str, *, validators: bool = True) -> scrapy.Request:
        etag, last_modified = self.validators.get(url, (None, None)) if validators else (None, None)
        return scrapy.Request(
            url,
            callback=self.parse_article,
            errback=self.failed,
            headers=conditional_headers(etag, last_modified),
            meta={"npi_kind": "article", "handle_httpstatus_list": list(WITHOUT_CONTENT)},
        )

    # -- callbacks ------------------------------------------------------------------------------
    def parse_list(
        self, response: Response, lang: str, section: str, page: int, sweep: bool = False
    ) -> Iterable[Any]:
        record = ListPageRecord(response.url, lang, section, page)
        if response.status == NOT_MODIFIED_STATUS:
            self.crawler.stats.inc_value("npi/list/not_modified")
            return
        if response.status in (404, 410):  # a page of the sweep the list no longer has
            self.crawler.stats.inc_value("npi/list/gone")
            yield items.ListPageItem(record, gone=True)
            return
        self.crawler.stats.inc_value("npi/list/pages")
        if warc := warc_pointer(response):
            yield items.PageRecordItem(url=response.url, kind="list", warc=warc)
        listing = parse_list_page(page_text(response), response.url, self.profile)
        yield self._list_page_item(record, response, listing)
        for note in listing.notes:
            self.crawler.stats.inc_value(f"npi/parse/{note}")
        if not listing.entries:
            self.logger.warning("list page %s has no entries (has the site's layout changed?)", response.url)
        for href in listing.bad_links:
            yield self._bad_link(response.url, href)
        urls = list(dict.fromkeys(self.site_url(entry) for entry in listing.entries))
        self.crawler.stats.inc_value("npi/list/entries", len(urls))
        if urls:
            yield items.ListingItem(urls=urls, section=section, lang=lang, page=page)
        seen = self.list_seen.setdefault((lang, section), set())
        brings = not seen.issuperset(urls)  # anything no earlier page of this list showed
        seen.update(urls)
        if page == 1:
            self.page_caps[(lang, section)] = self._page_cap(lang, section, len(urls))
        has_new = yield from self._entry_requests(urls, section, response.url)
        follow = self.walk_all_pages or (has_new and not sweep)
        if not follow:
            self.crawler.stats.inc_value("npi/list/stopped_early")
            return
        if not brings:  # a pager that runs on past the list's end (or for ever): its end
            self.crawler.stats.inc_value("npi/list/stopped_seen")
            return
        target = next_page(listing, response.url, page)
        further = [(page + 1, target)] if target else []
        if self.walk_all_pages:
            # Pages a pager skips (1 2 ... 9) are still reached: request every numbered page.
            skipped = ((page_number(label), link) for label, link in listing.pages)
            further += [(number, link) for number, link in skipped if number and number > page + 1]
        yield from self._further_pages(response.url, lang, section, further)

    def _list_page_item(self, record: ListPageRecord, response: Response, listing: ListPage) -> items.ListPageItem:
        """The page's state for the check before the next run: validators, digest, the pages its
        pager shows. A page without entries keeps none of them: the next check asks it whole and
        reads it again, so a layout the operator fixed with [selectors] (or the site fixed) is
        read, never settled as "unchanged" (304 or the same body) with its articles unseen."""
        if not listing.entries:
            return items.ListPageItem(record)
        numbered = ((self.site_url(link), page_number(label)) for label, link in listing.pages)
        return items.ListPageItem(
            record.answered(header(response, "ETag"), header(response, "Last-Modified"), response.body, numbered)
        )

    def _entry_requests(self, urls: list[str], section: str, found_on: str) -> Generator[Any, None, bool]:
        """Requests for a list page's entries: each new article (within the cap), and with
        ``--full`` every one; returns whether the page showed anything not known before."""
        has_new = False
        for url in urls:
            if (url, section) not in self.known_listings:
                has_new = True
                self.known_listings.add((url, section))
            if url not in self.known_urls:
                has_new = True
                self.known_urls.add(url)
                yield from self._new_article(url, found_on)
            elif self.full:
                yield self._article_request(url)  # the dupefilter keeps it to once per run
        return has_new

    def _page_cap(self, lang: str, section: str, per_page: int) -> int:
        """How many pages of a list this run may walk: twice the pages its archived articles fill
        (at ``per_page`` entries, its first page's), plus ``LIST_PAGES_MARGIN``. A pager that runs on
        with new links on every page stops there; the next run, knowing more, goes further."""
        archived = self.list_sizes.get((lang, section), 0)
        return LIST_PAGES_MARGIN + 2 * -(-archived // max(1, per_page))

    def _further_pages(self, page_url: str, lang: str, section: str, pages: list[tuple[int, str]]) -> Iterable[Any]:
        """Requests for the list's ``(number, URL)`` pages within its page cap; the first page past
        it is an error of the run (the run is partial: the next one walks every page again)."""
        cap = self.page_caps.get((lang, section), LIST_PAGES_MARGIN)
        for number, link in pages:
            if number <= cap:
                yield self._list_request(self.site_url(link), lang, section, number)
            elif (lang, section) not in self.capped:
                self.capped.add((lang, section))
                self.crawler.stats.inc_value("npi/list/errors")
                message = f"the list goes on past {cap} pages, twice what the archive knows of it plus {LIST_PAGES_MARGIN}; not followed further"
                self.logger.warning("list %s/%s: %s", section, lang, message)
                yield items.FetchErrorItem(url=page_url, kind="list:page_cap", message=message)

    def parse_article(self, response: Response) -> Iterable[Any]:
        url = self.site_url(response.url)
        warc = warc_pointer(response)
        if answer := answered_without_content(response):
            status, message = answer
            if status == NOT_MODIFIED:
                yield items.NotModifiedItem(url=url, warc=warc)
            elif url in self.validators:
                yield items.GoneItem(url=url, status=response.status, warc=warc)
            else:  # listed but missing: a broken link on the site, not a removal
                yield items.FetchErrorItem(url=url, kind=f"article:{status}", message=message or status)
            return
        self.crawler.stats.inc_value("npi/article/pages")
        if not hasattr(response, "text"):
            yield items.FetchErrorItem(url=url, kind="not_html", message=header(response, "Content-Type") or "no Content-Type")
            return
        parsed = parse_article(page_text(response), url, self.profile, base_url=self.base_url)
        # The record as parsed, with what the fetch said about the page.
        record = dataclasses.replace(
            parsed, etag=header(response, "ETag"), last_modified=header(response, "Last-Modified"), warc=warc
        )
        yield record
        yield from self.pdf_fetcher.requests(record.pdfs)
        yield from self.expert_fetcher.requests(author.profile_url for author in record.authors if author.profile_url)

    def _new_article(self, url: str, found_on: str) -> Iterable[Any]:
        """The request for an article not in the archive, while this run has requested fewer
        than ``NPI_MAX_NEW_ARTICLES``. Past the cap (a hostile list of 100,000 links) the rest
        wait: listed, they are fetched by the next runs, the same number each run."""
        cap = self.max_new_articles
        if cap <= 0 or self.new_requested < cap:
            self.new_requested += 1
            yield self._article_request(url)
            return
        self.crawler.stats.inc_value("npi/article/over_cap")
        if self.crawler.stats.get_value("npi/article/over_cap") == 1:
            message = (
                f"more than {cap} new articles in one run (NPI_MAX_NEW_ARTICLES): the rest are "
                "fetched by the next runs; if the site did not publish that many, check its lists"
            )
            self.logger.warning("%s (first one left for later: %s)", message, url)
            yield items.FetchErrorItem(url=found_on, kind="run:max_new_articles", message=message)

    def _bad_link(self, page_url: str, href: str) -> items.FetchErrorItem:
        """One link of a list page that cannot be read: an error of the run (it may hide an
        article), never a reason to drop the rest of the page."""
        self.crawler.stats.inc_value("npi/list/bad_links")
        message = f"unreadable link {href[:200]!r} skipped; the rest of the page was read"
        self.logger.warning("list page %s: %s", page_url, message)
        return items.FetchErrorItem(url=page_url, kind="list:bad_link", message=message)

    def failed(self, failure: Failure) -> Iterable[Any]:
        request = failure.request  # type: ignore[attr-defined]
        if request.meta.get(STOPPED_META):
            return
        kind = request.meta.get("npi_kind", "request")
        error, message = failure_reason(failure)
        # After redirects, the error belongs to the URL that was listed (the first of the chain).
        url = (request.meta.get("redirect_urls") or [request.url])[0]
        if url != request.url:
            message = f"{message} (at {request.url})"
        # npi/list/errors makes the run partial (the next walks every page); robots.txt stays.
        outcome = "robots_forbidden" if failure.check(RobotsForbidden) else "errors"
        self.crawler.stats.inc_value(f"npi/{kind}/{outcome}")
        self.logger.warning("%s page failed: %s (%s)", kind, url, message)
        yield items.FetchErrorItem(url=url, kind=f"{kind}:{error}", message=message)

