"""The errors a user can cause or meet, one class per concern, all under ``NpiError``.

Each message is one line that says what went wrong and what to do; the CLI prints it as
``Error: <message>`` with exit code ``exit_code``, never a traceback. Library code raises these
and never prints.
"""

from __future__ import annotations

from npi_crawler.constants import EXIT_ERROR, EXIT_LOCKED, EXIT_USAGE


class NpiError(Exception):
    """Base of every error npi-crawler reports as one line."""

    exit_code = EXIT_ERROR


class ArchiveError(NpiError):
    """The archive cannot be used (missing, not an archive, damaged, unwritable)."""


class SearchError(ArchiveError):
    """A search query is not valid (empty, too long, an FTS5 expression FTS5 refuses): the
    user's input, so a usage error, never a fault of the archive."""

    exit_code = EXIT_USAGE


class CrawlError(NpiError):
    """The crawl could not run or reached nothing."""


class ChannelError(NpiError):
    """A notification channel (Apprise URL or config file) is unusable; secrets redacted."""


class SettingsError(NpiError):
    """The settings file (or a value in it) cannot be used; names the file and the key."""

    exit_code = EXIT_USAGE


class RunLocked(NpiError):
    """Another process holds the archive's run lock."""

    exit_code = EXIT_LOCKED


class LockUnavailable(NpiError):
    """The run lock file cannot be created or opened (missing folder, permissions, a symlink)."""


class SiteAskedToWait(NpiError):
    """The site asked (429/503 with Retry-After) for no request before a time not reached yet: the
    run sends nothing and exits 75, as when another run holds the archive (npi_crawler/check.py)."""

    exit_code = EXIT_LOCKED
