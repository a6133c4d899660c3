"""Operator-facing pieces of the CLI, shared by every command that runs a crawl (crawl, watch):
the settings file, --quiet/--verbose/--log-file, the run lock, and the ``doctor`` command.

``crawl`` uses them now; ``watch`` (and ``notify``) reuse them the same way:

    @output_options
    def watch(..., quiet, verbose, log_file):
        out = RunOutput(quiet, verbose, log_file)
        with locked(db_path, "watch", out):
            result = run_crawl(..., overrides={**scrapy_settings(), **out.scrapy_overrides(), ...},
                               log_level=out.log_level, progress=out.progress)
        out.report(summary_text, needs_attention=...)
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from npi_crawler.config import FileSettings, SettingsError, load_settings, notify_urls, settings_file
from npi_crawler.runlock import EXIT_LOCKED, LockUnavailable, RunLocked, run_lock

META_KEY = "npi_crawler.settings"
META_ERROR = "npi_crawler.settings_error"


# -- the settings file ----------------------------------------------------------------------------


def apply_settings(ctx: click.Context, explicit: str | None) -> None:
    """Read the settings file into ``ctx`` before the command runs: its values become the flags'
    defaults. A bad file is one line and exit 1 (``doctor`` reports it as a failed check instead)."""
    try:
        settings = load_settings(settings_file(explicit))
    except SettingsError as exc:
        if ctx.invoked_subcommand == "doctor":
            ctx.meta[META_ERROR] = str(exc)
            settings = FileSettings()
        else:
            raise click.ClickException(str(exc)) from None
    ctx.meta[META_KEY] = settings
    group = ctx.command
    names = list(group.commands) if isinstance(group, click.Group) else []
    ctx.default_map = {**settings.default_map(names), **(ctx.default_map or {})}


def file_settings() -> FileSettings:
    ctx = click.get_current_context(silent=True)
    return ctx.meta.get(META_KEY, FileSettings()) if ctx else FileSettings()


def scrapy_settings() -> dict[str, Any]:
    """The settings file's ``[scrapy]`` table (``-s`` and the flags are applied over it)."""
    return dict(file_settings().scrapy)


def configured_notify_urls() -> list[str]:
    """``[notify] urls`` of the settings file, then ``NPI_NOTIFY_URLS`` from the environment."""
    return notify_urls(file_settings())


# -- output: --quiet, --verbose, --log-file -------------------------------------------------------


def output_options(func: Callable) -> Callable:
    func = click.option(
        "--log-file",
        type=click.Path(dir_okay=False),
        metavar="PATH",
        help="Append Scrapy's log (INFO; DEBUG with --verbose) and the summary to this file.",
    )(func)
    func = click.option(
        "-q",
        "--quiet",
        is_flag=True,
        help="For cron: no progress line; print the summary only when the run needs a look "
        "(status not ok, warnings or errors). Errors still go to stderr.",
    )(func)
    func = click.option(
        "-v", "--verbose", is_flag=True, help="Show Scrapy's log (INFO) on stderr, or DEBUG in --log-file."
    )(func)
    return func


class RunOutput:
    """What a crawl-like command prints, and where, from --quiet/--verbose/--log-file."""

    def __init__(self, quiet: bool = False, verbose: bool = False, log_file: str | None = None):
        if quiet and verbose:
            # One of them from the settings file, the other a flag: the flag wins.
            ctx = click.get_current_context(silent=True)
            sources = {n: ctx.get_parameter_source(n) if ctx else None for n in ("quiet", "verbose")}
            from_file = click.core.ParameterSource.DEFAULT_MAP
            if sources["quiet"] == from_file and sources["verbose"] != from_file:
                quiet = False
            elif sources["verbose"] == from_file and sources["quiet"] != from_file:
                verbose = False
            else:
                raise click.UsageError("--quiet and --verbose cannot be used together")
        self.quiet = quiet
        self.verbose = verbose
        self.log_file = log_file
        if log_file:
            try:
                with open(log_file, "a", encoding="utf-8"):
                    pass
            except OSError as exc:
                raise click.BadParameter(
                    f"cannot write {log_file} ({exc.strerror})", param_hint="--log-file"
                ) from None

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
        if not self.log_file:
            return {}
        return {"LOG_FILE": self.log_file, "LOG_FILE_APPEND": True}

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


@contextmanager
def locked(db_path: str, command: str, output: RunOutput | None = None) -> Iterator[None]:
    """Hold the archive's run lock, or exit 75 at once with one line (with --quiet, only in the
    log file: a run skipped because the previous one is still going needs nobody)."""
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
    except LockUnavailable as exc:
        raise click.ClickException(str(exc)) from None


@contextmanager
def locked_crawl(db_path: str, command: str, output: RunOutput, **crawl: Any) -> Iterator[Any]:
    """The run lock, a sound archive, then one crawl (``run_crawl``'s arguments in ``crawl``);
    yields its CrawlResult with the lock still held, so ``watch`` diffs and delivers under it."""
    from npi_crawler.crawl import run_crawl

    with locked(db_path, command, output):
        ensure_sound(db_path)
        yield run_crawl(db_path=db_path, log_level=output.log_level, progress=output.progress, **crawl)


def check_base_url(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """click callback for ``--base-url``."""
    if not value.startswith(("http://", "https://")):
        raise click.BadParameter("must start with http:// or https://")
    return value


def ensure_sound(db_path: str) -> None:
    """Refuse to crawl into a damaged archive: ``PRAGMA quick_check`` (read-only; a fraction of a
    second for an archive of thousands of articles) before a run writes anything. A file that is
    not SQLite at all is left to ``Archive.open``'s own message."""
    import sqlite3
    from pathlib import Path

    from npi_crawler.storage import integrity_check

    path = Path(db_path)
    if not path.is_file() or path.stat().st_size == 0:
        return
    try:
        rows = integrity_check(path, quick=True)
    except sqlite3.DatabaseError as exc:
        if "not a database" in str(exc):
            return
        rows = [str(exc)]
    if rows != ["ok"]:
        from npi_crawler.doctor import one_line

        raise click.ClickException(
            f"{db_path} is damaged ({one_line(rows[0])}); run 'npi-crawler doctor --db {db_path}', then restore a backup"
        )


# -- doctor ---------------------------------------------------------------------------------------


@click.command()
@click.option("--db", "db_path", default="npi.db", show_default=True, metavar="PATH", help="The archive.")
@click.option("--base-url", default="https://npi.or.jp/", show_default=True, help="The site to check.")
@click.option(
    "--timeout", type=float, default=15.0, show_default=True, help="Seconds per request to the site."
)
@click.option("--no-notify", is_flag=True, help="Do not send the test notifications.")
def doctor(db_path: str, base_url: str, timeout: float, no_notify: bool) -> None:
    """Check the settings, the archive, the site and each notification channel; one line each.

    Exit 0 when every check passes, 1 otherwise.
    """
    from npi_crawler import __version__
    from npi_crawler.doctor import Check, check_archive, check_notifications, check_site
    from npi_crawler.settings import USER_AGENT

    ctx = click.get_current_context()
    checks: list[Check] = []
    error = ctx.find_root().meta.get(META_ERROR)
    settings = file_settings()
    if error:
        checks.append(Check("settings", False, error))
    elif settings.path:
        checks.append(Check("settings", True, f"{settings.path} is valid"))
    else:
        checks.append(Check("settings", True, "no settings file; defaults and flags only"))
    checks += check_archive(db_path)
    langs = settings.values.get("lang") or ("en",)
    sections = settings.values.get("section") or ("policy",)
    checks += check_site(base_url, user_agent=USER_AGENT, lang=langs[0], section=sections[0], timeout=timeout)
    if no_notify:
        checks.append(Check("notify", True, "skipped (--no-notify)"))
    else:
        checks += check_notifications(
            configured_notify_urls(),
            body=f"npi-crawler {__version__} doctor on {db_path}: this channel works.",
        )
    for check in checks:
        click.echo(check.line())
    failed = [c for c in checks if not c.ok]
    click.echo(f"{len(checks) - len(failed)} ok, {len(failed)} failed")
    if failed:
        sys.exit(1)
