"""What a run reads before it decides to crawl, and the little it writes when it does not (issue 20).

- ``list_pages``: each list page's validators and digest (the conditional GETs of the check and of
  the rolling sweep), and the pages a list's pagination showed (a page never fetched is swept first);
- ``robots_txt``: robots.txt as last answered, kept a day;
- the sweep's windows: the deeper list pages and the known articles a run re-checks, taken in URL
  order after the position the last finished run reached (``npi/sweep/*`` in its stats), round
  and round: each is re-checked once every ceil(count / per run) runs;
- ``runs.retry_after``: the site's Retry-After, which holds every run until then;
- the crawl's backlog: what the spider would fetch even from an unchanged first page (listed
  articles never archived, alerts held for a clean version, PDFs and expert pages never fetched or
  whose fetch failed), so that a check that finds nothing still hands over when something is due.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from npi_crawler.archive.db import ArchiveBase, utcnow
from npi_crawler.archive.records import ListPageRecord

# The run stats that hold the sweep's position: the last URL each window reached.
SWEEP_LISTS_TO = "npi/sweep/lists_to"
SWEEP_ARTICLES_TO = "npi/sweep/articles_to"
_RETRYABLE = "(t.status = 'error' OR t.status LIKE 'http_5%')"  # items.retryable, in SQL


def _in(name: str, values: Iterable[str]) -> tuple[str, dict[str, str]]:
    keys = {f"{name}{i}": v for i, v in enumerate(values)}
    return ", ".join(f":{k}" for k in keys) or "NULL", keys


class CheckStore(ArchiveBase):
    """List pages, robots.txt, the sweep and the site's Retry-After."""

    # -- list pages -----------------------------------------------------------------------------
    def list_page_rows(self, urls: Iterable[str]) -> dict[str, ListPageRecord]:
        """The stored state of those of ``urls`` the archive knows."""
        marks, params = _in("u", urls)
        rows = self.rows(f"SELECT * FROM list_pages WHERE url IN ({marks})", params)
        return {row["url"]: _record(row) for row in rows}

    def store_list_page(self, page: ListPageRecord, *, run_id: int | None, now: str | None = None) -> bool:
        """A list page answered 200: its validators and digest (``changed_at`` moves only when the
        digest does), and the pages its pagination shows that the archive did not know. True when
        its content changed. Writes nothing when nothing changed."""
        row = {**page.__dict__, "run_id": run_id, "now": now or utcnow()}
        with self.atomic() as conn:
            cur = conn.execute(
                "INSERT INTO list_pages (url, lang, section, page, etag, last_modified, digest, changed_at, run_id) "
                "VALUES (:url, :lang, :section, :page, :etag, :last_modified, :digest, :now, :run_id) "
                "ON CONFLICT (url) DO UPDATE SET etag = excluded.etag, last_modified = excluded.last_modified, "
                "digest = excluded.digest, page = excluded.page, "
                "changed_at = CASE WHEN digest IS excluded.digest THEN changed_at ELSE excluded.changed_at END, "
                "run_id = CASE WHEN digest IS excluded.digest THEN run_id ELSE excluded.run_id END "
                "WHERE digest IS NOT excluded.digest OR etag IS NOT excluded.etag "
                "OR last_modified IS NOT excluded.last_modified OR page IS NOT excluded.page",
                row,
            )
            conn.executemany(
                "INSERT OR IGNORE INTO list_pages (url, lang, section, page) VALUES (?, ?, ?, ?)",
                [(url, page.lang, page.section, number) for url, number in page.pages if url != page.url],
            )
        return cur.rowcount > 0

    def forget_list_page(self, url: str) -> None:
        """A list page that answered 404/410: the list is shorter now."""
        with self.atomic() as conn:
            conn.execute("DELETE FROM list_pages WHERE url = :url", {"url": url})

    def deeper_list_pages(self, langs: Iterable[str], sections: Iterable[str]) -> int:
        """How many list pages beyond the first the lists in scope have (as far as known)."""
        langs_in, params = _in("l", langs)
        sections_in, more = _in("s", sections)
        return int(
            self.one(
                f"SELECT count(*) FROM list_pages WHERE page > 1 AND lang IN ({langs_in}) AND section IN ({sections_in})",
                {**params, **more},
            )
        )

    # -- the sweep ------------------------------------------------------------------------------
    def sweep_position(self) -> tuple[str | None, str | None]:
        """Where the sweep of deeper list pages and of known articles stands: the last URL of each
        window of the latest run that finished (``ok`` or ``partial``) with one. A run that was
        stopped, killed or failed moves nothing: its windows are swept again."""

        def last(key: str) -> str | None:
            return self.one(
                "SELECT json_extract(stats, :path) FROM runs WHERE status IN ('ok', 'partial') "
                "AND json_valid(stats) AND json_extract(stats, :path) IS NOT NULL ORDER BY id DESC LIMIT 1",
                {"path": f'$."{key}"'},
            )

        return last(SWEEP_LISTS_TO), last(SWEEP_ARTICLES_TO)

    def next_run_id(self) -> int:
        """The id the next run's row gets (the sweep's share of a fractional rate turns on it)."""
        return int(self.one("SELECT coalesce(max(id), 0) + 1 FROM runs"))

    def sweep_list_pages(
        self, langs: Iterable[str], sections: Iterable[str], after: str | None, limit: int
    ) -> list[ListPageRecord]:
        """The next ``limit`` deeper list pages in scope: those never fetched first (a page the
        pagination showed: most likely to hold what was filed lately), then in URL order after
        ``after``, wrapping round."""
        if limit <= 0:
            return []
        langs_in, params = _in("l", langs)
        sections_in, more = _in("s", sections)
        scope = f"page > 1 AND lang IN ({langs_in}) AND section IN ({sections_in})"
        params = {**params, **more, "after": after or ""}
        rows = self.rows(
            f"SELECT * FROM list_pages WHERE {scope} AND digest IS NULL ORDER BY url LIMIT :limit", {**params, "limit": limit}
        )
        for condition in ("url > :after", "url <= :after"):
            if (want := limit - len(rows)) > 0:
                rows += self.rows(
                    f"SELECT * FROM list_pages WHERE {scope} AND digest IS NOT NULL AND {condition} "
                    "ORDER BY url LIMIT :limit",
                    {**params, "limit": want},
                )
        return [_record(row) for row in rows]

    def sweep_articles(
        self, langs: Iterable[str], sections: Iterable[str], after: str | None, limit: int
    ) -> list[tuple[str, str | None, str | None]]:
        """(url, etag, last_modified) of the next ``limit`` live known articles in scope (listed in
        one of ``sections``), in URL order after ``after``, wrapping round."""
        if limit <= 0:
            return []
        langs_in, params = _in("l", langs)
        sections_in, more = _in("s", sections)
        scope = (
            f"a.removed_at IS NULL AND a.lang IN ({langs_in}) AND EXISTS (SELECT 1 FROM article_sections s "
            f"WHERE s.article_url = a.url AND s.section IN ({sections_in}))"
        )
        params = {**params, **more, "after": after or ""}
        found: list[tuple[str, str | None, str | None]] = []
        for condition in ("a.url > :after", "a.url <= :after"):
            if (want := limit - len(found)) > 0:
                found += self.tuples(
                    f"SELECT a.url, a.etag, a.last_modified FROM articles a WHERE {scope} AND {condition} "
                    "ORDER BY a.url LIMIT :limit",
                    {**params, "limit": want},
                )
        return found

    def article_hash(self, url: str) -> str | None:
        """The content hash of the article as archived (what an edit changes), or None."""
        return self.one("SELECT content_hash FROM articles WHERE url = :url", {"url": url})

    # -- robots.txt -----------------------------------------------------------------------------
    def robots_txt(self, url: str) -> dict[str, Any] | None:
        rows = self.rows("SELECT * FROM robots_txt WHERE url = :url", {"url": url})
        return rows[0] if rows else None

    def store_robots_txt(
        self, url: str, *, status: int, body: str, etag: str | None, last_modified: str | None, now: str | None = None
    ) -> None:
        with self.atomic() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO robots_txt (url, status, body, etag, last_modified, fetched_at) "
                "VALUES (:url, :status, :body, :etag, :last_modified, :now)",
                {"url": url, "status": status, "body": body, "etag": etag, "last_modified": last_modified,
                 "now": now or utcnow()},
            )  # fmt: skip

    # -- the site's Retry-After -----------------------------------------------------------------
    def set_retry_after(self, run_id: int, until: str) -> None:
        with self.atomic() as conn:
            conn.execute("UPDATE runs SET retry_after = :until WHERE id = :id", {"until": until, "id": run_id})

    def retry_hold(self, now: str | None = None) -> dict[str, Any] | None:
        """The latest run's ``retry_after`` while it is still ahead (the time, the run, and what
        the site answered: its ``site:retry_after`` error), else None. A later run (one started
        with --ignore-retry-after) ends the hold by being the latest."""
        rows = self.rows(
            "SELECT r.id AS run_id, r.retry_after AS until, (SELECT e.message FROM run_errors e "
            "WHERE e.run_id = r.id AND e.kind = 'site:retry_after' ORDER BY e.id LIMIT 1) AS message "
            "FROM runs r ORDER BY r.id DESC LIMIT 1"
        )
        if not rows or not rows[0]["until"] or rows[0]["until"] <= (now or utcnow()):
            return None
        return rows[0]

    # -- the crawl's backlog --------------------------------------------------------------------
    def unarchived_listings(self, sections: Iterable[str]) -> list[str]:
        """Articles listed in one of ``sections`` but never archived (a fetch that failed, a run
        killed first, the new-article cap): every crawl fetches them first."""
        sections_in, params = _in("s", sections)
        return [
            r[0]
            for r in self.conn.execute(
                f"SELECT DISTINCT s.article_url FROM article_sections s WHERE s.section IN ({sections_in}) "
                "AND NOT EXISTS (SELECT 1 FROM articles a WHERE a.url = s.article_url) ORDER BY 1",
                params,
            )
        ]

    def unfetched_links(self, kind: str) -> list[tuple[str, str]]:
        """(linked URL, article URL) of live articles' PDFs (``kind`` "pdf") or expert pages
        ("expert") never fetched, or whose last fetch failed for a reason worth another try."""
        links = {
            "pdf": ("SELECT url, article_url FROM pdfs", "pdf_texts"),
            "expert": ("SELECT profile_url AS url, article_url FROM authors WHERE profile_url IS NOT NULL", "experts"),
        }
        select, table = links[kind]
        return self.tuples(
            f"SELECT l.url, l.article_url FROM ({select}) l JOIN articles a ON a.url = l.article_url "
            f"WHERE a.removed_at IS NULL AND NOT EXISTS (SELECT 1 FROM {table} t WHERE t.url = l.url "
            f"AND NOT {_RETRYABLE}) ORDER BY l.url"
        )

    def listed_in(self, urls: Iterable[str], sections: Iterable[str]) -> set[str]:
        """Those of ``urls`` listed in one of ``sections``."""
        urls_in, params = _in("u", urls)
        sections_in, more = _in("s", sections)
        return {
            r[0]
            for r in self.conn.execute(
                f"SELECT DISTINCT article_url FROM article_sections WHERE article_url IN ({urls_in}) "
                f"AND section IN ({sections_in})",
                {**params, **more},
            )
        }

    def unknown_entries(self, urls: list[str], section: str) -> list[str]:
        """Those of ``urls`` (a list page's entries) that are new to the archive, or new to
        ``section``: what would make the crawl fetch them, or record a new listing."""
        urls_in, params = _in("u", urls)
        known = {
            r[0]
            for r in self.conn.execute(
                f"SELECT s.article_url FROM article_sections s JOIN articles a ON a.url = s.article_url "
                f"WHERE s.section = :section AND s.article_url IN ({urls_in})",
                {**params, "section": section},
            )
        }
        return [url for url in urls if url not in known]


def _record(row: dict[str, Any]) -> ListPageRecord:
    return ListPageRecord(
        url=row["url"],
        lang=row["lang"],
        section=row["section"],
        page=int(row["page"]),
        etag=row["etag"],
        last_modified=row["last_modified"],
        digest=row["digest"],
    )

