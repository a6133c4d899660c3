"""``npi-crawler snapshot URL``: a page as it was served, read back from the WARC files.

Read-only: the archive is opened with ``readonly=True`` and the WARC files are only read.
"""

from __future__ import annotations

import click

from npi_crawler.archive import Archive
from npi_crawler.cli.options import MOMENT, TEXT, db_option, warc_dir_option
from npi_crawler.cli.runtime import one_line_errors


@click.command()
@click.argument("url", type=TEXT)
@db_option
@click.option(
    "--at",
    type=MOMENT,
    metavar="DATE",
    help="The page as served at this date or UTC time (2024-06-30, 2024-06-30T12:00): the latest fetch "
    "at or before it. Default: the latest.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["html", "text"]),
    default="html",
    show_default=True,
    help="html: the page byte for byte as served; text: its article text.",
)
@warc_dir_option
@one_line_errors
def snapshot(url: str, db_path: str, at: str | None, fmt: str, warc_dir: str | None) -> None:
    """A page (article, PDF, list) as it was served, from the WARC files, its digest checked.

    Where it came from (when served, the run, the WARC file and offset) goes to stderr, one line."""
    from npi_crawler.research.snapshot import find_snapshot, snapshot_text

    with Archive.open(db_path, readonly=True) as archive:
        found = find_snapshot(archive, url, at=at, warc_dir=warc_dir)
    click.echo(found.provenance(), err=True)
    if fmt == "text":
        click.echo(snapshot_text(found))
    else:
        click.echo(found.response.body, nl=False)
