"""``pdf_texts``: one row per PDF URL that articles link to, with its text and fetch state."""

from __future__ import annotations

from typing import Any

from npi_crawler.archive.db import ArchiveBase, utcnow
from npi_crawler.archive.records import WarcPointer
from npi_crawler.archive.warcrecords import link_warc

# Columns a download (re)writes; a failed fetch writes only status, error and when.
_DOWNLOAD_COLUMNS = ("etag", "last_modified", "content_type", "size", "sha256", "pages", "text")


class PdfStore(ArchiveBase):
    def pdf_states(self) -> dict[str, tuple[str, str | None, str | None]]:
        """Every archived PDF URL -> (status, etag, last_modified)."""
        return self.fetch_states("pdf_texts")

    def pdf_statuses(self, urls: list[str]) -> dict[str, tuple[str, int | None]]:
        """PDF URL -> (status, pages) of those of ``urls`` that were fetched."""
        marks = ", ".join("?" * len(urls))
        rows = self.tuples(f"SELECT url, status, pages FROM pdf_texts WHERE url IN ({marks})", urls) if urls else []
        return {url: (status, pages) for url, status, pages in rows}

    def linked_pdfs(self) -> list[tuple[str, str]]:
        """(PDF URL, article URL) of every live article's PDF links, in page order."""
        return self.tuples(
            "SELECT p.url, p.article_url FROM pdfs p JOIN articles a ON a.url = p.article_url "
            "WHERE a.removed_at IS NULL ORDER BY p.article_url, p.position"
        )

    def store_pdf(
        self, url: str, *, status: str, run_id: int | None, now: str | None = None, warc: WarcPointer | None = None, **download: Any
    ) -> None:
        """Insert or update one PDF's row. ``download`` holds the columns of a completed download
        (etag, last_modified, content_type, size, sha256, pages, text); without them only the
        status changes, so a failed re-fetch keeps the text already archived. ``warc``: the
        pointer to the answer's WARC record, stored in the same transaction."""
        unknown = set(download) - {*_DOWNLOAD_COLUMNS, "error"}
        if unknown:
            raise TypeError(f"store_pdf: unknown column(s) {', '.join(sorted(unknown))}")
        row = {c: download.get(c) for c in ("error", *_DOWNLOAD_COLUMNS)}
        row.update(url=url, status=status, run_id=run_id, now=now or utcnow())
        downloaded = download.get("size") is not None
        with self.atomic() as conn:
            link_warc(conn, warc, url=url, kind="pdf", content_hash=download.get("sha256"))
            if conn.execute("SELECT 1 FROM pdf_texts WHERE url = :url", row).fetchone() is None:
                conn.execute(
                    "INSERT INTO pdf_texts (url, status, error, etag, last_modified, content_type, size, sha256, "
                    "pages, text, first_fetched, last_fetched, run_id) VALUES (:url, :status, :error, :etag, "
                    ":last_modified, :content_type, :size, :sha256, :pages, :text, :now, :now, :run_id)",
                    row,
                )
                return
            columns = ["status", "error", *(_DOWNLOAD_COLUMNS if downloaded else ())]
            assignments = ", ".join(f"{c} = :{c}" for c in columns)
            conn.execute(
                f"UPDATE pdf_texts SET {assignments}, last_fetched = :now, run_id = :run_id WHERE url = :url", row
            )

    def touch_pdf(self, url: str, *, run_id: int | None, warc: WarcPointer | None = None) -> None:
        """A conditional GET of a PDF answered 304 (``warc``: its revisit record)."""
        with self.atomic() as conn:
            conn.execute(
                "UPDATE pdf_texts SET last_fetched = :now, run_id = :run_id WHERE url = :url",
                {"now": utcnow(), "run_id": run_id, "url": url},
            )
            link_warc(conn, warc, url=url, kind="pdf")
