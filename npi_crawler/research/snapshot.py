"""``snapshot``: a page as it was served at a given moment, read back from the WARC files.

The archive's ``warc_records`` say which record holds each fetch; the newest at or before the
moment is the page as it was served then. A 304 or an unchanged 200 is a ``revisit`` record: the
page is then the response it refers to. A page removed from the site (404/410) is shown as it
was last served before, with a note saying when it went.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from npi_crawler.archive import Archive
from npi_crawler.archive.records import WarcPointer
from npi_crawler.archive.warc import (
    OPEN_SUFFIX,
    ArchivedResponse,
    WarcError,
    default_warc_dir,
    read_response,
)
from npi_crawler.site.articles import parse_article
from npi_crawler.site.decoding import decode_page
from npi_crawler.site.urls import canonical_url


@dataclass
class Snapshot:
    url: str  # as the archive keys it
    served: dict[str, Any]  # the warc_records row of the fetch shown (a response or a revisit)
    record: dict[str, Any]  # the response record whose payload it is
    response: ArchivedResponse
    gone: dict[str, Any] | None = None  # a later 404/410 record at or before the moment

    def provenance(self) -> str:
        """One line for a citation: what was served when, and where its record is."""
        served, record = self.served, self.record
        line = f"{self.url}: as served at {served['captured']} (HTTP {served['status']}, run {served['run_id']})"
        if served["record_type"] == "revisit":
            line += f", unchanged since {record['captured']}"
        line += f"; WARC {record['filename']} offset {record['file_offset']}"
        if self.gone is not None:
            line += f"; removed from the site: HTTP {self.gone['status']} at {self.gone['captured']}"
        return line


def _directories(archive: Archive, filename: str, warc_dir: str | os.PathLike | None) -> list[Path]:
    """Where to look for a WARC file: ``warc_dir`` when given, else the folder the crawl wrote it
    to, then the default folder beside the archive (both moved together)."""
    if warc_dir is not None:
        return [Path(warc_dir)]
    recorded = archive.warc_directories().get(filename)
    found = [Path(recorded)] if recorded else []
    return [*found, default_warc_dir(archive.path)]


def _read(archive: Archive, record: dict[str, Any], warc_dir: str | os.PathLike | None) -> ArchivedResponse:
    name = record["filename"]
    tried = list(dict.fromkeys(_directories(archive, name, warc_dir)))
    for directory in tried:
        if (directory / name).exists() or (directory / (name + OPEN_SUFFIX)).exists():
            return read_response(directory, WarcPointer.from_row(record))
    raise WarcError(
        f"the WARC file {name} is in none of {', '.join(map(str, tried))}; give --warc-dir the folder the crawl wrote to"
    )


def _served(rows: list[dict[str, Any]], url: str, at: str | None) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The newest fetch that served the page (200 or 304) and a removal after it, if any."""
    gone = rows[0] if rows[0]["status"] in (404, 410) else None
    served = next((r for r in rows if r["status"] in (200, 304)), None)
    if served is None:
        when = f" at or before {at}" if at else ""
        raise WarcError(f"{url} was never archived as a page{when}: every fetch of it answered HTTP {rows[0]['status']}")
    return served, gone


def find_snapshot(
    archive: Archive, url: str, *, at: str | None = None, warc_dir: str | os.PathLike | None = None
) -> Snapshot:
    """The page at ``url`` as it was served at ``at`` (a prefix of an ISO 8601 UTC time; None: the
    latest), its digest checked. Raises WarcError (one line) when there is none."""
    urls = (url, canonical_url(url))
    every = archive.warc_records_of(urls)
    if not every:
        raise WarcError(
            f"no WARC record of {url} in {archive.path}; a crawl with WARC on records each page it fetches "
            "(a --full crawl every archived one): check the URL with 'npi-crawler search'"
        )
    rows = archive.warc_records_of(urls, at=at) if at else every
    if not rows:
        raise WarcError(f"no WARC record of {url} at or before {at}; the first is from {every[-1]['captured']}")
    served, gone = _served(rows, url, at)
    record = served
    if served["record_type"] == "revisit":
        referred = archive.warc_record(served["refers_to"])
        if referred is None:
            raise WarcError(f"the record of {url} at {served['captured']} refers to {served['refers_to']}, which the archive does not know")
        record = referred
    response = _read(archive, record, warc_dir)
    return Snapshot(url=served["url"], served=served, record=record, response=response, gone=gone)


def snapshot_text(snapshot: Snapshot) -> str:
    """The text of the page as served: an article's body as ``site.articles.parse_article`` reads it,
    a PDF's text layer, a list page's text."""
    response = snapshot.response
    if snapshot.served["kind"] == "pdf":
        from npi_crawler.site.pdftext import extract_text  # pypdf: only for a PDF's text

        return extract_text(response.body).text or ""
    return parse_article(decode_page(response.body, response.header("Content-Type")), snapshot.url).body
