"""What every command shares at run time: the settings file in click's context, one-line errors,
--quiet/--verbose/--log-file output, the run lock, and the crawl under it.

Imports nothing heavy: Scrapy is imported by ``locked_crawl`` only, when a command crawls.
"""

from __future__ import annotations

import codecs
import datetime as dt
import errno
import functools
import io
import os
import sqlite3
import stat
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from npi_crawler.cli.settings_file import FileSettings, load_settings, notify_urls, settings_path
from npi_crawler.constants import EXIT_LOCKED
from npi_crawler.errors import NpiError, RunLocked, SettingsError, SiteAskedToWait

META_KEY = "npi_crawler.settings"
META_ERROR = "npi_crawler.settings_error"


class OneLineError(click.ClickException):
    """``Error: <message>`` on stderr and the error's own exit code."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        # click declares exit_code a class attribute; the instance's value is what click reads.
        self.exit_code = exit_code  # type: ignore[misc]


def one_line_errors(func: Callable) -> Callable:
    """Library errors become ``Error: <message>`` with their exit code, never a traceback; so do
    the operating system's (a folder this user cannot enter, a full disk, the output closed), a
    number too large for SQLite, and text that is not UTF-8 where it must be."""

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
        except OSError as exc:
            if exc.errno == errno.EPIPE:  # the reader went away (`| head`): nothing more to say
                quiet_output()
                raise SystemExit(0) from None
            # No file named: a write to the standard output (files are written through output_file).
            raise OneLineError(os_error_message(exc, _stdout_name() if exc.filename is None else None)) from None
        except OverflowError as exc:
            raise OneLineError(f"a number is too large ({exc}); give a smaller one", 2) from None
        except UnicodeEncodeError as exc:
            if "surrogates" not in str(exc):
                raise
            raise OneLineError(
                "an argument or a file name is not UTF-8 text; check the terminal's encoding (a UTF-8 locale such "
                "as LANG=C.UTF-8)",
                2,
            ) from None

    return wrapper


def os_error_message(exc: OSError, what: str | None = None) -> str:
    """One line for an error of the operating system, naming the file (``what`` when the error
    does not: "the standard output") and what to do."""
    name = what or (os.fsdecode(exc.filename) if exc.filename is not None else "the output")
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        if not os.path.isabs(name) and not os.path.exists(name):  # "the output": no file to name
            return f"{name} cannot be written: its disk is full ({reason}); free some space, then run again"
        from npi_crawler.archive.db import disk_full_message

        return disk_full_message(name, reason)
    if exc.errno in (errno.EACCES, errno.EPERM) and exc.filename is not None:
        return _permission_message(name, reason)
    return f"{name}: {reason}"


def _permission_message(path: str, reason: str) -> str:
    """Which folder on the way to ``path`` this user may not enter (the shipped systemd unit
    makes the archive's folder 0700, its service user's own), else the file itself."""
    folder = os.path.dirname(os.path.abspath(path))
    blocked = None
    while True:
        if not os.access(folder, os.X_OK):
            blocked = folder  # keep the outermost one: the first a user meets
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    if blocked is None:
        return f"{path} cannot be read or written by this user ({reason}); check its permissions, or run as its owner"
    try:
        info = os.stat(blocked)
        owner = f" (owner uid {info.st_uid}, mode {stat.S_IMODE(info.st_mode):04o})"
    except OSError:
        owner = ""
    return (
        f"{path} cannot be reached ({reason}): this user (uid {os.getuid()}) may not enter the folder {blocked}{owner}; "
        "run as the user who owns it (e.g. sudo -u npi npi-crawler ..., as the shipped systemd units run)"
    )


def quiet_output() -> None:
    """Send what is still buffered for the standard output nowhere: its reader is gone or its disk
    is full, and the interpreter's last flush must not print a traceback about it."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no real descriptor (a test's captured stream)
        pass


@contextmanager
def output_file(path: str, mode: str = "w") -> Iterator[Any]:
    """``path`` opened for writing (``-`` the standard output), a failure to open or write it one
    line naming it: ``export -o /dev/full`` was a traceback."""
    shown = _stdout_name() if path == "-" else path
    try:
        with click.open_file(path, mode, encoding=None if "b" in mode else "utf-8", lazy=False) as out:
            yield out
    except OSError as exc:
        if exc.errno == errno.EPIPE:
            raise
        raise OneLineError(os_error_message(exc, shown)) from None


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


# -- the standard streams ---------------------------------------------------------------------------

ESCAPES = "npi-crawler-escape"
_escaped: list[str] = []  # the encodings that could not hold a character this run wrote


def _escape(exc: UnicodeError) -> tuple[str | bytes, int]:
    """Encoding error handler of stdout and stderr: a byte that was not UTF-8 in an argument or a
    file name (a lone surrogate, ``surrogateescape``) goes out as that byte; a character the
    stream's encoding cannot hold as a ``\\uXXXX`` escape, remembered for one warning line."""
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    text = exc.object[exc.start : exc.end]
    if all("\udc80" <= ch <= "\udcff" for ch in text):
        return bytes(ord(ch) - 0xDC00 for ch in text), exc.end
    _escaped.append(exc.encoding)
    return codecs.backslashreplace_errors(exc)


def tolerant_output() -> None:
    """Make stdout and stderr able to write anything: ``LC_ALL=C`` (or ``PYTHONIOENCODING=ascii``)
    gets UTF-8, as click's own ``echo`` already wrote (ASCII is a misconfigured locale, not a
    choice); another encoding that cannot hold a character (``latin-1`` and 半導体) gets an escape
    and one warning line at the end (``finish_output``), never a UnicodeEncodeError traceback."""
    codecs.register_error(ESCAPES, _escape)
    for stream in (sys.stdout, sys.stderr):
        if not isinstance(stream, io.TextIOWrapper):
            continue
        try:
            ascii_only = codecs.lookup(stream.encoding).name == "ascii"
            stream.reconfigure(encoding="utf-8" if ascii_only else stream.encoding, errors=ESCAPES)
        except (LookupError, ValueError, OSError):
            pass


def _stdout_name() -> str:
    """The file the standard output was redirected to (``>/dev/full``), else what it is."""
    try:
        target = os.readlink(f"/proc/self/fd/{sys.stdout.fileno()}")
    except (OSError, ValueError, AttributeError):
        return "the standard output"
    return target if target.startswith("/") else "the standard output"


def finish_output(code: Any) -> Any:
    """The exit code, once what is still buffered for stdout is written: a full disk or a closed
    output is one line (exit 1, unless the command already failed), and characters the output's
    encoding could not hold are one warning line."""
    try:
        sys.stdout.flush()
    except OSError as exc:
        quiet_output()
        if exc.errno != errno.EPIPE and code in (0, None):
            click.echo(f"Error: {os_error_message(exc, _stdout_name())}", err=True)
            code = 1
    if _escaped:
        click.echo(
            f"warning: the output's encoding ({_escaped[0]}) cannot hold some characters; they were written as "
            "\\uXXXX escapes (set PYTHONIOENCODING=utf-8, or a UTF-8 locale such as LANG=C.UTF-8)",
            err=True,
        )
    return code


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
            # Its first line, written now: a file that takes no byte (a full disk, /dev/full) is one
            # line before the run starts, not a traceback per log record during it.
            ctx = click.get_current_context(silent=True)
            self.to_log_file(f"{ctx.info_name if ctx else 'run'} started (pid {os.getpid()})")

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
            try:
                with open(self.log_file, "a", encoding="utf-8") as f:
                    f.write(f"{stamp} [npi-crawler] {text}\n")
            except OSError as exc:
                raise OneLineError(f"--log-file: {os_error_message(exc, self.log_file)}") from None

    def report(self, summary: str, *, needs_attention: bool) -> None:
        """The run's summary: on stdout unless --quiet and all is well; always in the log file
        (after stdout: a log file that fails now loses no summary a person would have seen)."""
        if not self.quiet or needs_attention:
            click.echo(summary)
        self.to_log_file(summary)

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
def locked(db_path: str, command: str, output: RunOutput | None = None, *, quick_check: bool = True) -> Iterator[None]:
    """Check the archive path, then hold the archive's run lock, or exit 75 at once with one line
    (with --quiet, only in the log file: a run skipped because the previous one is still going
    needs nobody). The same for a run the site's Retry-After holds (check.run_checked)."""
    from npi_crawler.archive.db import preflight
    from npi_crawler.archive.runlock import run_lock

    preflight(db_path, quick_check=quick_check)  # before the lock: a refused path leaves no lock file behind
    try:
        with run_lock(db_path, command):
            yield
    except (RunLocked, SiteAskedToWait) as exc:
        message = str(exc) if isinstance(exc, SiteAskedToWait) else f"{exc} (exit {EXIT_LOCKED})"
        if output is not None:
            output.to_log_file(message)
        if output is None or not output.quiet:
            click.echo(f"Error: {message}", err=True)
        sys.exit(EXIT_LOCKED)


@contextmanager
def locked_crawl(db_path: str, command: str, output: RunOutput, **crawl: Any) -> Iterator[Any]:
    """The run lock, a sound archive, then one run: the check, and the crawl when it is needed
    (``check.run_checked``'s arguments in ``crawl``); yields its CrawlResult with the lock still
    held, so ``watch`` diffs and delivers under it."""
    from npi_crawler.archive import Archive
    from npi_crawler.check import run_checked

    # The archive stays open for the whole run (its connections then share SQLite's shared-memory
    # file: a check that ends the run writes little more than its row). Checked sound before a
    # crawl, not before a check that may end the run (runner.run_crawl).
    with locked(db_path, command, output, quick_check=False), Archive.open(db_path) as archive:
        yield run_checked(archive, db_path=db_path, log_level=output.log_level, progress=output.progress, **crawl)
