"""``npi-crawler crawl`` and ``migrate``: fill the archive (or bring it to this version's schema)."""

from __future__ import annotations

import sys
from typing import Any

import click

from npi_crawler import settings as defaults
from npi_crawler.archive import Archive
from npi_crawler.cli.options import (
    base_url_option,
    db_option,
    filter_options,
    output_options,
    politeness_options,
    set_option,
    sweep_options,
    warc_options,
    warc_settings,
)
from npi_crawler.cli.runtime import (
    OneLineError,
    RunOutput,
    crawl_settings,
    locked,
    locked_crawl,
    one_line_errors,
)
from npi_crawler.constants import (
    EXIT_ATTENTION,
    REPEATABLE_ERRORS,
    WARC_ERROR_STAT,
    WARC_LOST_STAT,
    run_notes,
    run_warnings,
)

LAYOUT_BREAK = "layout_break"  # the diff outcome of a run that tripped the layout alarm, and how it is shown


@click.command()
@db_option
@base_url_option
@click.option(
    "--full",
    is_flag=True,
    help="Walk every list page and re-check known articles (conditional GET) for edits and removals.",
)
@filter_options
@politeness_options
@set_option
@click.option("--no-pdfs", is_flag=True, help="Do not download linked PDFs this run (sets NPI_PDFS=False).")
@warc_options
@sweep_options
@output_options
@one_line_errors
def crawl(
    db_path: str,
    base_url: str,
    full: bool,
    langs: tuple[str, ...],
    sections: tuple[str, ...],
    delay: float | None,
    concurrency: int | None,
    contact: str | None,
    overrides: tuple[str, ...],
    no_pdfs: bool,
    warc_dir: str | None,
    no_warc: bool,
    sweep_lists: float | None,
    sweep_articles: float | None,
    ignore_retry_after: bool,
    quiet: bool,
    verbose: bool,
    log_file: str | None,
) -> None:
    """Crawl the article lists and articles into the archive (after a cheap check: nothing changed,
    nothing crawled)."""
    extra = {**({"NPI_PDFS": False} if no_pdfs else {}), **warc_settings(warc_dir, no_warc)}
    # Checked first: a bad -s or [scrapy] value must not leave a log file or a lock behind.
    settings = crawl_settings(overrides, delay=delay, concurrency=concurrency, contact=contact, **extra)
    out = RunOutput(quiet, verbose, log_file)
    settings.update(out.scrapy_overrides())
    # Scrapy's own log (tracebacks included) only with --verbose or --log-file: the summary below
    # reports every error and warning of the run in a few lines.
    sweep = {"sweep_lists": sweep_lists, "sweep_articles": sweep_articles, "ignore_retry_after": ignore_retry_after}
    with locked_crawl(
        db_path, "crawl", out, base_url=base_url, full=full, langs=langs, sections=sections, overrides=settings, **sweep
    ) as result:
        pass
    layout = layout_break(result, db_path)
    summary = format_summary(result, db_path, status=LAYOUT_BREAK if layout else None, verbose=out.verbose)
    fail_if_nothing_crawled(result, base_url, "check --base-url and the network, then run again", out, summary)
    out.report(summary, needs_attention=bool(layout) or crawl_needs_attention(result))
    if layout:
        # Its fallbacks are notes, not warnings: without this a broken layout would crawl silently.
        out.attention(f"npi-crawler needs attention: the site's layout seems to have changed ({layout})")
    sys.exit(run_attention(result, out) or (EXIT_ATTENTION if layout else 0))


def layout_break(result: Any, db_path: str) -> str | None:
    """The layout alarm's reading of this crawl's pages (monitor.differ.layout_problem), or None."""
    from npi_crawler.monitor.differ import layout_problem

    with Archive.open(db_path, readonly=True) as archive:
        health = archive.parse_health(result.run["id"])
    return layout_problem(result.run, health, defaults.NPI_LAYOUT_MIN_PAGES)


def crawl_needs_attention(result: Any) -> bool:
    """Whether --quiet prints the crawl: not ok, errors, or warnings (never mere notes)."""
    run = result.run
    return run["status"] != "ok" or bool(run["errors"]) or bool(run_warnings(result.stats))


def fail_if_nothing_crawled(result: Any, base_url: str, advice: str, out: RunOutput, summary: str) -> None:
    """A crawl that reached nothing, or archived nothing it tried, is one line (its summary goes
    to the log file only)."""
    if result.run["status"] == "failed":
        out.to_log_file(summary)
        first = result.run.get("problem") or (result.errors[0]["message"] if result.errors else "no list page answered")
        raise OneLineError(f"could not crawl {base_url} ({first}); {advice}")


def run_attention(result: Any, out: RunOutput) -> int:
    """A run that finished but left something a person must see to (its WARC records lost to a
    full folder): one line on stderr, and the exit code that says so (3); else 0."""
    if not result.run.get("problem"):
        return 0
    out.attention(f"npi-crawler needs attention: run {result.run['id']} is {result.run['status']}: {result.run['problem']}")
    return EXIT_ATTENTION


def pdf_summary_line(stats: dict[str, Any]) -> str | None:
    """The crawl summary's PDF line, or None when the run requested no PDF."""
    if not stats.get("npi/pdf/requests"):
        return None
    warnings = sum(v for k, v in stats.items() if k.startswith(("npi/warnings/pdf/", "npi/notes/pdf/")))
    return (
        f"  pdfs       {stats['npi/pdf/requests']} requested: {stats.get('npi/pdf/ok', 0)} with text, "
        f"{stats.get('npi/pdf/not_modified', 0)} not modified (304), {warnings} unreadable"
    )


def warc_summary_line(stats: dict[str, Any]) -> str | None:
    """The crawl summary's WARC line, or None when the run wrote no record and lost none."""
    responses, revisits = stats.get("npi/warc/responses", 0), stats.get("npi/warc/revisits", 0)
    lost = stats.get(WARC_LOST_STAT, 0)
    if not responses + revisits + lost:
        return None
    size = stats.get("npi/warc/bytes", 0) / 1e6
    where = stats.get("npi/warc/directory", "")
    line = f"  warc       {responses} responses, {revisits} revisits (not modified), {size:.1f} MB in {where}"
    return line + (f"; {lost} pages without a WARC record ({stats.get(WARC_ERROR_STAT)})" if lost else "")


def request_breakdown(requests: int, stats: dict[str, Any], always: int = 2) -> str:
    """What the run's requests were, adding up to ``requests``: list pages and article pages
    always, then whatever else the run asked for. An article that answered 304 (a re-check) or
    404/410 is a request too; so is what the check before the crawl asked (npi_crawler/check.py),
    and robots.txt only when it was asked this run (the check keeps it a day)."""
    s = stats.get
    parts = [
        (s("npi/list/pages", 0), "list pages"),
        (s("npi/article/pages", 0), "article pages"),
        (s("npi/list/not_modified", 0) + s("npi/check/lists_not_modified", 0), "list pages not modified (304)"),
        (s("npi/check/lists_changed", 0), "list pages changed with nothing new"),
        (s("npi/list/gone", 0), "list pages gone (404/410)"),
        (s("npi/articles/not_modified", 0) + s("npi/check/articles_not_modified", 0), "articles not modified (304)"),
        (s("npi/articles/removed", 0), "articles gone (404/410)"),
        (s("npi/pdf/requests", 0), "PDFs"),
        (s("npi/expert/requests", 0), "expert pages"),
        (s("robotstxt/request_count", 0) - s("npi/plan/robots", 0) + s("npi/check/robots", 0), "robots.txt"),
    ]
    other = requests - sum(n for n, _ in parts)
    parts.append((other, "other (retries, redirects, failures)"))
    return ", ".join(f"{n} {what}" for i, (n, what) in enumerate(parts) if n > 0 or i < always)


def check_summary(result: Any) -> str:
    """The summary of a run that ended with the check before the crawl: one line (two when the
    site asked to wait)."""
    run, stats = result.run, result.stats
    seconds = stats.get("elapsed_time_seconds") or 0
    found = "the site asked to wait" if run.get("retry_after") else "nothing new"
    line = (
        f"run {run['id']} ({run['mode']}) of {run['base_url']}: {run['status']} in {seconds:.1f} s, {found}: "
        f"{run['requests']} requests ({request_breakdown(run['requests'], stats, always=0)}); no crawl started"
    )
    return "\n".join([line, *held_lines(run, result.errors)])


def held_lines(run: dict[str, Any], errors: list[dict[str, Any]]) -> list[str]:
    """The site's Retry-After this run met, if it did."""
    if not run.get("retry_after"):
        return []
    said = next((e for e in errors if e["kind"] == "site:retry_after"), None)
    what = f"{said['message']} ({said['url']})" if said else f"no request to the site before {run['retry_after']}"
    return [f"  held       {what}; runs before then send nothing (exit 75)"]


def check_line(result: Any) -> list[str]:
    """Why a run crawled after its check, in a line."""
    if not result.reasons:
        return []
    shown = "; ".join(result.reasons[:2]) + (f"; and {len(result.reasons) - 2} more" if len(result.reasons) > 2 else "")
    asked = result.stats.get("npi/check/requests")
    return [f"  check      {f'{asked} requests first, then ' if asked else ''}crawled: {shown}"]


def format_summary(result: Any, db_path: str, *, status: str | None = None, verbose: bool = False) -> str:
    """The run's summary; ``status`` says what its first line calls the run instead of its crawl
    status (``layout_break``: a run that tripped the layout alarm never says ``ok``). Notes are
    counted, and listed with ``verbose``."""
    if not getattr(result, "crawled", True):
        return check_summary(result)
    run, stats = result.run, result.stats
    seconds = stats.get("elapsed_time_seconds") or 0
    warnings, notes = run_warnings(stats), run_notes(stats)
    with Archive.open(db_path, readonly=True) as archive:
        total = archive.article_counts()[0]
        repeated = archive.repeated_errors(run["id"])
    lines = [
        f"run {run['id']} ({run['mode']}) of {run['base_url']}: {status or run['status']} in {seconds:.1f} s",
        f"  requests   {run['requests']} ({request_breakdown(run['requests'], stats)})",
        f"  articles   {run['articles_new']} new, {run['articles_updated']} updated, "
        f"{run['articles_unchanged']} unchanged, {run['articles_not_modified']} not modified (304), "
        f"{run['articles_removed']} removed",
        *filter(None, [pdf_summary_line(stats), warc_summary_line(stats)]),
        *check_line(result),
        *held_lines(run, result.errors),
        f"  archive    {total} articles in {db_path}",
        f"  warnings   {sum(warnings.values())}" + (f" ({_listed(warnings)})" if warnings else ""),
    ]
    # run_errors holds both: PDFs and expert pages that could not be read are warnings, the rest errors.
    pdf_warnings = [e for e in result.errors if e["kind"].startswith(("pdf:", "expert:"))]
    # Failures the run before met too are notes (pipelines: counted apart from runs.errors).
    errors = [
        e for e in result.errors
        if not e["kind"].startswith(("pdf:", "expert:"))
        and not (e["kind"].startswith(REPEATABLE_ERRORS) and (e["url"], e["kind"]) in repeated)
    ]  # fmt: skip
    lines += _error_lines(pdf_warnings)
    if notes:  # the site read the documented way: counted, never a reason to print (--quiet)
        listed = _listed(notes) if verbose else "not warnings: documented fallbacks, optional fields absent; --verbose lists them"
        lines.append(f"  notes      {sum(notes.values())} ({listed})")
    lines.append(f"  errors     {run['errors']}")
    lines += _error_lines(errors)
    return "\n".join(lines)


def _listed(counts: dict[str, int]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in counts.items())


def _error_lines(rows: list[dict[str, Any]], limit: int = 5) -> list[str]:
    lines = [f"    {row['kind']}: {row['url']} ({row['message']})" for row in rows[:limit]]
    if len(rows) > limit:
        lines.append(f"    ... {len(rows) - limit} more in the run_errors table")
    return lines


@click.command()
@db_option
@one_line_errors
def migrate(db_path: str) -> None:
    """Bring an archive made by an older npi-crawler to this version's schema (every row kept).

    crawl, watch and notify do it by themselves; read-only commands (export, search, status...)
    never write, so they ask for this first."""
    with locked(db_path, "migrate"), Archive.open(db_path, create=False, migrate=False) as archive:
        done = archive.migrate()
        applied = archive.applied_migrations()
    click.echo(f"{db_path}: {len(applied)} migration steps applied" + (f", {len(done)} now: {', '.join(done)}" if done else ", nothing to do"))
