"""Every option shared by several commands, declared once, and the parameter types they use.

At the bottom of the CLI's import graph: it imports click and the project's constants only. A
value is checked once, by its click type, whether it comes from a flag or from the settings file
(cli/settings_file.py converts file values with the same types), so ``--delay -1`` and
``delay = -1`` are refused alike, before anything is opened or locked.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable
from typing import Any

import click

from npi_crawler import settings as defaults
from npi_crawler.constants import SETTING_RANGES
from npi_crawler.site import DEFAULT_BASE_URL, LANGS, SECTIONS

Decorator = Callable[[Callable], Callable]


class Seconds(click.ParamType):
    """A finite number of seconds, 0 or more and at most ``high`` (``inf``, ``nan`` or ``1e308``
    would hang a crawl, or hold its lock for ever)."""

    name = "seconds"

    def __init__(self, high: float = 3600) -> None:
        self.high = high

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, bool):
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        try:
            seconds = float(value)
        except (TypeError, ValueError, OverflowError):
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        if not math.isfinite(seconds) or seconds < 0:
            self.fail(f"{value!r} is not a number of seconds, 0 or more", param, ctx)
        if seconds > self.high:
            self.fail(f"{value!r} is more than {self.high:g} seconds", param, ctx)
        return seconds


class DatePrefix(click.ParamType):
    """``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD``, a real date: the filters of export, search, feed."""

    name = "date"
    _SHAPE = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value)
        m = self._SHAPE.fullmatch(text)
        try:
            if not m:
                raise ValueError
            dt.date(int(m[1]), int(m[2] or 1), int(m[3] or 1))
        except ValueError:
            self.fail(f"{text!r} is not a date like 2024, 2024-06 or 2024-06-30", param, ctx)
        return text


MAX_COUNT = 1_000_000_000  # any count a command takes (--limit, --runs...): SQLite's and C's ints hold it


class WholeNumber(click.IntRange):
    """click's IntRange, refusing true/false from the settings file (Python's bool is an int),
    and never unbounded: ``--limit 99999999999999999999`` was an OverflowError in SQLite."""

    def __init__(self, min: int | None = None, max: int | None = MAX_COUNT, **kwargs: Any) -> None:  # noqa: A002
        super().__init__(min=min, max=max, **kwargs)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, bool) or isinstance(value, float):
            self.fail(f"{value!r} is not a whole number", param, ctx)
        return super().convert(value, param, ctx)


class Text(click.ParamType):
    """Text typed by a person (a query, a name, a URL, the archive's path): it must be UTF-8.
    Bytes that are not arrive as lone surrogates (Python's ``surrogateescape``) and were a
    UnicodeEncodeError traceback in SQLite or at the output."""

    name = "text"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and any("\udc80" <= ch <= "\udcff" for ch in value):
            shown = value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            self.fail(
                f"'{shown}' is not UTF-8 text; check the terminal's encoding (a UTF-8 locale such as LANG=C.UTF-8)",
                param,
                ctx,
            )
        return value


class Moment(click.ParamType):
    """A DATE, or a UTC time on a day: ``2024-06-30T12:00`` or ``2024-06-30 12:00:05Z``. Returned
    as the prefix of an ISO 8601 time it stands for (``2024-06-30T12:00``), so that "at or before
    it" takes in the whole year, month, day or minute given."""

    name = "date"
    _TIME = re.compile(r"(\d{4}-\d{2}-\d{2})[T ](\d{2}):(\d{2})(?::(\d{2}))?Z?")

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value).strip()
        m = self._TIME.fullmatch(text)
        try:
            if not m:
                return DatePrefix().convert(text, param, ctx)
            dt.datetime.fromisoformat(f"{m[1]}T{m[2]}:{m[3]}:{m[4] or '00'}")
        except (click.BadParameter, ValueError):
            self.fail(f"{text!r} is not a date like 2024-06-30 or a UTC time like 2024-06-30T12:00", param, ctx)
        return f"{m[1]}T{m[2]}:{m[3]}" + (f":{m[4]}" if m[4] else "")


class PerRun(click.ParamType):
    """How many items a run re-checks, on average: a finite number from 0 to ``high``
    (fractions alternate between the whole numbers around them: 2.5 is 2, 3, 2, 3...)."""

    name = "number"

    def __init__(self, high: float) -> None:
        self.high = high

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, bool):
            self.fail(f"{value!r} is not a number", param, ctx)
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(number) or not 0 <= number <= self.high:
            self.fail(f"{value!r} is not a number from 0 to {self.high:g}", param, ctx)
        return number


TEXT = Text()
COUNT = WholeNumber(min=1)
SECONDS = Seconds()  # a timeout: up to an hour
DELAY = Seconds(high=SETTING_RANGES["DOWNLOAD_DELAY"][1])
DATE = DatePrefix()
MOMENT = Moment()


def http_url(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """click callback: a URL the crawler can fetch."""
    if value is not None and not value.startswith(("http://", "https://")):
        raise click.BadParameter(f"{value!r} must start with http:// or https://", ctx, param)
    return value


_EMAIL = re.compile(r"[^@\s;()<>]+@[^@\s;()<>]+\.[^@\s;()<>]+")
_URL = re.compile(r"https?://[^\s;()<>]+")


def contact_value(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """click callback: a URL or an e-mail address, fit to stand in a User-Agent header."""
    if value is None:
        return None
    contact = value.strip().removeprefix("mailto:")
    if not (_URL.fullmatch(contact) or _EMAIL.fullmatch(contact)):
        raise click.BadParameter(f"{value!r} is not a URL (https://...) or an e-mail address", ctx, param)
    return contact


def stack(*options: Decorator) -> Decorator:
    """Several options as one decorator, in the order given (as --help lists them)."""

    def apply(func: Callable) -> Callable:
        for option in reversed(options):
            func = option(func)
        return func

    return apply


db_option = click.option(
    "--db", "db_path", type=TEXT, default="npi.db", show_default=True, metavar="PATH", help="The SQLite archive file."
)
base_url_option = click.option(
    "--base-url",
    default=DEFAULT_BASE_URL,
    show_default=True,
    callback=http_url,
    help="Site to crawl; another host serving the same paths (a replica, a mirror).",
)
lang_option = click.option(
    "--lang", "langs", type=click.Choice(LANGS), multiple=True, help="Only this language (repeatable). Default: both."
)
section_option = click.option(
    "--section",
    "sections",
    type=click.Choice(SECTIONS),
    multiple=True,
    help="Only this section (repeatable). Default: all six.",
)
filter_options = stack(lang_option, section_option)


def _a_name(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """click callback: a name (or part of one) with something in it besides spaces."""
    if value is not None and not "".join(value.split()):
        raise click.BadParameter("is empty; give a name or part of one, e.g. --author Nakasone", ctx, param)
    return value


author_option = click.option(
    "--author",
    type=TEXT,
    metavar="NAME",
    callback=_a_name,
    help="Only articles by this author: a name or part of one, as the article or the expert's page "
    "gives it, Japanese or English (spaces and the case of Latin letters ignored).",
)
date_options = stack(
    click.option("--since", type=DATE, metavar="DATE", help="Only articles published on or after this date."),
    click.option("--until", type=DATE, metavar="DATE", help="Only articles published on or before this date."),
)
warc_dir_option = click.option(
    "--warc-dir",
    type=click.Path(file_okay=False),
    metavar="DIR",
    help="Folder of the WARC files (pages as served). Default: <archive name>-warc/ beside the archive.",
)
warc_options = stack(
    warc_dir_option,
    click.option("--no-warc", is_flag=True, help="Do not write WARC files this run (sets NPI_WARC=False)."),
)


def warc_settings(warc_dir: str | None, no_warc: bool) -> dict[str, Any]:
    """The Scrapy settings ``warc_options`` set (none when both are left alone)."""
    settings: dict[str, Any] = {"NPI_WARC": False} if no_warc else {}
    if warc_dir:
        settings["NPI_WARC_DIR"] = warc_dir
    return settings


set_option = click.option(
    "-s",
    "--set",
    "overrides",
    multiple=True,
    metavar="NAME=VALUE",
    help="Override any Scrapy or NPI_* setting of the crawl (repeatable).",
)
contact_option = click.option(
    "--contact",
    envvar="NPI_CONTACT",
    metavar="URL_OR_EMAIL",
    callback=contact_value,
    help="Your URL or e-mail address, shown in the User-Agent so the site can reach you "
    "(env NPI_CONTACT; sets NPI_CONTACT).",
)
_CONCURRENCY = tuple(int(n) for n in SETTING_RANGES["CONCURRENT_REQUESTS_PER_DOMAIN"])
politeness_options = stack(
    click.option(
        "--delay", type=DELAY, help=f"Seconds between requests, 0 to {DELAY.high:g} (sets DOWNLOAD_DELAY)."
    ),
    click.option(
        "--concurrency",
        type=WholeNumber(min=_CONCURRENCY[0], max=_CONCURRENCY[1]),
        help=f"Requests at once per host, {_CONCURRENCY[0]} to {_CONCURRENCY[1]} (sets CONCURRENT_REQUESTS_PER_DOMAIN).",
    ),
    contact_option,
)
sweep_options = stack(
    click.option(
        "--sweep-lists",
        type=PerRun(SETTING_RANGES["NPI_SWEEP_LISTS"][1]),
        envvar="NPI_SWEEP_LISTS",
        metavar="N",
        help="List pages beyond the first pages re-checked per run (conditional GET, least recently "
        f"checked first): a back-dated article is found within ceil(pages / N) runs. Default: "
        f"{defaults.NPI_SWEEP_LISTS:g} (env NPI_SWEEP_LISTS; a fraction alternates: 2.5 is 2, 3, 2...).",
    ),
    click.option(
        "--sweep-articles",
        type=PerRun(SETTING_RANGES["NPI_SWEEP_ARTICLES"][1]),
        envvar="NPI_SWEEP_ARTICLES",
        metavar="M",
        help="Known articles re-checked per run (conditional GET, least recently checked first): edits "
        f"and removals are found within ceil(articles / M) runs. Default: {defaults.NPI_SWEEP_ARTICLES:g} "
        "(env NPI_SWEEP_ARTICLES).",
    ),
    click.option(
        "--ignore-retry-after",
        is_flag=True,
        help="Run even though the site asked (429/503 with Retry-After) to be left alone until later.",
    ),
)
output_options = stack(
    click.option(
        "-v", "--verbose", is_flag=True, help="Show Scrapy's log (INFO) on stderr, or DEBUG in --log-file."
    ),
    click.option(
        "-q",
        "--quiet",
        is_flag=True,
        help="For cron: no progress line; print the summary only when the run needs a look "
        "(status not ok, warnings or errors, alerts no channel carries). Errors and 'needs attention' "
        "still go to stderr.",
    ),
    click.option(
        "--log-file",
        type=click.Path(dir_okay=False),
        metavar="PATH",
        help="Append Scrapy's log (INFO; DEBUG with --verbose) and the summary to this file.",
    ),
)
channel_options = stack(
    click.option(
        "--notify",
        "notify_urls",
        multiple=True,
        metavar="APPRISE_URL",
        help="Send alerts to this Apprise URL (repeatable). Also read: the settings file's "
        "[notify] urls and env NPI_NOTIFY_URLS (keeps secrets out of the process list).",
    ),
    click.option(
        "--config",
        "config",
        metavar="FILE",
        envvar="NPI_APPRISE_CONFIG",
        help="Apprise config file (YAML or TEXT) whose tags route alerts to channels.",
    ),
)
rules_option = click.option(
    "--rules",
    "rules_file",
    metavar="FILE",
    help="Watcher rules file (TOML [[rule]] tables: words and phrases in titles, bodies and PDFs, "
    "routed by Apprise tags), besides the settings file's [[rule]] tables. See docs/alerts.md#rules.",
)
max_attempts_option = click.option(
    "--max-attempts",
    type=WholeNumber(min=1),
    default=defaults.NPI_ALERT_MAX_ATTEMPTS,
    show_default=True,
    help="Failed deliveries after which a pending alert counts as stuck (it is still retried).",
)
monitor_options = stack(
    channel_options,
    rules_option,
    click.option(
        "--section",
        "sections",
        type=click.Choice(SECTIONS),
        multiple=True,
        help=f"Alert on new articles of this section (repeatable). Default: {', '.join(defaults.NPI_WATCH_SECTIONS)}.",
    ),
    click.option("--lang", "langs", type=click.Choice(LANGS), multiple=True, help="Only this language. Default: both."),
    click.option("--digest", is_flag=True, help="One message per run (per channel) listing every new item."),
    click.option("--changes", is_flag=True, help="Also alert when a watched article is edited."),
    click.option("--removals", is_flag=True, help="Also alert when a watched article's page answers 404/410."),
    click.option(
        "--send-latest",
        type=WholeNumber(min=0),
        default=0,
        metavar="K",
        help="On the first (baseline) run, send the latest K articles anyway, as a test.",
    ),
    click.option(
        "--flood-limit",
        type=WholeNumber(min=0),
        default=defaults.NPI_ALERT_FLOOD_LIMIT,
        show_default=True,
        help="More alerts than this from one run are sent as one summary message (0: no limit).",
    ),
    click.option(
        "--dry-run",
        is_flag=True,
        help="Print what would be sent; send nothing, mark nothing. watch still crawls and stores the "
        "crawl (only the diff is rolled back): the next watch alerts what it found.",
    ),
    click.option(
        "--admin-tag",
        default=defaults.NPI_ADMIN_TAG,
        show_default=True,
        help="Tag of the channels that get 'needs attention'.",
    ),
    max_attempts_option,
)
