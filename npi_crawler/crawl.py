"""Running the spider from Python: build settings, crawl, return what the run did.

The CLI is one caller; Scrapyd and ``scrapy crawl npi`` are others (they use the same spider,
pipelines and settings without this module).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from scrapy.crawler import CrawlerProcess
from scrapy.settings import Settings

from npi_crawler.archive import Archive
from npi_crawler.constants import DEFAULT_BASE_URL
from npi_crawler.errors import CrawlError
from npi_crawler.extensions import RUN_ID_STAT
from npi_crawler.spiders.npi import NpiSpider


@dataclass
class CrawlResult:
    run: dict[str, Any]
    stats: dict[str, Any]
    errors: list[dict[str, Any]]


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def build_settings(
    *,
    db_path: str,
    base_url: str,
    overrides: Mapping[str, Any] | None = None,
    log_level: str = "WARNING",
) -> Settings:
    """The project's settings, then full speed for a loopback replica, then the caller's overrides
    (which always win)."""
    settings = Settings()
    settings.setmodule("npi_crawler.settings", priority="project")
    settings.set("NPI_DB_PATH", db_path, priority="cmdline")
    settings.set("NPI_BASE_URL", base_url, priority="cmdline")
    settings.set("LOG_LEVEL", log_level, priority="cmdline")
    if is_loopback(base_url):
        # A replica on this machine: politeness delays only slow the tests down.
        for name, value in {
            "DOWNLOAD_DELAY": 0,
            "AUTOTHROTTLE_ENABLED": False,
            "CONCURRENT_REQUESTS": 16,
            "CONCURRENT_REQUESTS_PER_DOMAIN": 8,
            "DOWNLOAD_DELAY_JITTER": 0,
        }.items():
            settings.set(name, value, priority="project")
    for name, value in (overrides or {}).items():
        settings.set(name, value, priority="cmdline")
    return settings


def run_crawl(
    *,
    db_path: str,
    base_url: str = DEFAULT_BASE_URL,
    full: bool = False,
    langs: Iterable[str] = (),
    sections: Iterable[str] = (),
    overrides: Mapping[str, Any] | None = None,
    log_level: str = "WARNING",
    progress: bool = False,
) -> CrawlResult:
    """Crawl once into the archive at ``db_path``. Runs the Twisted reactor: once per process.

    ``progress`` shows a progress line on standard error (``npi_crawler.progress``); callers pass
    ``sys.stderr.isatty()``. Callers that may overlap with another run hold
    ``npi_crawler.archive.runlock.run_lock(db_path)`` around this call.
    """
    Archive.open(db_path).close()  # a bad --db fails here, with a clear message, before crawling
    settings = build_settings(db_path=db_path, base_url=base_url, overrides=overrides, log_level=log_level)
    if progress:
        settings.set("NPI_PROGRESS", True, priority="cmdline")
    process = CrawlerProcess(settings)
    crawler = process.create_crawler(NpiSpider)
    process.crawl(
        crawler,
        base_url=base_url,
        langs=",".join(langs),
        sections=",".join(sections),
        full="1" if full else "",
    )
    process.start()
    stats = crawler.stats.get_stats() if crawler.stats else {}
    run_id = stats.get(RUN_ID_STAT)
    with Archive.open(db_path) as archive:
        run = archive.run(run_id) if run_id else None
        errors = archive.run_errors(run_id) if run_id else []
    if run is None:
        raise CrawlError("the crawl did not start; run with --verbose to see why")
    return CrawlResult(run=run, stats=stats, errors=errors)
