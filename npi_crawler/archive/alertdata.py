"""What an alert about an edit or a removal reads: the two versions an edit is between, the last
version of a removed article, and when a version was last served (its WARC records), so that the
alert can name the ``snapshot --at`` command that shows it as served."""

from __future__ import annotations

import json
from typing import Any

from npi_crawler.archive.db import ArchiveBase

_VERSION = "r.title, r.published, coalesce(r.body, '') AS body, r.pdfs, r.authors, r.content_hash"
_CURRENT = """
    SELECT title, published, coalesce(body, '') AS body, content_hash,
      (SELECT json_group_array(url) FROM (SELECT url FROM pdfs WHERE article_url = a.url ORDER BY position)) AS pdfs,
      (SELECT json_group_array(name) FROM (SELECT name FROM authors WHERE article_url = a.url ORDER BY position))
        AS authors
    FROM articles a WHERE url = :url
"""


def _version(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "pdfs": json.loads(row["pdfs"] or "[]"), "authors": json.loads(row["authors"] or "[]")}


class AlertData(ArchiveBase):
    def edit_versions(self, event_id: int) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """(old, new) of the edit a ``changed`` event records: the revision it kept, and the
        version that replaced it (the next revision, or the article as stored now). Keys: title,
        published, body, pdfs, authors, content_hash. None when the event has no revision."""
        old = self.rows(
            f"SELECT r.id, r.article_url, {_VERSION} FROM events e JOIN revisions r ON r.id = e.revision_id "
            "WHERE e.id = :event",
            {"event": event_id},
        )
        if not old:
            return None
        url, revision = old[0].pop("article_url"), old[0].pop("id")
        new = self.rows(
            f"SELECT {_VERSION} FROM revisions r WHERE r.article_url = :url AND r.id > :id ORDER BY r.id LIMIT 1",
            {"url": url, "id": revision},
        ) or self.rows(_CURRENT, {"url": url})
        return _version(old[0]), _version(new[0])

    def last_version(self, url: str) -> dict[str, Any]:
        """A removed article's last version: ``stored`` (when it was stored), ``served`` (the last
        fetch that served it), ``removed_at``, ``removed_status``."""
        rows = self.rows(
            "SELECT last_changed AS stored, removed_at, removed_status, content_hash FROM articles WHERE url = :url",
            {"url": url},
        )
        if not rows:
            return {}
        row = rows[0]
        return {**row, "served": self.last_served(url, row.pop("content_hash"))}

    def last_served(self, url: str, content_hash: str | None) -> str | None:
        """When the version of ``url`` with ``content_hash`` was last served (a 200, or a 304
        confirming it), as its WARC record says, to the second (what ``snapshot --at`` takes);
        None without a record (no WARC kept)."""
        if content_hash is None:
            return None
        captured = self.one(
            "SELECT max(captured) FROM warc_records WHERE url = :url AND content_hash = :hash AND status IN (200, 304)",
            {"url": url, "hash": content_hash},
        )
        return f"{captured[:19]}Z" if captured else None
