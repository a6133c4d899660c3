"""Running the spider from Python: build settings, crawl, return what the run did.

The CLI is one caller; Scrapyd and ``scrapy crawl npi`` are others (they use the same spider,
pipelines and settings without this module).
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import socket
import sys
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit
from urllib.request import getproxies

from scrapy.crawler import CrawlerProcess
from scrapy.exceptions import IgnoreRequest
from scrapy.settings import Settings
from twisted.python.failure import Failure

from npi_crawler.archive import Archive
from npi_crawler.archive.warc import check_warc_dir
from npi_crawler.errors import ArchiveError, CrawlError
from npi_crawler.extensions import ARCHIVE_ERROR_STAT, ARCHIVE_WRITE_ERRORS, RUN_ID_STAT, run_counts
from npi_crawler.site import DEFAULT_BASE_URL, LANGS, SECTIONS
from npi_crawler.site.profile import profile_setting
from npi_crawler.spiders.common import STOPPED_META
from npi_crawler.spiders.npi import NpiSpider
from npi_crawler.stops import STOPS
from npi_crawler.warc_recorder import warc_directory

REACH_TIMEOUT = 5.0  # seconds for the name lookup, and again for the connection


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


def setting_defaults() -> dict[str, Any]:
    """Every setting's default by name, as Scrapy's and the project's settings modules define it
    (the project's wins): what ``-s`` and ``[scrapy]`` values are checked against before a crawl
    (cli/scrapy_values.py)."""
    import scrapy.settings.default_settings as scrapy_defaults

    import npi_crawler.settings as project

    found: dict[str, Any] = {}
    for module in (scrapy_defaults, project):
        found.update({name: getattr(module, name) for name in dir(module) if name.isupper()})
    return found


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


def check_reachable(base_url: str, timeout: float = REACH_TIMEOUT) -> None:
    """Fail in seconds, with one line, when the site's host does not resolve or refuses
    connections: Scrapy would retry every list page (52 requests, over a minute) first. Skipped
    behind a proxy (the proxy resolves the name; Scrapy honours *_proxy variables)."""
    parts = urlsplit(base_url)
    if getproxies().get(parts.scheme):
        return
    host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    try:
        # A thread bounds the name lookup, which has no timeout of its own.
        with ThreadPoolExecutor(max_workers=1) as pool:
            address = pool.submit(socket.getaddrinfo, host, port, 0, socket.SOCK_STREAM).result(timeout)[0][4]
        with socket.create_connection(address[:2], timeout=timeout):
            pass
    except FutureTimeout:
        raise CrawlError(f"cannot reach {host}: no answer to the name lookup in {timeout:.0f} s; check --base-url and the network") from None
    except socket.gaierror as exc:
        raise CrawlError(f"cannot reach {host}: the name does not resolve ({exc.strerror}); check --base-url and the network") from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise CrawlError(f"cannot reach {host}:{port} ({reason}); check --base-url and the network") from None


def drop_queued_requests(crawler: Any) -> int:
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


def _stopper(process: CrawlerProcess, grace: float) -> Any:
    """What a stop signal does while Scrapy runs: the first stops the crawl gracefully (queued
    requests dropped, transfers under way finished, and at once if that takes more than ``grace``
    seconds), the second stops it at once. Before Scrapy has installed its reactor a signal is
    only recorded (importing the reactor here would install the wrong one): run_crawl then does
    not start the crawl at all."""

    def on_signal(_signum: int, count: int) -> None:
        if "twisted.internet.reactor" not in sys.modules:
            return
        from twisted.internet import reactor

        def force() -> None:
            with contextlib.suppress(RuntimeError):  # already stopping
                reactor.stop()

        def graceful() -> None:
            if not any(c.engine is not None and c.engine.running for c in process.crawlers):
                force()  # the crawl has not started: nothing to finish
                return
            reactor.callLater(grace, force)
            stopping = process.stop()
            for crawler in process.crawlers:
                drop_queued_requests(crawler)
            stopping.addBoth(lambda _: force())

        reactor.callFromThread(graceful if count == 1 else force)

    return on_signal


def _record_unreachable(
    db_path: str, base_url: str, full: bool, langs: Iterable[str], sections: Iterable[str], message: str
) -> None:
    """A run that could not reach the site is a failed run in ``runs`` (``status`` and ``doctor``
    then say the last run failed), with the reason in ``run_errors``."""
    with Archive.open(db_path) as archive:
        run_id = archive.start_run(
            mode="full" if full else "incremental", base_url=base_url, langs=langs or LANGS, sections=sections or SECTIONS
        )
        archive.record_error(run_id, base_url, "site:unreachable", message)
        archive.finish_run(run_id, status="failed", counts={"errors": 1}, stats={})


def _record_stop(db_path: str, run_id: int | None, stats: dict[str, Any]) -> None:
    """A run the reactor left before ``spider_closed`` (a second signal, the grace period over)
    is recorded as interrupted all the same, with what it did."""
    if run_id is None:
        return
    with Archive.open(db_path) as archive:
        run = archive.run(run_id)
        if run is not None and run["status"] == "running":
            archive.finish_run(run_id, status="interrupted", counts=run_counts(stats), stats=stats)


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

    ``progress`` shows a progress line on standard error (extensions.ProgressLine); callers pass
    ``sys.stderr.isatty()``. Callers that may overlap with another run hold
    ``npi_crawler.archive.runlock.run_lock(db_path)`` around this call. A stop signal ends the
    crawl within ``NPI_STOP_GRACE`` seconds and raises ``stops.Stopped`` once the run is recorded
    as interrupted.
    """
    with Archive.open(db_path) as archive:  # a bad --db fails here, with a clear message, before crawling
        archive.check_writable()
    settings = build_settings(db_path=db_path, base_url=base_url, overrides=overrides, log_level=log_level)
    if settings.getbool("NPI_WARC"):
        check_warc_dir(warc_directory(settings))  # a folder that cannot be written fails here, in one line
    if progress:
        settings.set("NPI_PROGRESS", True, priority="cmdline")
    profile_setting(settings.get("NPI_SELECTORS"))  # a bad -s NPI_SELECTORS: one line, before any request
    try:
        check_reachable(base_url)
    except CrawlError as exc:
        _record_unreachable(db_path, base_url, full, langs, sections, str(exc))
        raise
    process = CrawlerProcess(settings)
    # Scrapy leaves its loggers at NOTSET and filters at the handler: every item still built a
    # DEBUG "Scraped from" record (its repr included) only to drop it. The level set here keeps
    # the records from being made at all.
    logging.getLogger("scrapy").setLevel(settings.get("LOG_LEVEL"))
    crawler = process.create_crawler(NpiSpider)
    started = time.monotonic()
    # From here a signal must not raise into Scrapy's or Twisted's code: it stops the reactor.
    with STOPS.crawl_mode(_stopper(process, settings.getfloat("NPI_STOP_GRACE"))):
        scope = {"langs": ",".join(langs), "sections": ",".join(sections), "full": "1" if full else ""}
        process.crawl(crawler, base_url=base_url, **scope)  # installs Scrapy's reactor
        if not STOPS.received:
            process.start(install_signal_handlers=False)
    stats = crawler.stats.get_stats() if crawler.stats else {}
    stats.setdefault("elapsed_time_seconds", round(time.monotonic() - started, 3))
    run_id = stats.get(RUN_ID_STAT)
    if STOPS.received:
        _record_stop(db_path, run_id, stats)
        what = f": run {run_id} recorded as interrupted" if run_id else ": the crawl had not started"
        STOPS.check(f"{what} after {time.monotonic() - started:.1f} s; the next run fetches what this one missed")
    with Archive.open(db_path) as archive:
        run = archive.run(run_id) if run_id else None
        errors = archive.run_errors(run_id) if run_id else []
    if stats.get(ARCHIVE_ERROR_STAT):
        raise ArchiveError(_archive_failure(stats, run))
    if run is None:
        raise CrawlError("the crawl did not start; run with --verbose to see why")
    return CrawlResult(run=run, stats=stats, errors=errors)


def _archive_failure(stats: dict[str, Any], run: dict[str, Any] | None) -> str:
    """One line: why the archive refused a write, and what the archive now says of the run."""
    lost = stats.get(ARCHIVE_WRITE_ERRORS, 0)
    if run is None:
        outcome = "the crawl did not start and no run was recorded"
    elif run["status"] == "running":
        outcome = (
            f"run {run['id']} could not be finished and stays 'running' in the archive "
            f"({lost} write(s) lost); the next run walks every list page"
        )
    else:
        outcome = f"run {run['id']} is recorded as {run['status']} ({lost} write(s) lost); the next run fetches what it missed"
    return f"{stats[ARCHIVE_ERROR_STAT]}; {outcome}"
