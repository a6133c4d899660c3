"""Running a crawl from Python, and what a stop signal does meanwhile (one module: the run).

``run_crawl`` builds the settings, checks every input, crawls once and returns what the run did.
The CLI is one caller; Scrapyd and ``scrapy crawl npi`` are others (they use the same spider,
pipelines, extensions and settings without this module). Scrapy and Twisted are imported by the
functions that crawl, not by the module: the CLI imports it for ``STOPS`` at every start.

A stop (Ctrl-C, SIGTERM from systemd, cron wrappers or ``timeout``) is an input like any other.
``STOPS`` is the process's one record of the stop signals it received. The CLI installs it for
the whole command; what a signal does depends on what the command is doing:

- during a crawl (``crawl_mode``): the first signal stops Scrapy gracefully (no new request; the
  ones in flight finish or are dropped) and, if that takes longer than the grace period, stops
  it at once; a second signal stops it at once. Each item is written whole or not at all (a
  savepoint of the run's open batch), and the batch is committed at the stop; the run is
  recorded as ``interrupted``, never ``ok``;
- inside ``uninterrupted()`` (a message being sent and its delivery recorded): the first signal
  waits for the block to end, so a stop never sends an alert whose delivery it then forgets;
  a second signal does not wait;
- anywhere else: ``Stopped`` is raised at once, and transactions in progress roll back.

``Stopped`` is an NpiError: one line on stderr, exit 130 for SIGINT and 143 for SIGTERM.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from urllib.request import getproxies

from npi_crawler.archive import Archive
from npi_crawler.constants import crawl_user_agent
from npi_crawler.errors import ArchiveError, CrawlError, NpiError
from npi_crawler.site import DEFAULT_BASE_URL, LANGS, SECTIONS

if TYPE_CHECKING:
    from scrapy.crawler import Crawler, CrawlerProcess
    from scrapy.settings import Settings

    from npi_crawler.crawlplan import CrawlPlan


# -- stop signals -----------------------------------------------------------------------------------

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopped(NpiError):
    """The command was stopped by a signal; ``exit_code`` is 128 + its number."""

    def __init__(self, signum: int, detail: str = ""):
        self.signum = signum
        self.exit_code = 128 + signum
        super().__init__(f"stopped by {signal.Signals(signum).name}{detail}")


class StopSignals:
    def __init__(self) -> None:
        self.received: list[int] = []
        self._depth = 0  # nesting of uninterrupted() blocks
        self._on_signal: Callable[[int, int], None] | None = None  # set by crawl_mode
        self._previous: dict[int, Any] | None = None

    # -- installing ---------------------------------------------------------------------------
    @property
    def installed(self) -> bool:
        return self._previous is not None

    def install(self) -> None:
        if self._previous is None:
            self._previous = {s: signal.signal(s, self._handle) for s in STOP_SIGNALS}

    def restore(self) -> None:
        if self._previous is not None:
            for signum, handler in self._previous.items():
                signal.signal(signum, handler)
            self._previous = None

    @contextmanager
    def handling(self) -> Iterator[StopSignals]:
        """Handle SIGINT and SIGTERM for the ``with`` block (the whole command)."""
        was_installed = self.installed
        self.install()
        try:
            yield self
        finally:
            if not was_installed:
                self.restore()

    # -- what a signal does -------------------------------------------------------------------
    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.received.append(signum)
        if self._on_signal is not None:
            self._on_signal(signum, len(self.received))
        elif self._depth and len(self.received) == 1:
            return  # raised when the uninterrupted block ends
        else:
            raise Stopped(signum)

    @property
    def first(self) -> int | None:
        return self.received[0] if self.received else None

    def check(self, detail: str = "") -> None:
        """Raise ``Stopped`` if a stop signal arrived (after a phase that deferred it)."""
        if self.received:
            raise Stopped(self.received[0], detail)

    @contextmanager
    def uninterrupted(self) -> Iterator[None]:
        """A block a first stop signal does not cut short; the stop takes effect after it."""
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
        if self._depth == 0:
            self.check()

    @contextmanager
    def crawl_mode(self, on_signal: Callable[[int, int], None]) -> Iterator[None]:
        """While Scrapy runs: signals go to ``on_signal(signum, count)``, which stops the reactor
        (a signal handler must not raise into Twisted's loop)."""
        with self.handling():
            self._on_signal = on_signal
            try:
                yield
            finally:
                self._on_signal = None


STOPS = StopSignals()


# -- the crawl ----------------------------------------------------------------------------------------

REACH_TIMEOUT = 5.0  # seconds for the name lookup, and again for the connection


@dataclass
class CrawlResult:
    """What a run did: its row, its stats and errors; ``crawled`` False when the check before the
    crawl found nothing to crawl (npi_crawler/check.py), ``reasons`` why it crawled after one."""

    run: dict[str, Any]
    stats: dict[str, Any]
    errors: list[dict[str, Any]]
    crawled: bool = True
    reasons: list[str] = field(default_factory=list)


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


# A replica on this machine: politeness delays only slow the tests down.
LOOPBACK_SETTINGS: dict[str, Any] = {
    "DOWNLOAD_DELAY": 0,
    "AUTOTHROTTLE_ENABLED": False,
    "CONCURRENT_REQUESTS": 16,
    "CONCURRENT_REQUESTS_PER_DOMAIN": 8,
    "DOWNLOAD_DELAY_JITTER": 0,
}


def plain_settings(base_url: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The crawl's settings as plain values, as ``build_settings`` makes them but without Scrapy
    (the check before a crawl reads its politeness from them): the project's settings, full speed
    for a loopback replica, the caller's overrides; the User-Agent as the spider builds it."""
    import npi_crawler.settings as project

    values = {name: getattr(project, name) for name in dir(project) if name.isupper()}
    if is_loopback(base_url):
        values.update(LOOPBACK_SETTINGS)
    values.update(overrides or {})
    values["USER_AGENT"] = crawl_user_agent(values.get("USER_AGENT"), values.get("NPI_CONTACT"))
    return values


def build_settings(
    *,
    db_path: str,
    base_url: str,
    overrides: Mapping[str, Any] | None = None,
    log_level: str = "WARNING",
) -> Settings:
    """The project's settings, then full speed for a loopback replica, then the caller's overrides
    (which always win)."""
    from scrapy.settings import Settings

    settings = Settings()
    settings.setmodule("npi_crawler.settings", priority="project")
    settings.set("NPI_DB_PATH", db_path, priority="cmdline")
    settings.set("NPI_BASE_URL", base_url, priority="cmdline")
    settings.set("LOG_LEVEL", log_level, priority="cmdline")
    if is_loopback(base_url):
        for name, value in LOOPBACK_SETTINGS.items():
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
        with socket.create_connection((str(address[0]), int(address[1])), timeout=timeout):
            pass
    except FutureTimeout:
        raise CrawlError(f"cannot reach {host}: no answer to the name lookup in {timeout:.0f} s; check --base-url and the network") from None
    except socket.gaierror as exc:
        raise CrawlError(f"cannot reach {host}: the name does not resolve ({exc.strerror}); check --base-url and the network") from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise CrawlError(f"cannot reach {host}:{port} ({reason}); check --base-url and the network") from None


def _stopper(process: CrawlerProcess, grace: float) -> Callable[[int, int], None]:
    """What a stop signal does while Scrapy runs: the first stops the crawl gracefully (queued
    requests dropped, transfers under way finished, and at once if that takes more than ``grace``
    seconds), the second stops it at once. Before Scrapy has installed its reactor a signal is
    only recorded (importing the reactor here would install the wrong one): run_crawl then does
    not start the crawl at all."""

    def on_signal(_signum: int, count: int) -> None:
        if "twisted.internet.reactor" not in sys.modules:
            return
        from twisted.internet import reactor as installed

        reactor: Any = installed  # Twisted types the module, not the reactor it installs

        def force() -> None:
            with contextlib.suppress(RuntimeError):  # already stopping
                reactor.stop()

        def graceful() -> None:
            if not any(c.engine is not None and c.engine.running for c in process.crawlers):
                force()  # the crawl has not started: nothing to finish
                return
            reactor.callLater(grace, force)
            stopping = process.stop()
            from npi_crawler.middlewares import drop_queued_requests

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
        archive.finish_run(run_id, status="failed", counts={"errors": 1}, stats={}, problem=message)


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
    plan: CrawlPlan | None = None,
    sweep: tuple[float, float] | None = None,
) -> CrawlResult:
    """Crawl once into the archive at ``db_path``. Runs the Twisted reactor: once per process.

    ``plan``: what the check before the crawl settled and answered (npi_crawler/check.py);
    ``sweep``: list pages and articles the rolling sweep re-checks per run (None: the settings').

    ``progress`` shows a progress line on standard error (extensions.ProgressLine); callers pass
    ``sys.stderr.isatty()``. Callers that may overlap with another run hold
    ``npi_crawler.archive.runlock.run_lock(db_path)`` around this call. A stop signal ends the
    crawl within ``NPI_STOP_GRACE`` seconds and raises ``Stopped`` once the run is recorded as
    interrupted.
    """
    settings = _checked_settings(db_path, base_url, overrides, log_level, progress)
    try:
        check_reachable(base_url)
    except CrawlError as exc:
        _record_unreachable(db_path, base_url, full, langs, sections, str(exc))
        raise
    started = time.monotonic()
    scope: dict[str, Any] = {"langs": ",".join(langs), "sections": ",".join(sections), "full": "1" if full else "", "plan": plan}
    if sweep is not None:
        scope.update(sweep_lists=sweep[0], sweep_articles=sweep[1])
    crawler = _crawl(settings, base_url, scope)
    from npi_crawler.runstate import RunState

    state = RunState.of(crawler)
    stats = crawler.stats.get_stats() if crawler.stats else {}
    stats.setdefault("elapsed_time_seconds", round(time.monotonic() - started, 3))
    if STOPS.received:
        state.close_after_stop()  # the reactor may have stopped before spider_closed
        what = f": run {state.run_id} recorded as interrupted" if state.run_id else ": the crawl had not started"
        STOPS.check(f"{what} after {time.monotonic() - started:.1f} s; the next run fetches what this one missed")
    state.close()
    with Archive.open(db_path) as archive:
        run = archive.run(state.run_id) if state.run_id else None
        errors = archive.run_errors(state.run_id) if state.run_id else []
    if state.failure:
        raise ArchiveError(_archive_failure(state.failure, state.lost_writes, run))
    if run is None:
        raise CrawlError("the crawl did not start; run with --verbose to see why")
    return CrawlResult(run=run, stats=stats, errors=errors)


def _checked_settings(
    db_path: str, base_url: str, overrides: Mapping[str, Any] | None, log_level: str, progress: bool
) -> Settings:
    """The crawl's settings, once every input is checked: a bad --db, WARC folder or
    NPI_SELECTORS is one line here, before any request."""
    from npi_crawler.archive.db import check_sound
    from npi_crawler.archive.warc import check_warc_dir
    from npi_crawler.site.profile import profile_setting
    from npi_crawler.warc_recorder import warc_directory

    check_sound(db_path)
    with Archive.open(db_path) as archive:
        archive.check_writable()
    settings = build_settings(db_path=db_path, base_url=base_url, overrides=overrides, log_level=log_level)
    if settings.getbool("NPI_WARC"):
        check_warc_dir(warc_directory(settings))
    if progress:
        settings.set("NPI_PROGRESS", True, priority="cmdline")
    profile_setting(settings.get("NPI_SELECTORS"))
    return settings


def _crawl(settings: Settings, base_url: str, scope: dict[str, Any]) -> Crawler:
    """Run the spider (its arguments: ``scope``) to its end (or a stop); returns its crawler."""
    from scrapy.crawler import CrawlerProcess

    from npi_crawler.spiders.npi import NpiSpider

    process = CrawlerProcess(settings)
    # Scrapy leaves its loggers at NOTSET and filters at the handler: every item still built a
    # DEBUG "Scraped from" record (its repr included) only to drop it. The level set here keeps
    # the records from being made at all.
    logging.getLogger("scrapy").setLevel(settings.get("LOG_LEVEL"))
    crawler = process.create_crawler(NpiSpider)
    # From here a signal must not raise into Scrapy's or Twisted's code: it stops the reactor.
    with STOPS.crawl_mode(_stopper(process, settings.getfloat("NPI_STOP_GRACE"))):
        process.crawl(crawler, base_url=base_url, **scope)  # installs Scrapy's reactor
        if not STOPS.received:
            process.start(install_signal_handlers=False)
    return crawler


def _archive_failure(failure: str, lost: int, run: dict[str, Any] | None) -> str:
    """One line: why the archive refused a write, and what the archive now says of the run."""
    if run is None:
        outcome = "the crawl did not start and no run was recorded"
    elif run["status"] == "running":
        outcome = (
            f"run {run['id']} could not be finished and stays 'running' in the archive "
            f"({lost} write(s) lost); the next run walks every list page"
        )
    else:
        outcome = f"run {run['id']} is recorded as {run['status']} ({lost} write(s) lost); the next run fetches what it missed"
    return f"{failure}; {outcome}"
