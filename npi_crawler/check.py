"""The check before a crawl (issue 20): what a run of ``crawl`` or ``watch`` asks first, and the
decision to start Scrapy or not.

Every incremental run asks, one request at a time with the crawl's politeness (npi_crawler/fetch.py):

- robots.txt, only when the copy the archive keeps is over a day old, and then conditionally;
- the first page of each list in scope, with a conditional GET (the validators each list page's
  last 200 left in ``list_pages``);
- this run's window of the rolling sweep (npi_crawler/crawlplan.py): a few of the deeper list pages
  and a few known articles, the least recently checked, conditionally too.

A 304, or a 200 whose body is the one last seen, is settled: nothing changed. A changed list page
is read (site.lists) for entries the archive does not have; a changed article, a removal (404/410),
a page with entries the archive lacks, a page whose reading raised a parse note, an answer that
decides nothing (a redirect, a 5xx) or no answer at all hand over to the crawl, which reads the
answers the check got instead of asking again (``CrawlPlan``) and asks what the check could not.
So does anything the crawl would fetch anyway (``backlog``). When nothing changed and nothing is
due, the run ends here: Scrapy is never imported, and the archive gets the run's row (with the
sweep's new position in its stats) and, for a list page that changed without anything new, its
new validators; nothing else, and no WARC record (an answer that changes nothing is not a page to
keep). A 429 or 503 with ``Retry-After`` stops the check at once and holds later runs.

A full run, the first run of an archive, a run after one that did not finish (it walks every list
page) and a run behind an HTTP proxy skip the check and crawl as before.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit
from urllib.request import getproxies

from npi_crawler.archive import Archive, content_hash
from npi_crawler.archive.db import parse_stamp, stamp
from npi_crawler.archive.records import ListPageRecord, payload_digest
from npi_crawler.crawlplan import CrawlPlan, Sweep, sweep_windows
from npi_crawler.errors import SiteAskedToWait
from npi_crawler.fetch import Answer, FetchFailed, PoliteClient, Politeness, Robots
from npi_crawler.runner import CrawlResult, plain_settings, run_crawl
from npi_crawler.site import DEFAULT_BASE_URL, LANGS, NPI_HOSTS, SECTIONS
from npi_crawler.site.notes import DEGRADED
from npi_crawler.site.urls import host_allowed, lang_from_url, list_url, site_url

ROBOTS_MAX_AGE = dt.timedelta(hours=24)
GONE = (404, 410)


@dataclass
class Hold:
    """The site's Retry-After, as the check met it."""

    url: str
    status: int
    seconds: float
    until: str

    @property
    def message(self) -> str:
        return f"HTTP {self.status} with Retry-After {self.seconds:.0f} s: no request to the site before {self.until}"


@dataclass
class Outcome:
    """What the check found: the plan it hands the crawl, the ``reasons`` to crawl (none: the run
    ends with the check), list pages that changed without anything new (``changed``) or are gone,
    and the site's Retry-After (``hold``)."""

    plan: CrawlPlan
    reasons: list[str] = field(default_factory=list)
    changed: list[ListPageRecord] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    hold: Hold | None = None


class SiteCheck:
    """One run's check of the site at ``base_url`` (its lists in ``langs`` x ``sections``)."""

    def __init__(
        self,
        archive: Archive,
        client: PoliteClient,
        base_url: str,
        scope: tuple[tuple[str, ...], tuple[str, ...]],
        settings: Mapping[str, Any],
    ):
        self.archive = archive
        self.client = client
        self.base_url = base_url
        self.langs, self.sections = scope
        self.settings = settings  # the crawl's, as plain values (runner.plain_settings)
        self.settled: set[str] = set()
        self.answers: dict[str, Answer] = {}
        self.stats: dict[str, Any] = {}
        self.outcome = Outcome(CrawlPlan())

    def _count(self, key: str, n: int = 1) -> None:
        self.stats[f"npi/check/{key}"] = self.stats.get(f"npi/check/{key}", 0) + n

    def run(self, sweep: Sweep) -> Outcome:
        """Ask robots.txt (when due), the first pages, then the sweep's window; stop at the first
        Retry-After or the first request that got no answer (the crawl asks the rest)."""
        firsts = [list_url(self.base_url, lang, s) for lang in self.langs for s in self.sections]
        known = self.archive.list_page_rows(firsts)
        pages = [known.get(url) or ListPageRecord(url, lang_from_url(url), _section(url), 1) for url in firsts]
        robots_answer = None
        try:
            robots, robots_answer = self._robots()
            for page in [*pages, *sweep.lists]:
                if robots.allowed(page.url):
                    self._list_page(page, first=page.page == 1)
            for url, etag, last_modified in sweep.articles:
                if robots.allowed(url):
                    self._article(url, etag, last_modified)
        except _Stop:
            pass
        except FetchFailed as exc:
            self.outcome.reasons.append(f"no answer from the site ({exc})")
        self.stats["npi/check/requests"] = self.client.requests
        sweep_stats = {} if self.outcome.hold else sweep.stats  # a window not asked whole is asked again
        self.outcome.plan = CrawlPlan(
            settled=frozenset(self.settled),
            answers=self.answers,
            robots=robots_answer,
            sweep_lists=sweep.lists,
            sweep_articles=sweep.articles,
            stats={**self.stats, **sweep_stats},
        )
        return self.outcome

    # -- asking ---------------------------------------------------------------------------------
    def _get(self, url: str, etag: str | None = None, last_modified: str | None = None) -> Answer:
        headers = {"If-None-Match": etag} if etag else {}
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        answer = self.client.get(url, headers)
        self._count("responses")
        if (seconds := answer.retry_after()) is not None:
            cap = float(self.settings["NPI_RETRY_AFTER_CAP"])
            until = stamp(dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=min(seconds, cap)))
            self.outcome.hold = Hold(url, answer.status, seconds, until)
            raise _Stop
        return answer

    def _robots(self) -> tuple[Robots, Answer | None]:
        """robots.txt as the archive keeps it, asked again (conditionally) once it is a day old."""
        url = urljoin(self.base_url, "/robots.txt")
        kept = self.archive.robots_txt(url)
        fetched = parse_stamp(kept["fetched_at"]) if kept else None
        if kept is None or fetched is None or dt.datetime.now(dt.timezone.utc) - fetched > ROBOTS_MAX_AGE:
            answer = self._get(url, kept["etag"] if kept else None, kept["last_modified"] if kept else None)
            self._count("robots")
            if answer.status == 304 and kept is not None:
                kept = {**kept}
            elif answer.status < 500:
                text = answer.body.decode("utf-8", "replace") if answer.status == 200 else ""
                kept = {"status": answer.status, "body": text, "etag": answer.header("ETag"),
                        "last_modified": answer.header("Last-Modified")}  # fmt: skip
            else:
                raise FetchFailed(f"robots.txt answered HTTP {answer.status}")
            self.archive.store_robots_txt(url, status=int(kept["status"]), body=kept["body"], etag=kept["etag"],
                                          last_modified=kept["last_modified"])  # fmt: skip
        body = kept["body"] if kept["status"] == 200 else ""
        answer = Answer(url, int(kept["status"]), [("Content-Type", "text/plain")], body.encode("utf-8"))
        return Robots(body, self.client.politeness.user_agent), answer

    def _list_page(self, page: ListPageRecord, *, first: bool) -> None:
        answer = self._get(page.url, page.etag, page.last_modified)
        self._count("lists")
        if answer.status == 304 or (answer.status == 200 and payload_digest(answer.body) == page.digest):
            self._count("lists_not_modified")
            self.settled.add(page.url)
            return
        if answer.status in GONE and not first:
            self.answers[page.url] = answer
            self.outcome.gone.append(page.url)
            return
        if answer.status != 200:
            self.outcome.reasons.append(f"{page.url} answered HTTP {answer.status}")
            return
        self.answers[page.url] = answer
        if reason := self._read_list(page, answer):
            self.outcome.reasons.append(reason)

    def _read_list(self, page: ListPageRecord, answer: Answer) -> str | None:
        """Read a changed list page: the reason to crawl (entries the archive lacks, a page that
        reads badly), or None and the page's new state kept for a run that does not crawl."""
        from npi_crawler.site.decoding import decode_page
        from npi_crawler.site.lists import page_number, parse_list_page
        from npi_crawler.site.profile import profile_setting

        text = decode_page(answer.body, answer.header("Content-Type"))
        listing = parse_list_page(text, page.url, profile_setting(self.settings.get("NPI_SELECTORS")))
        if listing.notes or listing.bad_links:  # what the layout alarm reads: the crawl records it
            return f"{page.url} reads with parse notes ({', '.join(listing.notes) or 'unreadable links'})"
        entries = list(dict.fromkeys(site_url(entry, self.base_url) for entry in listing.entries))
        if new := self.archive.unknown_entries(entries, page.section):
            return f"{page.url} lists {len(new)} article(s) new to the archive or to the section"
        numbered = ((site_url(link, self.base_url), page_number(label)) for label, link in listing.pages)
        self._count("lists_changed")
        self.outcome.changed.append(
            page.answered(answer.header("ETag"), answer.header("Last-Modified"), answer.body, numbered)
        )
        return None

    def _article(self, url: str, etag: str | None, last_modified: str | None) -> None:
        answer = self._get(url, etag, last_modified)
        self._count("articles")
        unchanged = answer.status == 304
        if answer.status == 200 and (last := self.archive.last_warc_response(url)) is not None:
            unchanged = last["payload_digest"] == payload_digest(answer.body)
        if answer.status == 200 and not unchanged:
            unchanged = self._same_article(url, answer)
        if unchanged:
            self._count("articles_not_modified")
            self.settled.add(url)
        elif answer.status in (200, *GONE):
            self.answers[url] = answer
            self.outcome.reasons.append(f"{url} {'changed' if answer.status == 200 else 'is gone'}")
        else:
            self.outcome.reasons.append(f"{url} answered HTTP {answer.status}")


    def _same_article(self, url: str, answer: Answer) -> bool:
        """A page whose bytes changed but whose article did not: the site's side blocks list the
        latest articles, so every publication changes every article page. Read as the crawl reads
        it; one that reads with a note of a degraded layout is the crawl's to record."""
        from npi_crawler.site.articles import parse_article
        from npi_crawler.site.decoding import decode_page
        from npi_crawler.site.profile import profile_setting

        text = decode_page(answer.body, answer.header("Content-Type"))
        record = parse_article(text, url, profile_setting(self.settings.get("NPI_SELECTORS")), base_url=self.base_url)
        if set(record.notes) & DEGRADED:
            return False
        authors = [author.name for author in record.authors]
        found = content_hash(record.title, record.published, record.body, record.pdfs, authors)
        if found != self.archive.article_hash(url):
            return False
        self._count("articles_same_content")
        return True


class _Stop(Exception):
    """The site asked to wait: no more requests this run."""


def _section(url: str) -> str:
    parts = urlsplit(url).path.rstrip("/").split("/")
    return parts[-2] if len(parts) >= 2 else ""


# -- what the crawl would fetch anyway ----------------------------------------------------------------


def backlog(archive: Archive, scope: tuple[tuple[str, ...], tuple[str, ...]], settings: Mapping[str, Any], base_url: str) -> list[str]:
    """Why a crawl is due even when no page changed: what the spider fetches at the start of every
    run (spiders/npi.py ``start``): articles listed but never archived, articles held by the layout
    alarm for a clean version, and (when enabled) PDFs and expert pages never fetched or whose last
    fetch failed for a reason worth another try, on the site's own hosts."""
    langs, sections = scope
    reasons = []
    pending = [url for url in archive.unarchived_listings(sections) if lang_from_url(url) in langs]
    if pending:
        reasons.append(f"{len(pending)} listed article(s) not archived yet")
    if any(lang_from_url(url) in langs for url in archive.held_urls(DEGRADED)):
        reasons.append("alerts held by the layout alarm wait for a clean version")
    hosts = [*NPI_HOSTS, urlsplit(base_url).hostname or "", *settings.get("NPI_ALLOWED_DOMAINS", ())]
    for kind, setting in (("pdf", "NPI_PDFS"), ("expert", "NPI_EXPERTS")):
        if not settings.get(setting, True):
            continue
        links = [(url, article) for url, article in archive.unfetched_links(kind) if lang_from_url(article) in langs]
        links = [(url, article) for url, article in links if host_allowed(url, hosts)]
        listed = archive.listed_in({article for _url, article in links}, sections)
        if due := {url for url, article in links if article in listed}:
            reasons.append(f"{len(due)} {kind} link(s) to fetch")
    return reasons


# -- a run: the check, then the crawl when it is needed ----------------------------------------------


def run_checked(
    archive: Archive,
    *,
    db_path: str,
    base_url: str = DEFAULT_BASE_URL,
    full: bool = False,
    langs: Iterable[str] = (),
    sections: Iterable[str] = (),
    overrides: Mapping[str, Any] | None = None,
    log_level: str = "WARNING",
    progress: bool = False,
    sweep_lists: float | None = None,
    sweep_articles: float | None = None,
    ignore_retry_after: bool = False,
    before_crawl: Callable[[], None] | None = None,
) -> CrawlResult:
    """One run of ``crawl`` or ``watch`` on the open ``archive`` (at ``db_path``): the site's
    Retry-After obeyed (``SiteAskedToWait``, exit 75, unless ``ignore_retry_after``), the check, and
    the crawl (``run_crawl``) only when the check calls for it. ``sweep_lists``/``sweep_articles``: the sweep per run (None: the settings').
    ``before_crawl`` runs just before Scrapy starts: watch loads its channels there (a crawl is
    worth failing fast for; a run that ends with the check sends nothing, or loads them itself)."""
    scope = (tuple(langs) or LANGS, tuple(sections) or SECTIONS)
    overrides = {**(overrides or {}), **({"NPI_IGNORE_RETRY_AFTER": True} if ignore_retry_after else {})}
    settings = plain_settings(base_url, overrides)
    counts = (
        float(settings["NPI_SWEEP_LISTS"] if sweep_lists is None else sweep_lists),
        float(settings["NPI_SWEEP_ARTICLES"] if sweep_articles is None else sweep_articles),
    )
    started = time.monotonic()
    outcome = None
    archive.check_writable()
    hold = archive.retry_hold()
    if hold and not ignore_retry_after:
        raise SiteAskedToWait(
            f"the site asked to be left alone ({hold['message'] or 'no request before ' + hold['until']}; "
            f"run {hold['run_id']}): this run sends nothing (exit {SiteAskedToWait.exit_code}); "
            "--ignore-retry-after runs anyway"
        )
    skipped = _no_check(archive, full, base_url)
    if skipped is None:
        outcome = _check(archive, base_url, scope, settings, counts)
        if outcome.hold or not outcome.reasons:
            return _record(archive, outcome, base_url, scope, time.monotonic() - started)
    if before_crawl is not None:
        before_crawl()
    plan = outcome.plan if outcome is not None else None
    result = run_crawl(
        db_path=db_path, base_url=base_url, full=full, langs=langs, sections=sections, overrides=overrides,
        log_level=log_level, progress=progress, plan=plan, sweep=counts,
    )  # fmt: skip
    result.reasons = outcome.reasons if outcome is not None else [f"no check: {skipped}"]
    return result


def _no_check(archive: Archive, full: bool, base_url: str) -> str | None:
    """Why this run crawls without a check first, or None."""
    if full:
        return "a full run reads every page"
    if not archive.last_run_complete():
        return "the last run did not finish (or there was none): this one walks every list page"
    if getproxies().get(urlsplit(base_url).scheme):
        return "an HTTP proxy is set: the crawl goes through it"
    return None


def _check(
    archive: Archive,
    base_url: str,
    scope: tuple[tuple[str, ...], tuple[str, ...]],
    settings: Mapping[str, Any],
    counts: tuple[float, float],
) -> Outcome:
    sweep = sweep_windows(archive, *scope, *counts)
    with PoliteClient(Politeness.of(settings)) as client:
        outcome = SiteCheck(archive, client, base_url, scope, settings).run(sweep)
        if outcome.reasons and outcome.hold is None:
            client.wait()  # the crawl's first request keeps the delay after the check's last
    if outcome.hold is None:
        outcome.reasons += backlog(archive, scope, settings, base_url)
    return outcome


def _record(
    archive: Archive, outcome: Outcome, base_url: str, scope: tuple[tuple[str, ...], tuple[str, ...]], seconds: float
) -> CrawlResult:
    """The run of a check that found nothing to crawl (or was told to wait): its row, the list
    pages that changed without anything new, and the site's Retry-After; one transaction."""
    stats = {**outcome.plan.stats, "elapsed_time_seconds": round(seconds, 3)}
    counts = {
        "requests": stats.get("npi/check/requests", 0),
        "responses": stats.get("npi/check/responses", 0),
        "list_pages": stats.get("npi/check/lists", 0),
        "articles_not_modified": stats.get("npi/check/articles_not_modified", 0),
        "errors": int(outcome.hold is not None),
    }
    with archive.atomic():
        run_id = archive.start_run(mode="incremental", base_url=base_url, langs=scope[0], sections=scope[1])
        for page in outcome.changed:
            archive.store_list_page(page, run_id=run_id)
        for url in outcome.gone:
            archive.forget_list_page(url)
        if outcome.hold is not None:
            stats["npi/retry_after/until"] = outcome.hold.until
            archive.set_retry_after(run_id, outcome.hold.until)
            archive.record_error(run_id, outcome.hold.url, "site:retry_after", outcome.hold.message)
        archive.finish_run(run_id, status="ok", counts=counts, stats=stats)
    run = archive.run(run_id)
    assert run is not None
    return CrawlResult(run=run, stats=stats, errors=archive.run_errors(run_id), crawled=False, reasons=outcome.reasons)
