"""``warc_files`` and ``warc_records``: where each fetch the crawl archived is in the WARC files.

A pointer is stored in the same transaction as the row it is evidence for (an article version, a
PDF's row, a 304, a removal), and only once the record is on disk (``archive.warc`` fsyncs it
before it returns the pointer): the archive never points to a record that is not there.

The pointers these functions take are what the crawl's WARC middleware puts on a request
(``npi_crawler.warc_recorder``): ``WarcPointer``s with their ``directory`` and ``run_id``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

from npi_crawler.archive.db import ArchiveBase
from npi_crawler.archive.records import WarcPointer

# What a revisit confirms, per kind: the hash of the version stored now.
_CURRENT_HASH = {
    "article": "SELECT content_hash FROM articles WHERE url = :url",
    "pdf": "SELECT sha256 FROM pdf_texts WHERE url = :url",
}
_RECORD_COLUMNS = (
    "id, url, kind, record_type, status, content_hash, filename, file_offset, record_length, "
    "payload_digest, record_id, refers_to, captured, run_id"
)


def link_warc(
    conn: sqlite3.Connection,
    warc: WarcPointer | None,
    *,
    url: str,
    kind: str,
    content_hash: str | None = None,
) -> None:
    """Record where the fetch of ``url`` is (nothing when ``warc`` is None), inside the caller's
    transaction. ``content_hash`` names the version the record holds (an article's content_hash,
    a PDF's sha256); a revisit without one confirms the version stored now."""
    if warc is None:
        return
    if content_hash is None and warc.record_type == "revisit" and kind in _CURRENT_HASH:
        row = conn.execute(_CURRENT_HASH[kind], {"url": url}).fetchone()
        content_hash = row[0] if row else None
    params = {**asdict(warc), "url": url, "kind": kind, "content_hash": content_hash}
    conn.execute(
        "INSERT OR IGNORE INTO warc_files (filename, directory, run_id, created) "
        "VALUES (:filename, :directory, :run_id, :date)",
        params,
    )
    conn.execute(
        "INSERT INTO warc_records (url, kind, record_type, status, content_hash, filename, file_offset, "
        "record_length, payload_digest, record_id, refers_to, captured, run_id) VALUES (:url, :kind, "
        ":record_type, :status, :content_hash, :filename, :offset, :length, :payload_digest, :record_id, "
        ":refers_to, :date, :run_id)",
        params,
    )


class WarcRecordStore(ArchiveBase):
    """Writes of the crawl's WARC pointers, and the reads of ``snapshot``."""

    def add_warc_record(self, url: str, kind: str, warc: WarcPointer) -> None:
        """A fetch that stores no row of its own (a list page): its pointer alone."""
        with self.atomic() as conn:
            link_warc(conn, warc, url=url, kind=kind)

    def last_warc_response(self, url: str) -> dict[str, Any] | None:
        """The newest 200 response record of ``url``: what a revisit of it refers to, and the
        digest an unchanged list page is recognized by."""
        rows = self.rows(
            f"SELECT {_RECORD_COLUMNS} FROM warc_records WHERE url = :url AND record_type = 'response' "
            "AND status = 200 ORDER BY captured DESC, id DESC LIMIT 1",
            {"url": url},
        )
        return rows[0] if rows else None

    def warc_record(self, record_id: str) -> dict[str, Any] | None:
        rows = self.rows(f"SELECT {_RECORD_COLUMNS} FROM warc_records WHERE record_id = :id", {"id": record_id})
        return rows[0] if rows else None

    def warc_records_of(self, urls: Iterable[str], *, at: str | None = None) -> list[dict[str, Any]]:
        """The records of the first of ``urls`` that has any, newest first; with ``at`` (a prefix
        of an ISO 8601 UTC time: ``2024``, ``2024-06-30``, ``2024-06-30T12:00``) only those
        captured at or before it (the whole of a day, month or year given)."""
        for url in dict.fromkeys(urls):
            rows = self.rows(
                f"SELECT {_RECORD_COLUMNS} FROM warc_records WHERE url = :url "
                "AND (:at IS NULL OR substr(captured, 1, length(:at)) <= :at) ORDER BY captured DESC, id DESC",
                {"url": url, "at": at},
            )
            if rows:
                return rows
        return []

    def warc_recorded_urls(self, kind: str) -> set[str]:
        """URLs of ``kind`` with a 200 response record: the pages a re-check may fetch conditionally."""
        rows = self.conn.execute(
            "SELECT DISTINCT url FROM warc_records WHERE kind = :kind AND record_type = 'response' AND status = 200",
            {"kind": kind},
        )
        return {r[0] for r in rows}

    def warc_lost_urls(self) -> tuple[set[str], set[str]]:
        """(article pages, PDFs) a run archived without their WARC record (a ``warc:lost`` error:
        the WARC folder was full) that no later run has recorded: the next run fetches them whole."""
        lost = (
            "SELECT DISTINCT e.url FROM run_errors e WHERE e.kind = 'warc:lost' AND e.url IN (SELECT url FROM {table}) "
            "AND NOT EXISTS (SELECT 1 FROM warc_records r WHERE r.url = e.url AND r.run_id > e.run_id)"
        )
        pages = {r[0] for r in self.conn.execute(lost.format(table="articles"))}
        pdfs = {r[0] for r in self.conn.execute(lost.format(table="pdf_texts"))}
        return pages, pdfs

    def warc_directories(self) -> dict[str, str]:
        """Each WARC file's name -> the folder the crawl wrote it to."""
        return {r[0]: r[1] for r in self.conn.execute("SELECT filename, directory FROM warc_files")}
