"""Facts about the command line and the crawler's identity that every layer shares.

Nothing here imports Scrapy, Apprise, lxml or sqlite-utils: the CLI, the archive and the parser
all read these names, and ``npi-crawler --help`` must not pay for a crawler it does not start.
The facts about the site itself (sections, languages, hosts) are in ``npi_crawler.site``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Exit codes (docs/operations.md#exit-codes).
EXIT_OK = 0
EXIT_ERROR = 1  # an error the user can fix: one line on stderr says what
EXIT_USAGE = 2  # a bad flag, settings-file key or value (click's own code for usage errors)
EXIT_ATTENTION = 3  # the run finished but needs a person: layout alarm, stuck alerts, a failed last run
EXIT_LOCKED = 75  # sysexits.h EX_TEMPFAIL: another run holds the archive; try again later

# What the crawl's numeric settings may be (inclusive), checked with their types before anything is
# opened or locked (cli/scrapy_values.py for -s and [scrapy], cli/options.py for --delay and
# --concurrency). Outside these, a run never sends a request (no slot, no thread, a delay of
# 1e12 s), never gives up on one, or holds the run lock for days: issue 23.11, docs/configuration.md.
SETTING_RANGES: dict[str, tuple[float, float]] = {
    "DOWNLOAD_DELAY": (0, 600),  # seconds between two requests
    "DOWNLOAD_DELAY_JITTER": (0, 1),  # each delay is DOWNLOAD_DELAY +- this fraction
    "AUTOTHROTTLE_START_DELAY": (0, 600),
    "AUTOTHROTTLE_MAX_DELAY": (0, 600),
    "AUTOTHROTTLE_TARGET_CONCURRENCY": (0.1, 64),
    "CONCURRENT_REQUESTS": (1, 256),
    "CONCURRENT_REQUESTS_PER_DOMAIN": (1, 64),
    "CONCURRENT_REQUESTS_PER_IP": (0, 64),  # 0: per domain instead
    "CONCURRENT_ITEMS": (1, 10_000),
    "REACTOR_THREADPOOL_MAXSIZE": (1, 100),  # DNS lookups run in these threads
    "DOWNLOAD_TIMEOUT": (1, 3600),
    "DNS_TIMEOUT": (1, 600),
    "RETRY_TIMES": (0, 20),
    "NPI_RETRY_AFTER_CAP": (0, 86_400),  # the longest Retry-After a run is held for
    "NPI_SWEEP_LISTS": (0, 10_000),  # deeper list pages re-checked per run
    "NPI_SWEEP_ARTICLES": (0, 1_000_000),  # known articles re-checked per run
    "NPI_STOP_GRACE": (0, 600),  # seconds a stop waits for requests in flight
}
# Any other number: finite, 0 or more (but priorities), and at most this (an exact integer in a
# float, and what SQLite and the C code under Scrapy take without an OverflowError).
MAX_SETTING_NUMBER = 2**53

# A run's warnings are what a person must act on (docs/operations.md, "Warnings and notes"):
# articles dropped, PDFs and expert pages that could not be read (each also a run_errors row), and
# the parse notes site.notes.WARNINGS names. Every other parse note is a note: counted, not a warning.
PARSE_STAT = "npi/parse/"  # + a parse note: the pages noted with it (runstate.ParseHealth)
OTHER_WARNING_STATS = ("npi/items/dropped/", "npi/warnings/")
# A PDF or expert page failing the same way as its last fetch, and a failure of the run before
# met again (a listed article whose page the site lost, an unreadable link of a list page): a note;
# the first one warned or was an error. Only these kinds of run_errors: a list page that fails
# leaves the run partial whatever it did before.
REPEATED_FAILURE_STATS = ("npi/notes/",)
REPEATABLE_ERRORS = ("article:", "list:bad_link")
# Why WARC writing stopped in a run, and the pages answered after it (archived without a record):
# the recorder counts them, the run state and the summary read them.
WARC_ERROR_STAT = "npi/warc/error"
WARC_LOST_STAT = "npi/warc/lost"


def run_warnings(stats: Mapping[str, Any]) -> dict[str, int]:
    """A run's warnings from its stats: ``{stat without npi/: count}``, sorted by name."""
    from npi_crawler.site.notes import is_warning

    def warns(name: str) -> bool:
        return name.startswith(OTHER_WARNING_STATS) or (name.startswith(PARSE_STAT) and is_warning(name[len(PARSE_STAT) :]))

    return {k.removeprefix("npi/"): int(v) for k, v in sorted(stats.items()) if warns(k) and v}


def run_notes(stats: Mapping[str, Any]) -> dict[str, int]:
    """A run's notes from its stats: the parse notes that are no warning, and PDFs and expert
    pages failing as they did the last time, by stat without npi/."""
    from npi_crawler.site.notes import is_warning

    def noted(name: str) -> bool:
        return name.startswith(REPEATED_FAILURE_STATS) or (name.startswith(PARSE_STAT) and not is_warning(name[len(PARSE_STAT) :]))

    return {k.removeprefix("npi/"): int(v) for k, v in sorted(stats.items()) if noted(k) and v}


# Who runs the crawler, shown in its User-Agent so the site's operators can reach them: a URL or
# an e-mail address, set with `contact` in the settings file, --contact or NPI_CONTACT. The default
# is the project's page, a placeholder: `npi-crawler doctor` warns while it is in use.
DEFAULT_CONTACT = "https://github.com/npi-crawler/npi-crawler"


def user_agent(contact: str = DEFAULT_CONTACT, version: str | None = None) -> str:
    """The User-Agent of every request: the project, its version and the operator's contact."""
    if version is None:
        from npi_crawler import __version__ as version
    shown = f"+{contact}" if contact.startswith(("http://", "https://")) else contact
    return f"npi-crawler/{version} ({shown}; research archive)"


def crawl_user_agent(setting: str | None, contact: str | None) -> str:
    """The User-Agent a crawl sends: ``USER_AGENT`` as set by hand, else built from ``NPI_CONTACT``."""
    default = user_agent(DEFAULT_CONTACT)
    if setting and setting != default:
        return setting
    return user_agent(contact or DEFAULT_CONTACT)
