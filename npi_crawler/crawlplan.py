"""What the check before a crawl hands the crawl: pure data, read by the spider and by the
downloader middleware that answers from it (npi_crawler/check.py makes it).

A crawl started without a plan (plain Scrapy, Scrapyd, a ``--full`` run) asks every page itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from npi_crawler.archive.checks import SWEEP_ARTICLES_TO, SWEEP_LISTS_TO
from npi_crawler.archive.records import ListPageRecord
from npi_crawler.site import LANGS, SECTIONS

if TYPE_CHECKING:
    from npi_crawler.archive import Archive
    from npi_crawler.fetch import Answer

# request.meta key of a request the plan answered (npi_crawler.middlewares.PlannedAnswerMiddleware)
PLANNED_META = "npi_planned"


@dataclass
class CrawlPlan:
    """``settled``: URLs the check asked this run and found unchanged: the crawl does not ask
    them again. ``answers``: URLs the check asked this run whose answer has something to read
    (a changed page, a 404): the crawl reads that answer instead of asking again. ``robots``:
    robots.txt as the check holds it (asked at most once a day), given to Scrapy's robots.txt
    middleware the same way. ``sweep_lists`` and ``sweep_articles``: this run's windows of the
    rolling sweep. ``stats``: the check's counts (requests, 304s), added to the run's."""

    settled: frozenset[str] = frozenset()
    answers: dict[str, Answer] = field(default_factory=dict)
    robots: Answer | None = None
    sweep_lists: tuple[ListPageRecord, ...] = ()
    sweep_articles: tuple[tuple[str, str | None, str | None], ...] = ()
    stats: dict[str, Any] = field(default_factory=dict)

    def answer_for(self, url: str) -> Answer | None:
        if self.robots is not None and url == self.robots.url:
            return self.robots
        return self.answers.get(url)


@dataclass
class Sweep:
    """This run's windows of the rolling sweep, and where they leave it (``stats``: the
    ``npi/sweep/*`` values the run's row keeps; the next run starts after them)."""

    lists: tuple[ListPageRecord, ...] = ()
    articles: tuple[tuple[str, str | None, str | None], ...] = ()
    stats: dict[str, Any] = field(default_factory=dict)


def share(rate: float, run: int) -> int:
    """Run number ``run``'s share of ``rate`` items per run: whole numbers that add up to
    ``rate`` per run on average (2.5: 2, 3, 2, 3...)."""
    return math.floor(run * rate + 1e-9) - math.floor((run - 1) * rate + 1e-9)


def sweep_windows(
    archive: Archive, langs: tuple[str, ...], sections: tuple[str, ...], lists: float, articles: float
) -> Sweep:
    """The next deeper list pages and known articles in scope (``lists`` and ``articles`` per run,
    on average), after where the last finished run left the sweep. A run over part of the site
    (``--lang``, ``--section``) sweeps its part without moving the sweep of the whole."""
    after_lists, after_articles = archive.sweep_position()
    run = archive.next_run_id()
    pages = tuple(archive.sweep_list_pages(langs, sections, after_lists, share(lists, run)))
    known = tuple(archive.sweep_articles(langs, sections, after_articles, share(articles, run)))
    stats: dict[str, Any] = {"npi/sweep/lists": len(pages), "npi/sweep/articles": len(known)}
    if set(langs) >= set(LANGS) and set(sections) >= set(SECTIONS):
        cycled = [page.url for page in pages if page.digest is not None]
        if lists_to := (cycled[-1] if cycled else after_lists):
            stats[SWEEP_LISTS_TO] = lists_to
        if articles_to := (known[-1][0] if known else after_articles):
            stats[SWEEP_ARTICLES_TO] = articles_to
    return Sweep(pages, known, stats)
