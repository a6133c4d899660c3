"""Facts about the command line and the crawler's identity that every layer shares.

Nothing here imports Scrapy, Apprise, lxml or sqlite-utils: the CLI, the archive and the parser
all read these names, and ``npi-crawler --help`` must not pay for a crawler it does not start.
The facts about the site itself (sections, languages, hosts) are in ``npi_crawler.site``.
"""

from __future__ import annotations

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

# Stats whose sum is a run's warnings: parser fallbacks and misses, dropped items, PDF warnings.
WARNING_PREFIXES = ("npi/parse/", "npi/items/dropped/", "npi/warnings/")

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
