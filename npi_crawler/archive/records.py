"""The shapes the crawl hands the archive: an article page as one typed record, and where a page
is in the WARC files.

Pure data: no SQL, no sqlite, no Scrapy. The parser builds an ``ArticleRecord`` (site.articles),
the spider yields it as its Scrapy item with the page's validators and WARC pointer, the
pipelines validate it, and ``Archive.store_article`` stores it as it is. It is cleaned once, when
it is built: whoever builds one (the parser, a test, a benchmark) gets the same clean record.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

from npi_crawler.site.text import normalize_space


@dataclass(frozen=True)
class WarcPointer:
    """Where a record is: what the archive stores to find it again. ``directory`` and ``run_id``
    (the WARC folder and the run that wrote it) are set on a pointer the crawl just wrote, for the
    archive's ``warc_files``; a pointer read back from a row needs neither."""

    filename: str  # the final name (….warc.gz), relative to the WARC directory
    offset: int  # of the record's gzip member in the file
    length: int  # bytes of that gzip member
    payload_digest: str  # WARC-Payload-Digest, "sha1:<base32>"
    record_id: str  # WARC-Record-ID, "<urn:uuid:…>"
    date: str  # WARC-Date
    record_type: str = "response"  # or "revisit"
    status: int | None = None  # the HTTP status the record holds
    refers_to: str | None = None  # a revisit's WARC-Refers-To: the response it confirms
    directory: str | None = None  # the folder the file is in
    run_id: int | None = None  # the run that wrote the record

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> WarcPointer:
        """The pointer an archive's ``warc_records`` row holds (npi_crawler/archive/warcrecords.py)."""
        return cls(
            row["filename"],
            row["file_offset"],
            row["record_length"],
            row["payload_digest"],
            row["record_id"],
            row["captured"],
            row["record_type"],
            row["status"],
            row["refers_to"],
        )


def payload_digest(body: bytes) -> str:
    """The WARC payload digest of ``body``: SHA-1 in base32, as warcio and pywb write it (and
    what a check compares an answer with: the same page as last archived)."""
    return "sha1:" + base64.b32encode(hashlib.sha1(body).digest()).decode("ascii")


class Author(NamedTuple):
    """An author as the article names them, and their profile page (None when the link could not
    be read)."""

    name: str
    profile_url: str | None = None


@dataclass(frozen=True)
class ArticleRecord:
    """One article page as parsed, with what its fetch said. ``notes`` are the parse notes
    (site.notes). Built clean: the title and the authors' names whitespace-folded (a title or
    name of nothing but spaces is none), PDFs without repeats, in page order."""

    url: str
    lang: str
    title: str | None
    published: str | None  # YYYY-MM-DD
    body: str
    authors: tuple[Author, ...] = ()
    pdfs: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    etag: str | None = None
    last_modified: str | None = None
    warc: WarcPointer | None = None  # where the page is in the WARC files (npi_crawler/warc_recorder.py)

    def __post_init__(self) -> None:
        # Idempotent, so a copy with the fetch's fields (dataclasses.replace) stays as it was.
        names = ((normalize_space(name), url) for name, url in self.authors)
        object.__setattr__(self, "title", normalize_space(self.title) or None)
        object.__setattr__(self, "authors", tuple(Author(name, url) for name, url in names if name))
        object.__setattr__(self, "pdfs", tuple(dict.fromkeys(self.pdfs)))
        object.__setattr__(self, "notes", tuple(self.notes))


@dataclass(frozen=True)
class ListPageRecord:
    """A list page as last answered 200: where it is in which list, its validators for the next
    conditional GET, the digest of its body (a server without validators still answers "the same
    page"), and the other pages its pagination links (``(url, number)``: a list that grew has a
    page the archive did not know)."""

    url: str
    lang: str
    section: str
    page: int
    etag: str | None = None
    last_modified: str | None = None
    digest: str | None = None
    pages: tuple[tuple[str, int], ...] = ()

    def answered(
        self, etag: str | None, last_modified: str | None, body: bytes, pages: Iterable[tuple[str, int | None]]
    ) -> ListPageRecord:
        """This page as it answered 200 with ``body``: its validators, the body's digest, and the
        numbered pages its pager links (each once, in order)."""
        numbered = tuple(dict.fromkeys((url, n) for url, n in pages if n))
        return replace(self, etag=etag, last_modified=last_modified, digest=payload_digest(body), pages=numbered)
