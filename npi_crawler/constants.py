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
