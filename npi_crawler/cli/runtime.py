"""What every command shares at run time: the settings file in click's context, one-line errors,
--quiet/--verbose/--log-file output, the run lock, and the crawl under it.

Imports nothing heavy: Scrapy is imported by ``locked_crawl`` only, when a command crawls.
"""

from __future__ import annotations

import datetime as dt
import functools
import sqlite3
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from npi_crawler.cli.settings_file import FileSettings, load_settings, notify_urls, settings_path
from npi_crawler.constants import EXIT_LOCKED
from npi_crawler.errors import NpiError, RunLocked, SettingsError

META_KEY = "npi_crawler.settings"
META_ERROR = "npi_crawler.settings_error"


class OneLineError(click.ClickException):
    """``Error: <message>`` on stderr and the error's own exit code."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


def one_line_errors(func: Callable) -> Callable:
    """Library errors become ``Error: <message>`` with their exit code, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except NpiError as exc:
            raise OneLineError(str(exc), exc.exit_code) from None
        except sqlite3.Error as exc:
            # A damaged file, a full disk, a read-only file, a lock held too long: one line.
            from npi_crawler.archive.db import sqlite_error_message

            raise OneLineError(sqlite_error_message(exc, kwargs.get("db_path", "the archive"))) from None

    return wrapper


# -- the settings file ----------------------------------------------------------------------------


def apply_settings(ctx: click.Context, explicit: str | None) -> None:
    """Read the settings file into ``ctx`` before the command runs: its values become the flags'
    defaults. A bad file is one line and exit 2 (``doctor`` reports it as a failed check instead)."""
    group = ctx.command
    commands = dict(group.commands) if isinstance(group, click.Group) else {}
    try:
        settings = load_settings(settings_path(explicit), commands)
    except SettingsError as exc:
        if ctx.invoked_subcommand != "doctor":
            raise OneLineError(str(exc), exc.exit_code) from None
        ctx.meta[META_ERROR] = str(exc)
        settings = FileSettings()
    ctx.meta[META_KEY] = settings
    ctx.default_map = {**settings.defaults, **(ctx.default_map or {})}


def file_settings() -> FileSettings:
    ctx = click.get_current_context(silent=True)
    return ctx.meta.get(META_KEY, FileSettings()) if ctx else FileSettings()


def configured_notify_urls() -> list[str]:
    """``[notify] urls`` of the settings file, then ``NPI_NOTIFY_URLS`` from the environment."""
    return notify_urls(file_settings())


def parse_overrides(pairs: tuple[str, ...]) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"{pair!r} is not NAME=VALUE", param_hint="-s/--set")
        overrides[name.strip()] = value
    return overrides


def crawl_settings(
    overrides: tuple[str, ...],
    *,
    delay: float | None = None,
    concurrency: int | None = None,
    contact: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The Scrapy settings a command gives its crawl: the settings file's ``[scrapy]`` table and
    ``[selectors]`` (as ``NPI_SELECTORS``), then --delay/--concurrency/--contact and the command's
    own, then ``-s``: the last one wins. Values from the file and from ``-s`` are checked against
    their defaults' types (cli/scrapy_values.py)."""
    from npi_crawler.cli.scrapy_values import typed_setting

    file = file_settings()
    settings = {name: typed_setting(name, v, f"{file.path}: [scrapy] '{name}'") for name, v in file.scrapy.items()}
    if file.selectors:
        settings["NPI_SELECTORS"] = file.selectors
    if delay is not None:
        settings["DOWNLOAD_DELAY"] = delay
    if concurrency is not None:
        settings["CONCURRENT_REQUESTS_PER_DOMAIN"] = concurrency
    if contact is not None:
        settings["NPI_CONTACT"] = contact
    settings.update(extra)
    settings.update({name: typed_setting(name, v, f"-s {name}={v}") for name, v in parse_overrides(overrides).items()})
    return settings


# -- output: --quiet, --verbose, --log-file -------------------------------------------------------


class RunOutput:
    """What a crawl-like command prints, and where, from --quiet/--verbose/--log-file."""

    def __init__(self, quiet: bool = False, verbose: bool = False, log_file: str | None = None):
        if quiet and verbose:
            quiet, verbose = _flag_wins(quiet, verbose)
        self.quiet = quiet
        self.verbose = verbose
        self.log_file = log_file
        if log_file:
            try:
                with open(log_file, "a", encoding="utf-8"):
                    pass
            except OSError as exc:
                raise click.BadParameter(f"cannot write {log_file} ({exc.strerror})", param_hint="--log-file") from None

    @property
    def log_level(self) -> str:
        if self.log_file:
            return "DEBUG" if self.verbose else "INFO"
        return "INFO" if self.verbose else "CRITICAL"

    @property
    def progress(self) -> bool:
        """A progress line only for a person at a terminal."""
        return not self.quiet and not self.verbose and sys.stderr.isatty()

    def scrapy_overrides(self) -> dict[str, Any]:
        return {"LOG_FILE": self.log_file, "LOG_FILE_APPEND": True} if self.log_file else {}

    def to_log_file(self, text: str) -> None:
        if self.log_file:
            stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
            with open(self.log_file, "a", encoding="utf-8") as f:
                f.write(f"{stamp} [npi-crawler] {text}\n")

    def report(self, summary: str, *, needs_attention: bool) -> None:
        """The run's summary: always in the log file; on stdout unless --quiet and all is well."""
        self.to_log_file(summary)
        if not self.quiet or needs_attention:
            click.echo(summary)

    def attention(self, message: str) -> None:
        """What needs a person: stderr (cron mails it even with --quiet) and the log file."""
        self.to_log_file(message)
        click.echo(message, err=True)


def _flag_wins(quiet: bool, verbose: bool) -> tuple[bool, bool]:
    """One of --quiet/--verbose from the settings file, the other a flag: the flag wins."""
    ctx = click.get_current_context(silent=True)
    sources = {n: ctx.get_parameter_source(n) if ctx else None for n in ("quiet", "verbose")}
    from_file = click.core.ParameterSource.DEFAULT_MAP
    if sources["quiet"] == from_file and sources["verbose"] != from_file:
        return False, True
    if sources["verbose"] == from_file and sources["quiet"] != from_file:
        return True, False
    raise click.UsageError("--quiet and --verbose cannot be used together")


# -- the run lock ---------------------------------------------------------------------------------


@contextmanager
def locked(db_path: str, command: str, output: RunOutput | None = None) -> Iterator[None]:
    """Check the archive path, then hold the archive's run lock, or exit 75 at once with one line
    (with --quiet, only in the log file: a run skipped because the previous one is still going
    needs nobody)."""
    from npi_crawler.archive.db import preflight
    from npi_crawler.archive.runlock import run_lock

    preflight(db_path)  # before the lock: a refused path leaves no lock file behind
    try:
        with run_lock(db_path, command):
            yield
    except RunLocked as exc:
        message = f"{exc} (exit {EXIT_LOCKED})"
        if output is not None:
            output.to_log_file(message)
        if output is None or not output.quiet:
            click.echo(f"Error: {message}", err=True)
        sys.exit(EXIT_LOCKED)


@contextmanager
def locked_crawl(db_path: str, command: str, output: RunOutput, **crawl: Any) -> Iterator[Any]:
    """The run lock, a sound archive, then one crawl (``run_crawl``'s arguments in ``crawl``);
    yields its CrawlResult with the lock still held, so ``watch`` diffs and delivers under it."""
    from npi_crawler.runner import run_crawl

    with locked(db_path, command, output):
        yield run_crawl(db_path=db_path, log_level=output.log_level, progress=output.progress, **crawl)
