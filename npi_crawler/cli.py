"""The ``npi-crawler`` command: a thin click layer over the library.

Each command opens the archive, calls one library function and turns library errors into one
clear line on stderr with a non-zero exit.
"""

from __future__ import annotations

import csv
import functools
import json
import sqlite3
import sys
import warnings
from collections.abc import Callable
from typing import Any

import click
from scrapy.exceptions import ScrapyDeprecationWarning

from npi_crawler import __version__, ops_cli
from npi_crawler.crawl import DEFAULT_BASE_URL, CrawlError, CrawlResult
from npi_crawler.notifier import ChannelError
from npi_crawler.parsing import LANGS, SECTIONS
from npi_crawler.pdftext import summary_line as pdf_summary_line
from npi_crawler.storage import Archive, ArchiveError

EXPORT_FIELDS = (
    "url",
    "lang",
    "title",
    "published",
    "sections",
    "authors",
    "body",
    "pdfs",
    "first_seen",
    "last_seen",
)


def db_option(func: Callable) -> Callable:
    return click.option(
        "--db",
        "db_path",
        default="npi.db",
        show_default=True,
        metavar="PATH",
        help="The SQLite archive file.",
    )(func)


def base_url_option(func: Callable) -> Callable:
    return click.option(
        "--base-url",
        default=DEFAULT_BASE_URL,
        show_default=True,
        callback=ops_cli.check_base_url,
        help="Site to crawl; another host serving the same paths (a replica, a mirror).",
    )(func)


def filter_options(func: Callable) -> Callable:
    func = click.option(
        "--lang",
        "langs",
        type=click.Choice(LANGS),
        multiple=True,
        help="Only this language (repeatable). Default: both.",
    )(func)
    func = click.option(
        "--section",
        "sections",
        type=click.Choice(SECTIONS),
        multiple=True,
        help="Only this section (repeatable). Default: all six.",
    )(func)
    return func


def one_line_errors(func: Callable) -> Callable:
    """Library errors become ``Error: <message>`` and exit 1, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (ArchiveError, CrawlError, ChannelError) as exc:
            raise click.ClickException(str(exc)) from None
        except sqlite3.DatabaseError as exc:
            # A damaged file (disk fault, a copy taken mid-write): one line, and what to do.
            db = kwargs.get("db_path", "the archive")
            raise click.ClickException(
                f"{db} is damaged ({exc}); run 'npi-crawler doctor --db {db}', then restore a backup"
            ) from None

    return wrapper


def parse_overrides(pairs: tuple[str, ...]) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"{pair!r} is not NAME=VALUE", param_hint="-s/--set")
        overrides[name.strip()] = value
    return overrides


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="npi-crawler")
@click.option(
    "--settings",
    "settings_path",
    envvar="NPI_CRAWLER_SETTINGS",
    metavar="FILE",
    help="TOML settings file (default: ./npi-crawler.toml when present); flags win over it.",
)
@click.pass_context
def cli(ctx: click.Context, settings_path: str | None) -> None:
    """Archive and watch the Nakasone Peace Institute's publications (npi.or.jp)."""
    ops_cli.apply_settings(ctx, settings_path)


@cli.command()
@db_option
@base_url_option
@click.option(
    "--full",
    is_flag=True,
    help="Walk every list page and re-check known articles (conditional GET) for edits and removals.",
)
@filter_options
@click.option("--delay", type=float, help="Seconds between requests (sets DOWNLOAD_DELAY).")
@click.option(
    "--concurrency", type=int, help="Requests at once per host (sets CONCURRENT_REQUESTS_PER_DOMAIN)."
)
@click.option(
    "-s",
    "--set",
    "overrides",
    multiple=True,
    metavar="NAME=VALUE",
    help="Override any Scrapy or NPI_* setting (repeatable).",
)
@click.option("--no-pdfs", is_flag=True, help="Do not download linked PDFs this run (sets NPI_PDFS=False).")
@ops_cli.output_options
@one_line_errors
def crawl(
    db_path: str,
    base_url: str,
    full: bool,
    langs: tuple[str, ...],
    sections: tuple[str, ...],
    delay: float | None,
    concurrency: int | None,
    overrides: tuple[str, ...],
    no_pdfs: bool,
    quiet: bool,
    verbose: bool,
    log_file: str | None,
) -> None:
    """Crawl the article lists and articles into the archive."""
    out = ops_cli.RunOutput(quiet, verbose, log_file)
    # The settings file's [scrapy] table, then --delay/--concurrency, then -s: the last one wins.
    settings = ops_cli.scrapy_settings()
    if no_pdfs:
        settings["NPI_PDFS"] = False
    if delay is not None:
        settings["DOWNLOAD_DELAY"] = delay
    if concurrency is not None:
        settings["CONCURRENT_REQUESTS_PER_DOMAIN"] = concurrency
    settings.update(parse_overrides(overrides))
    settings.update(out.scrapy_overrides())
    # Scrapy's own log (tracebacks included) only with --verbose or --log-file: the summary below
    # reports every error and warning of the run in a few lines.
    with ops_cli.locked_crawl(
        db_path,
        "crawl",
        out,
        base_url=base_url,
        full=full,
        langs=langs,
        sections=sections,
        overrides=settings,
    ) as result:
        pass
    run = result.run
    out.report(
        format_summary(result, db_path),
        needs_attention=run["status"] != "ok" or bool(run["errors"]) or bool(run["warnings"]),
    )
    if run["status"] == "failed":
        first = result.errors[0]["message"] if result.errors else "no list page answered"
        raise click.ClickException(
            f"could not crawl {base_url} ({first}); check --base-url and the network, then run again"
        )


def format_summary(result: CrawlResult, db_path: str) -> str:
    run, stats = result.run, result.stats
    seconds = stats.get("elapsed_time_seconds") or 0
    warnings = {
        k.removeprefix("npi/"): v
        for k, v in sorted(stats.items())
        if k.startswith(("npi/parse/", "npi/items/dropped/", "npi/warnings/"))
    }
    archive = Archive.open(db_path)
    try:
        total = archive.db.execute("SELECT count(*) FROM articles WHERE removed_at IS NULL").fetchone()[0]
    finally:
        archive.close()
    lines = [
        f"run {run['id']} ({run['mode']}) of {run['base_url']}: {run['status']} in {seconds:.1f} s",
        f"  requests   {run['requests']} ({run['list_pages']} list pages, "
        f"{stats.get('npi/article/pages', 0)} article pages)",
        f"  articles   {run['articles_new']} new, {run['articles_updated']} updated, "
        f"{run['articles_unchanged']} unchanged, {run['articles_not_modified']} not modified (304), "
        f"{run['articles_removed']} removed",
        *filter(None, [pdf_summary_line(stats)]),
        f"  archive    {total} articles in {db_path}",
        f"  warnings   {run['warnings']}"
        + (f" ({', '.join(f'{k}: {v}' for k, v in warnings.items())})" if warnings else ""),
    ]
    # run_errors holds both: PDFs that could not be read are warnings, the rest errors.
    pdf_warnings = [e for e in result.errors if e["kind"].startswith("pdf:")]
    errors = [e for e in result.errors if not e["kind"].startswith("pdf:")]
    lines += _error_lines(pdf_warnings)
    lines.append(f"  errors     {run['errors']}")
    lines += _error_lines(errors)
    return "\n".join(lines)


def _error_lines(rows: list[dict[str, Any]], limit: int = 5) -> list[str]:
    lines = [f"    {row['kind']}: {row['url']} ({row['message']})" for row in rows[:limit]]
    if len(rows) > limit:
        lines.append(f"    ... {len(rows) - limit} more in the run_errors table")
    return lines


@cli.command()
@db_option
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True),
    default="-",
    help="File to write (default: standard output).",
)
@filter_options
@click.option("--since", metavar="YYYY-MM-DD", help="Only articles published on or after this date.")
@click.option("--until", metavar="YYYY-MM-DD", help="Only articles published on or before this date.")
@one_line_errors
def export(
    db_path: str,
    fmt: str,
    output: str,
    langs: tuple[str, ...],
    sections: tuple[str, ...],
    since: str | None,
    until: str | None,
) -> None:
    """Write every article, newest first: JSON Lines or CSV (list fields as JSON arrays)."""
    archive = Archive.open(db_path, create=False)
    try:
        rows = archive.iter_articles(langs=langs, sections=sections, since=since, until=until)
        with click.open_file(output, "w", encoding="utf-8", lazy=False) as out:
            if fmt == "jsonl":
                for row in rows:
                    out.write(json.dumps(row, ensure_ascii=False) + "\n")
            else:
                writer = csv.DictWriter(out, fieldnames=EXPORT_FIELDS, lineterminator="\n")
                writer.writeheader()
                for row in rows:
                    writer.writerow(
                        {
                            k: json.dumps(v, ensure_ascii=False) if isinstance(v, list) else v
                            for k, v in row.items()
                        }
                    )
    finally:
        archive.close()


cli.add_command(ops_cli.doctor)

# The change monitor's commands live in their own module (docs/alerts.md).
from npi_crawler.watch_cli import notify, status, watch  # noqa: E402

for _command in (watch, notify, status):
    cli.add_command(_command)

from npi_crawler.research_cli import COMMANDS as _RESEARCH  # noqa: E402 - issue 5's commands

for _command in _RESEARCH:
    cli.add_command(_command)


def main() -> None:
    if not sys.warnoptions:
        # Library deprecations are for developers; a user's terminal gets the summary only.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", ScrapyDeprecationWarning)
    try:
        cli(prog_name="npi-crawler")
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
