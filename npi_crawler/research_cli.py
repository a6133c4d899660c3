"""The researcher's commands: ``search``, ``feed``, ``history`` and ``serve`` (registered in cli.py)."""

from __future__ import annotations

import csv
import json
import re
import sys

import click

from npi_crawler.cli import db_option, filter_options, one_line_errors
from npi_crawler.parsing import SECTIONS
from npi_crawler.storage import Archive


class DatePrefix(click.ParamType):
    """YYYY, YYYY-MM or YYYY-MM-DD."""

    name = "date"

    def convert(self, value, param, ctx):
        if value is None or re.fullmatch(r"\d{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?)?", str(value)):
            return value
        self.fail(f"{value!r} is not a date like 2024, 2024-06 or 2024-06-30", param, ctx)


DATE = DatePrefix()
SEARCH_FIELDS = ("rank", "published", "lang", "sections", "title", "url", "match", "pdf_url", "snippet")


@click.command()
@click.argument("query")
@db_option
@filter_options
@click.option("--since", type=DATE, metavar="DATE", help="Only articles published on or after this date.")
@click.option("--until", type=DATE, metavar="DATE", help="Only articles published on or before this date.")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="At most N results.")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True
)
@click.option("--fts", "raw", is_flag=True, help="QUERY is an FTS5 expression (OR, NOT, NEAR, prefix*).")
@one_line_errors
def search(db_path, query, langs, sections, since, until, limit, fmt, raw):
    """Full-text search of titles, bodies and linked PDFs, best match first.

    Every word must match (a "quoted phrase" matches as a whole). Words of 3+ characters use the
    trigram index; shorter ones (憲法, AI) are matched as substrings, more slowly.
    """
    from npi_crawler.search import search as run_search

    archive = Archive.open(db_path, create=False)
    try:
        hits = run_search(
            archive, query, langs=langs, sections=sections, since=since, until=until, limit=limit, raw=raw
        )
    finally:
        archive.close()
    rows = [{"rank": i, **h.as_dict()} for i, h in enumerate(hits, 1)]
    if fmt == "json":
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
    elif fmt == "csv":
        writer = csv.DictWriter(
            sys.stdout, fieldnames=SEARCH_FIELDS, extrasaction="ignore", lineterminator="\n"
        )
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "sections": ",".join(row["sections"])})
    elif not rows:
        click.echo(f"no article matches {query!r}", err=True)
    else:
        for row in rows:
            where = f"  (in PDF {row['pdf_url']})" if row["match"] == "pdf" else ""
            click.echo(
                f"{row['rank']:>3}. {row['published'] or '(no date)'}  {row['lang']}  "
                f"{', '.join(row['sections'])}{where}"
            )
            click.echo(f"     {click.style(row['title'], bold=True)}")
            click.echo(f"     {row['url']}")
            click.echo(f"     {row['snippet']}")


@click.command()
@click.option("--section", type=click.Choice(SECTIONS), required=True, help="The list to make a feed of.")
@click.option("--lang", "langs", type=click.Choice(["ja", "en"]), multiple=True, help="Only this language.")
@db_option
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True, help="Newest N entries.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), default="-", help="File (default: stdout).")
@one_line_errors
def feed(section, langs, db_path, limit, output):
    """An Atom feed of one section's newest articles (for any feed reader)."""
    from npi_crawler.feed import build_feed

    archive = Archive.open(db_path, create=False)
    try:
        document = build_feed(archive, section, langs=langs, limit=limit)
    finally:
        archive.close()
    with click.open_file(output, "wb") as out:
        out.write(document)


@click.command()
@click.argument("url")
@db_option
@one_line_errors
def history(url, db_path):
    """Every stored version of an article, with a unified diff between consecutive ones."""
    from npi_crawler.history import format_history

    archive = Archive.open(db_path, create=False)
    try:
        click.echo(format_history(archive, url))
    finally:
        archive.close()


@click.command()
@db_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8001, show_default=True, help="0: any free port."
)
@one_line_errors
def serve(db_path, host, port):
    """Browse and query the archive in Datasette (search, canned queries, CSV/JSON)."""
    from npi_crawler.serve import serve as run_serve

    run_serve(db_path, host=host, port=port, echo=lambda line: click.echo(line, err=True))


COMMANDS = (search, feed, history, serve)
