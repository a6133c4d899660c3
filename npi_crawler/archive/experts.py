"""``experts``: the expert pages articles link to, one row per page URL.

An article names its experts in ``authors`` (name as the article gives it, ``profile_url``); the
expert's own page adds the name as that page gives it, the position (title/affiliation), areas
of expertise and a biography. ``authors.profile_url = experts.url`` is the link.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from npi_crawler.archive.db import ArchiveBase, utcnow

# What a fetched page (re)writes; a failed fetch writes only status, error and when.
_PAGE_COLUMNS = ("lang", "name", "title", "areas", "biography", "etag", "last_modified", "parse_notes")
_CONTENT = ("name", "title", "areas", "biography")  # a change of these is a change of the expert


class ExpertStore(ArchiveBase):
    def linked_experts(self) -> list[tuple[str, str]]:
        """(profile URL, article URL) of every live article's expert links."""
        return self.tuples(
            "SELECT au.profile_url, au.article_url FROM authors au JOIN articles a ON a.url = au.article_url "
            "WHERE a.removed_at IS NULL AND au.profile_url IS NOT NULL ORDER BY au.profile_url, au.article_url"
        )

    def store_expert(
        self, url: str, *, status: str, run_id: int | None, now: str | None = None, **page: Any
    ) -> None:
        """Insert or update one expert page's row. ``page`` holds the columns of a fetched and
        parsed page (lang, name, title, areas, biography, etag, last_modified, parse_notes as a
        list); without them only the status changes, so a failed re-fetch keeps what was read."""
        unknown = set(page) - {*_PAGE_COLUMNS, "error"}
        if unknown:
            raise TypeError(f"store_expert: unknown column(s) {', '.join(sorted(unknown))}")
        row = {c: page.get(c) for c in ("error", *_PAGE_COLUMNS)}
        row["parse_notes"] = json.dumps(page.get("parse_notes") or [])
        row.update(url=url, status=status, run_id=run_id, now=now or utcnow())
        with self.atomic() as conn:
            if conn.execute("SELECT 1 FROM experts WHERE url = :url", row).fetchone() is None:
                conn.execute(
                    "INSERT INTO experts (url, lang, name, title, areas, biography, status, error, etag, "
                    "last_modified, first_fetched, last_fetched, last_changed, run_id, parse_notes) VALUES (:url, "
                    ":lang, :name, :title, :areas, :biography, :status, :error, :etag, :last_modified, :now, :now, "
                    ":now, :run_id, :parse_notes)",
                    row,
                )
                return
            columns = ["status", "error", *(_PAGE_COLUMNS if "name" in page else ())]
            changed = " OR ".join(f"{c} IS NOT :{c}" for c in _CONTENT)
            last_changed = f", last_changed = CASE WHEN {changed} THEN :now ELSE last_changed END" if "name" in page else ""
            assignments = ", ".join(f"{c} = :{c}" for c in columns)
            conn.execute(
                f"UPDATE experts SET {assignments}{last_changed}, last_fetched = :now, run_id = :run_id WHERE url = :url",
                row,
            )

    def expert_status(self, url: str) -> str | None:
        """The status of an expert page's last fetch (None: never fetched)."""
        return self.one("SELECT status FROM experts WHERE url = :url", {"url": url})

    def touch_expert(self, url: str, *, run_id: int | None) -> None:
        """A conditional GET of an expert page answered 304."""
        with self.atomic() as conn:
            conn.execute(
                "UPDATE experts SET last_fetched = :now, run_id = :run_id WHERE url = :url",
                {"now": utcnow(), "run_id": run_id, "url": url},
            )

    def article_authors(self, urls: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
        """The authors of each article, in page order: ``name`` as the article gives it,
        ``profile_url``, and from the expert's page (None until it is fetched) ``expert_name``
        and ``title`` (position/affiliation)."""
        out: dict[str, list[dict[str, Any]]] = {}
        for url in urls:
            out[url] = self.rows(
                "SELECT au.name, au.profile_url, e.name AS expert_name, e.title FROM authors au "
                "LEFT JOIN experts e ON e.url = au.profile_url WHERE au.article_url = :url ORDER BY au.position",
                {"url": url},
            )
        return out
