"""The researcher's commands: ``export``, ``search``, ``cite``, ``feed``, ``history`` and ``serve``.

All read-only: the archive is opened with ``readonly=True``, so they never create, migrate or
write a file (an archive from an older version asks for ``npi-crawler migrate`` first).
"""

from __future__ import annotations

import csv
import json
import sys
from typing import Any, TextIO

import click

from npi_crawler.archive import Archive
from npi_crawler.archive.articles import VERSION_FIELDS
from npi_crawler.cli.options import (
    COUNT,
    TEXT,
    author_option,
    date_options,
    db_option,
    filter_options,
    rules_option,
)
from npi_crawler.cli.rules import configured_rules, find_rule
from npi_crawler.cli.runtime import one_line_errors, output_file
from npi_crawler.cli.textwidth import fit, fit_around, output_columns, whole_lines
from npi_crawler.site import LANGS, SECTIONS

EXPORT_FIELDS = ("url", "lang", "title", "published", "sections", "authors", "body", "pdfs", "first_seen", "last_seen")
SEARCH_FIELDS = ("rank", "published", "lang", "sections", "title", "url", "match", "pdf_url", "score", "total", "total_exact", "snippet")
CITATION_FORMATS = ("csl-json", "bibtex", "ris")  # research/citations.py writes them
# OWASP's CSV injection rule: a cell a spreadsheet would read as a formula (or whose leading tab
# or carriage return hides one) starts with a quote instead, which spreadsheets show as text.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: Any) -> Any:
    """The spreadsheet gate: a text cell starting like a formula gets a leading ``'``."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_START) else value


def _csv_row(row: dict[str, Any]) -> dict[str, Any]:
    """List fields (sections, authors, pdfs) as JSON arrays, in every CSV the commands write: a
    name or URL may itself hold a comma, and ``json.loads`` reads the cell back exactly. Every
    cell passes the spreadsheet gate."""
    return {
        k: spreadsheet_safe(json.dumps(v, ensure_ascii=False) if isinstance(v, list) else v) for k, v in row.items()
    }


def write_rows(rows: Any, out: TextIO, fmt: str, fields: tuple[str, ...]) -> None:
    """Rows as JSON Lines or CSV (exactly ``fields``, in that order). Every CSV the commands write
    is written here, through the spreadsheet gate."""
    if fmt == "jsonl":
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
        return
    writer = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(_csv_row(row))


@click.command()
@db_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "csv", *CITATION_FORMATS]),
    default="jsonl",
    show_default=True,
    help="jsonl or csv: the archive's fields; csl-json, bibtex or ris: citations (Zotero, LaTeX, EndNote).",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True),
    default="-",
    help="File to write (default: standard output).",
)
@filter_options
@date_options
@author_option
@click.option(
    "--include-removed",
    is_flag=True,
    help="Also the articles removed from the site (404/410), and a removed_at field (empty while live).",
)
@click.option(
    "--revisions",
    is_flag=True,
    help="One row per stored version (every edit, the current version last) instead of per article.",
)
@one_line_errors
def export(db_path: str, fmt: str, output: str, include_removed: bool, revisions: bool, **filters: Any) -> None:
    """Write every article on the site (--include-removed: and the removed ones), newest first:
    JSON Lines or CSV (list fields as JSON arrays), or citations: CSL-JSON, BibTeX or RIS.

    With --revisions, every stored version of each article instead: version number, its title,
    date, authors, body and PDFs, when and by which run it was stored and replaced. The filters
    (--lang, --section, --since, --until, --author) select articles as they are now."""
    if fmt in CITATION_FORMATS:
        if revisions:
            raise click.UsageError(
                f"--format {fmt} cites articles as they are now; --revisions needs --format jsonl or csv"
            )
        _export_citations(db_path, fmt, output, include_removed=include_removed, **filters)
        return
    whole_lines()
    fields = VERSION_FIELDS if revisions else EXPORT_FIELDS
    if include_removed:
        fields = (*fields, "removed_at")
    with Archive.open(db_path, readonly=True) as archive:
        read = archive.iter_versions if revisions else archive.iter_articles
        rows = read(include_removed=include_removed, **filters)
        with output_file(output) as out:
            write_rows(rows, out, fmt, fields)


def _export_citations(db_path: str, fmt: str, output: str, **filters: Any) -> None:
    from npi_crawler.research.citations import export_citations

    whole_lines()
    with Archive.open(db_path, readonly=True) as archive:
        with output_file(output) as out:
            export_citations(archive, fmt, out, **filters)


@click.command()
@click.argument("url", type=TEXT)
@db_option
@click.option("--format", "fmt", type=click.Choice(CITATION_FORMATS), default="bibtex", show_default=True)
@one_line_errors
def cite(url: str, db_path: str, fmt: str) -> None:
    """The citation of one archived article (removed from the site or not), with its authors and
    their positions: BibTeX for LaTeX, CSL-JSON or RIS for Zotero, Mendeley, EndNote."""
    from npi_crawler.research.citations import cite as citation

    whole_lines()
    with Archive.open(db_path, readonly=True) as archive:
        click.echo(citation(archive, url, fmt), nl=False)


def _print_hits(rows: list[dict[str, Any]], query: str, columns: int | None) -> None:
    """Four lines a hit (five for a PDF hit), each fitted to ``columns`` except the URLs: a cut URL
    is useless, and a terminal wraps a long one."""
    if not rows:
        click.echo(f"no article matches {query!r}", err=True)

    def line(text: str, indent: str = "     ") -> str:
        return indent + (fit(text, columns - len(indent)) if columns else text)

    for row in rows:
        where = "  (in a linked PDF)" if row["match"] == "pdf" else ""
        date = row["published"] or "(no date)"
        click.echo(line(f"{row['rank']:>3}. {date}  {row['lang']}  {', '.join(row['sections'])}{where}", ""))
        click.echo(click.style(line(row["title"]), bold=True))
        click.echo(f"     {row['url']}")
        if row["match"] == "pdf":
            click.echo(f"     in PDF {row['pdf_url']}")
        snippet = row["snippet"]
        if columns:
            snippet = fit_around(snippet, columns - 5, max(snippet.find("["), 0))
        click.echo(f"     {snippet}")


def total_line(shown: int, total: int, exact: bool = True) -> str | None:
    """What a cut list says: how many matched in all and how to see them (None: not cut).
    Not ``exact``: more than ``total`` match (search stops counting there)."""
    if exact and shown >= total:
        return None
    if not exact:
        return f"{shown} of more than {total:,} articles shown, best first; a higher --limit shows and counts more"
    return f"{shown} of {total:,} articles shown, best first; --limit {total} shows them all"


@click.command()
@click.argument("query", type=TEXT)
@db_option
@filter_options
@date_options
@author_option
@click.option("--limit", type=COUNT, default=20, show_default=True, help="At most N results.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv", "urls"]),
    default="table",
    show_default=True,
    help="urls: one article URL a line (for cite, history, snapshot, xargs).",
)
@click.option("--fts", "raw", is_flag=True, help="QUERY is an FTS5 expression (OR, NOT, NEAR, prefix*).")
@one_line_errors
def search(db_path, query, langs, sections, since, until, author, limit, fmt, raw):
    """Full-text search of titles, bodies and linked PDFs, best match first.

    Every word must match (a "quoted phrase" matches as a whole). English words are matched as
    words, stemmed (sanction finds sanctions); Japanese as substrings, two characters (憲法) too;
    full-width letters and line breaks inside Japanese words are folded as watcher rules fold
    them; --fts expressions as substrings in any language. When more articles match than --limit,
    the table says how many (on stderr; "more than 1,000" past 1,000 or --limit); JSON and CSV give
    each hit's score, the total and total_exact (false: more than total match). The
    table fits the terminal (or COLUMNS); URLs, JSON and CSV are never cut.
    """
    from npi_crawler.research.search import search as run_search

    with Archive.open(db_path, readonly=True) as archive:
        hits = run_search(
            archive,
            query,
            langs=langs,
            sections=sections,
            since=since,
            until=until,
            author=author,
            limit=limit,
            raw=raw,
        )
    counted = {"total": hits.total, "total_exact": hits.exact}
    rows = [{"rank": i, **h.as_dict(), **counted} for i, h in enumerate(hits, 1)]
    if fmt == "table":
        _print_hits(rows, query, output_columns())
    else:
        whole_lines()
        if fmt == "json":
            click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        elif fmt == "urls":
            for row in rows:
                click.echo(row["url"])
        else:
            write_rows(rows, sys.stdout, fmt, SEARCH_FIELDS)
    if fmt == "table" and (cut := total_line(len(rows), hits.total, hits.exact)):
        click.echo(cut, err=True)  # JSON and CSV say it in their total field


@click.command()
@click.option("--section", type=click.Choice(SECTIONS), help="The list to make a feed of.")
@click.option("--rule", "rule_name", type=TEXT, metavar="NAME", help="A watcher rule's matches instead (docs/alerts.md#rules).")
@rules_option
@click.option("--lang", "langs", type=click.Choice(LANGS), multiple=True, help="Only this language.")
@db_option
@click.option("--limit", type=COUNT, default=50, show_default=True, help="Newest N entries.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), default="-", help="File (default: stdout).")
@one_line_errors
def feed(section, rule_name, rules_file, langs, db_path, limit, output):
    """An Atom feed of one section's newest articles, or of a watcher rule's matches (for any
    feed reader). The rule comes from --rules FILE or the settings file's [[rule]] tables."""
    from npi_crawler.research.feed import build_feed, build_rule_feed

    if bool(section) == bool(rule_name):
        raise click.UsageError("give --section S or --rule NAME (one of them)")
    rule = find_rule(configured_rules(rules_file), rule_name) if rule_name else None
    with Archive.open(db_path, readonly=True) as archive:
        if rule is not None:
            document = build_rule_feed(archive, rule, langs=langs, limit=limit)
        else:
            document = build_feed(archive, section, langs=langs, limit=limit)
    with output_file(output, "wb") as out:
        out.write(document)


@click.command()
@click.argument("url", type=TEXT)
@db_option
@one_line_errors
def history(url, db_path):
    """Every stored version of an article, and what changed between consecutive ones: the old
    title, date and authors, PDFs added and removed, sentences added (+), removed (-), edited (~)."""
    from npi_crawler.research.history import format_history

    with Archive.open(db_path, readonly=True) as archive:
        click.echo(format_history(archive, url))


@click.command()
@db_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8001, show_default=True, help="0: any free port.")
@click.option(
    "--show-deliveries",
    is_flag=True,
    help="Also show the deliveries table and alerts' errors, which name the notification channels.",
)
@one_line_errors
def serve(db_path, host, port, show_deliveries):
    """Read and query the archive in Datasette: article pages with citations, the Search page
    (as npi-crawler search), canned queries, CSV/JSON."""
    from npi_crawler.research.datasette import serve as run_serve

    run_serve(
        db_path, host=host, port=port, show_deliveries=show_deliveries, echo=lambda line: click.echo(line, err=True)
    )

