"""Articles and what hangs off them: sections, authors, PDF links and earlier versions."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from npi_crawler.archive.db import ArchiveBase, row_id, utcnow
from npi_crawler.archive.records import ArticleRecord, WarcPointer
from npi_crawler.archive.warcrecords import link_warc


@dataclass
class StoreResult:
    status: str  # "new", "updated" or "unchanged"
    revision_id: int | None = None


def content_hash(
    title: str | None, published: str | None, body: str, pdfs: Sequence[str], authors: Sequence[str]
) -> str:
    """What counts as the article's content: an edit to any of these is a new revision."""
    canonical = json.dumps([title, published, body, list(pdfs), list(authors)], ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def article_filters(
    *,
    langs: Iterable[str] | None = None,
    sections: Iterable[str] | None = None,
    since: str | None = None,
    until: str | None = None,
    include_removed: bool = False,
    author: str | None = None,
) -> tuple[list[str], dict[str, Any]]:
    """SQL conditions (over ``articles a``) and their named parameters for the filters every
    reader offers: language, section, publication date range (``until`` inclusive; a prefix such
    as ``2021`` or ``2021-06`` covers the whole year or month), live articles only by default,
    and an author (a name or part of one, as the article or the expert's page gives it; spaces
    and case of Latin letters ignored)."""
    where: list[str] = [] if include_removed else ["a.removed_at IS NULL"]
    params: dict[str, Any] = {}
    for name, values, sql in (
        ("lang", list(langs or ()), "a.lang IN ({})"),
        # EXISTS probes the (article_url, section) key per row; IN (SELECT ...) would first list
        # every article of the section, ~25 ms a search on 100,000 articles whatever the limit.
        (
            "section",
            list(sections or ()),
            "EXISTS (SELECT 1 FROM article_sections s WHERE s.article_url = a.url AND s.section IN ({}))",
        ),
    ):
        if values:
            keys = [f"f_{name}{i}" for i in range(len(values))]
            where.append(sql.format(", ".join(f":{k}" for k in keys)))
            params.update(zip(keys, values, strict=True))
    if since:
        where.append("a.published >= :f_since")
        params["f_since"] = since
    if until:
        where.append("substr(a.published, 1, :f_until_len) <= :f_until")
        params.update(f_until=until, f_until_len=len(until))
    if author is not None:
        where.append(_AUTHOR_SQL)
        name = "".join(author.split())
        params["f_author"] = "%" + name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return where, params


# Names are stored whitespace-folded (one plain space), so removing spaces on both sides makes
# 山田花子 find 山田 花子 and "nakasone taro" find Taro Nakasone's "NAKASONE Taro" too.
_AUTHOR_SQL = (
    "EXISTS (SELECT 1 FROM authors au LEFT JOIN experts e ON e.url = au.profile_url WHERE au.article_url = a.url "
    "AND (replace(au.name, ' ', '') LIKE :f_author ESCAPE '\\' OR replace(e.name, ' ', '') LIKE :f_author ESCAPE '\\'))"
)


_EXPORT_SQL = """
    SELECT a.url, a.lang, a.title, a.published, a.body, a.first_seen, a.last_seen, a.removed_at,
      (SELECT json_group_array(section) FROM
         (SELECT section FROM article_sections WHERE article_url = a.url ORDER BY section)) AS sections,
      (SELECT json_group_array(name) FROM
         (SELECT name FROM authors WHERE article_url = a.url ORDER BY position)) AS authors,
      (SELECT json_group_array(url) FROM
         (SELECT url FROM pdfs WHERE article_url = a.url ORDER BY position)) AS pdfs
    FROM articles a
    {where}
    ORDER BY a.published IS NULL, a.published DESC, a.url
"""


# last_seen is moved on by a listing once a UTC day (see add_listings).
_EARLIER_DAY = "substr(last_seen, 1, 10) < substr(:now, 1, 10)"


# One row per stored version: the earlier ones (``revisions``, in the order they were replaced),
# then the current one (``articles``). A version was stored when the one before it was replaced
# (the first one: when the article was first seen), by the run that replaced it.
_VERSIONS_SQL = """
    WITH chosen AS (SELECT a.url, a.lang, a.published, a.first_seen, a.first_run_id, a.removed_at
                    FROM articles a {where}),
    versions AS (
      SELECT r.article_url AS url, r.id AS seq, r.title, r.published, r.body, r.pdfs, r.authors,
             r.replaced_at, r.run_id AS replaced_run_id
      FROM revisions r JOIN chosen c ON c.url = r.article_url
      UNION ALL
      SELECT a.url, NULL, a.title, a.published, a.body,
        (SELECT json_group_array(url) FROM
           (SELECT url FROM pdfs WHERE article_url = a.url ORDER BY position)),
        (SELECT json_group_array(name) FROM
           (SELECT name FROM authors WHERE article_url = a.url ORDER BY position)),
        NULL, NULL
      FROM articles a JOIN chosen c ON c.url = a.url
    )
    SELECT v.url, c.lang, row_number() OVER w AS version, v.title, v.published, v.body, v.pdfs, v.authors,
      coalesce(lag(v.replaced_at) OVER w, c.first_seen) AS stored_at,
      CASE WHEN row_number() OVER w = 1 THEN c.first_run_id ELSE lag(v.replaced_run_id) OVER w END
        AS stored_run_id,
      v.replaced_at, v.replaced_run_id, c.removed_at
    FROM versions v JOIN chosen c ON c.url = v.url
    WINDOW w AS (PARTITION BY v.url ORDER BY v.seq IS NULL, v.seq)
    ORDER BY c.published IS NULL, c.published DESC, v.url, version
"""

VERSION_FIELDS = (
    "url",
    "lang",
    "version",
    "title",
    "published",
    "authors",
    "body",
    "pdfs",
    "stored_at",
    "stored_run_id",
    "replaced_at",
    "replaced_run_id",
)


class ArticleStore(ArchiveBase):
    """Writes of the crawl and reads of every reader, for articles."""

    # -- what the spider needs to know ----------------------------------------------------------
    def known_urls(self) -> set[str]:
        return {r[0] for r in self.conn.execute("SELECT url FROM articles")}

    def known_memberships(self) -> set[tuple[str, str]]:
        return {(r[0], r[1]) for r in self.conn.execute("SELECT article_url, section FROM article_sections")}

    def validators(self) -> dict[str, tuple[str | None, str | None]]:
        """ETag and Last-Modified of every live article, for conditional GETs."""
        rows = self.conn.execute("SELECT url, etag, last_modified FROM articles WHERE removed_at IS NULL")
        return {url: (etag, lm) for url, etag, lm in rows}

    def parse_notes(self, url: str) -> list[str] | None:
        """The parser notes stored with an article (None when it is not archived)."""
        row = self.conn.execute("SELECT parse_notes FROM articles WHERE url = :url", {"url": url}).fetchone()
        return None if row is None else json.loads(row[0] or "[]")

    # -- writes ---------------------------------------------------------------------------------
    def store_article(self, article: ArticleRecord, *, run_id: int | None, now: str | None = None) -> StoreResult:
        """Insert or update one parsed article, atomically, with the pointer to its WARC record
        (``article.warc``, see archive/warcrecords.py) when there is one.

        An edit keeps the previous version in ``revisions``. A page that reappears after a
        removal is live again.
        """
        row: dict[str, Any] = {
            "url": article.url,
            "lang": article.lang,
            "title": article.title,
            "published": article.published,
            "body": article.body,
            "hash": content_hash(
                article.title, article.published, article.body, article.pdfs, [a.name for a in article.authors]
            ),
            "now": now or utcnow(),
            "run_id": run_id,
            "etag": article.etag,
            "last_modified": article.last_modified,
            "notes": json.dumps(list(article.notes)),
        }
        with self.atomic() as conn:
            old = conn.execute("SELECT content_hash FROM articles WHERE url = :url", row).fetchone()
            result = StoreResult("new" if old is None else "unchanged" if old[0] == row["hash"] else "updated")
            if result.status == "new":
                _insert_article(conn, row)
            else:
                if result.status == "updated":
                    result.revision_id = _keep_revision(conn, row)
                _update_article(conn, row)
            if result.status != "unchanged":
                _replace_links(conn, article.url, article.pdfs, article.authors)
            link_warc(conn, article.warc, url=article.url, kind="article", content_hash=row["hash"])
        return result

    def add_listing(self, url: str, section: str, *, run_id: int | None, now: str | None = None) -> bool:
        """Record that ``url`` is listed in ``section``; True when that membership is new."""
        return self.add_listings([url], section, run_id=run_id, now=now) == 1

    def add_listings(self, urls: list[str], section: str, *, run_id: int | None, now: str | None = None) -> int:
        """Record that ``urls`` (one list page) are listed in ``section``, in one transaction;
        returns how many of these memberships are new.

        ``last_seen`` (of the membership and of the article) moves on once a day, to the first
        sighting of the day: a run every few minutes that finds nothing new then writes nothing
        for the articles it lists (it rewrote every listed article's row)."""
        now = now or utcnow()
        new = 0
        with self.atomic() as conn:
            for url in urls:
                params = {"url": url, "section": section, "now": now, "run_id": run_id}
                inserted = conn.execute(
                    "INSERT OR IGNORE INTO article_sections (article_url, section, first_seen, last_seen, first_run_id) "
                    "VALUES (:url, :section, :now, :now, :run_id)",
                    params,
                ).rowcount
                new += inserted
                if not inserted:
                    conn.execute(
                        f"UPDATE article_sections SET last_seen = :now WHERE article_url = :url AND section = :section "
                        f"AND {_EARLIER_DAY}",
                        params,
                    )
                conn.execute(f"UPDATE articles SET last_seen = :now WHERE url = :url AND {_EARLIER_DAY}", params)
        return new

    def touch_article(self, url: str, now: str | None = None, warc: WarcPointer | None = None) -> None:
        """A conditional GET answered 304 (``warc``: its revisit record), or a page kept as
        stored (its response record): the article is still there as stored."""
        with self.atomic() as conn:
            conn.execute(
                "UPDATE articles SET last_seen = :now, last_fetched = :now WHERE url = :url",
                {"now": now or utcnow(), "url": url},
            )
            link_warc(conn, warc, url=url, kind="article")

    def mark_removed(self, url: str, status: int, now: str | None = None, warc: WarcPointer | None = None) -> bool:
        """The article's own page answered 404/410 (``warc``: that answer's record). True when it
        was live until now."""
        with self.atomic() as conn:
            cur = conn.execute(
                "UPDATE articles SET removed_at = :now, removed_status = :status, last_fetched = :now "
                "WHERE url = :url AND removed_at IS NULL",
                {"now": now or utcnow(), "status": status, "url": url},
            )
            link_warc(conn, warc, url=url, kind="article")
            return cur.rowcount == 1

    # -- reads ----------------------------------------------------------------------------------
    def article_counts(self) -> tuple[int, int]:
        """(live articles, removed articles)."""
        row = self.conn.execute("SELECT count(*) - count(removed_at), count(removed_at) FROM articles").fetchone()
        return int(row[0]), int(row[1])

    def iter_articles(self, *, url: str | None = None, **filters: Any) -> Iterator[dict[str, Any]]:
        """Every article in export shape, newest first (then by URL); undated ones last.
        ``filters``: ``article_filters``' (langs, sections, since, until, include_removed,
        author); with ``include_removed`` each record has ``removed_at``. ``url``: that one
        article only, removed or not."""
        include_removed = bool(filters.pop("include_removed", False))
        where, params = _selection(url, include_removed, filters)
        sql = _EXPORT_SQL.format(where=where)
        for row in self.db.query(sql, params):
            record = {
                "url": row["url"],
                "lang": row["lang"],
                "title": row["title"],
                "published": row["published"],
                "sections": json.loads(row["sections"]),
                "authors": json.loads(row["authors"]),
                "body": row["body"],
                "pdfs": json.loads(row["pdfs"]),
                "first_seen": row["first_seen"],
                "last_seen": row["last_seen"],
            }
            if include_removed:
                record["removed_at"] = row["removed_at"]
            yield record

    def iter_versions(
        self, *, include_removed: bool = False, url: str | None = None, **filters: Any
    ) -> Iterator[dict[str, Any]]:
        """Every stored version of every article the filters select (``iter_articles``' langs,
        sections, since, until: they apply to the article as it is now), oldest version first;
        articles in ``iter_articles``' order.

        Keys: ``VERSION_FIELDS`` (the current version has no ``replaced_at``/``replaced_run_id``),
        plus ``removed_at`` with ``include_removed``. ``url``: that one article only."""
        where, params = _selection(url, include_removed, filters)
        sql = _VERSIONS_SQL.format(where=where)
        for row in self.db.query(sql, params):
            record = {key: row[key] for key in VERSION_FIELDS}
            record["pdfs"] = json.loads(row["pdfs"] or "[]")
            record["authors"] = json.loads(row["authors"] or "[]")
            if include_removed:
                record["removed_at"] = row["removed_at"]
            yield record

    def find_article(self, *urls: str) -> dict[str, Any] | None:
        """The article row stored under any of ``urls`` (a URL as given, then canonical)."""
        for url in urls:
            rows = self.rows("SELECT * FROM articles WHERE url = :url", {"url": url})
            if rows:
                return rows[0]
        return None


def _selection(url: str | None, include_removed: bool, filters: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The WHERE clause (over ``articles a``) of a reader's selection: ``article_filters``, or
    the one article at ``url``, removed or not."""
    where, params = article_filters(include_removed=include_removed or url is not None, **filters)
    if url is not None:
        where.append("a.url = :f_url")
        params["f_url"] = url
    return ("WHERE " + " AND ".join(where) if where else ""), params


def _insert_article(conn: sqlite3.Connection, row: dict[str, Any]) -> None:
    conn.execute(
        "INSERT INTO articles (url, lang, title, published, body, content_hash, first_seen, last_seen, "
        "last_fetched, last_changed, first_run_id, etag, last_modified, parse_notes) VALUES (:url, :lang, "
        ":title, :published, :body, :hash, :now, :now, :now, :now, :run_id, :etag, :last_modified, :notes)",
        row,
    )


def _keep_revision(conn: sqlite3.Connection, row: dict[str, Any]) -> int:
    """Copy the stored version of ``row['url']`` into ``revisions`` before it is replaced."""
    pdfs = [r[0] for r in conn.execute("SELECT url FROM pdfs WHERE article_url = :url ORDER BY position", row)]
    names = [r[0] for r in conn.execute("SELECT name FROM authors WHERE article_url = :url ORDER BY position", row)]
    cur = conn.execute(
        "INSERT INTO revisions (article_url, run_id, replaced_at, title, published, body, pdfs, authors, "
        "content_hash) SELECT url, :run_id, :now, title, published, body, :pdfs, :authors, content_hash "
        "FROM articles WHERE url = :url",
        {**row, "pdfs": json.dumps(pdfs), "authors": json.dumps(names, ensure_ascii=False)},
    )
    return row_id(cur)


def _update_article(conn: sqlite3.Connection, row: dict[str, Any]) -> None:
    conn.execute(
        "UPDATE articles SET lang = :lang, title = :title, published = :published, body = :body, "
        "content_hash = :hash, last_seen = :now, last_fetched = :now, "
        "last_changed = CASE WHEN content_hash = :hash THEN last_changed ELSE :now END, "
        "etag = :etag, last_modified = :last_modified, removed_at = NULL, removed_status = NULL, "
        "parse_notes = :notes WHERE url = :url",
        row,
    )


def _replace_links(
    conn: sqlite3.Connection, url: str, pdfs: Sequence[str], authors: Iterable[tuple[str, str | None]]
) -> None:
    conn.execute("DELETE FROM pdfs WHERE article_url = :url", {"url": url})
    conn.executemany(
        "INSERT INTO pdfs (article_url, url, position) VALUES (?, ?, ?)",
        [(url, pdf, i) for i, pdf in enumerate(pdfs)],
    )
    conn.execute("DELETE FROM authors WHERE article_url = :url", {"url": url})
    conn.executemany(
        "INSERT INTO authors (article_url, position, name, profile_url) VALUES (?, ?, ?, ?)",
        [(url, i, name, profile) for i, (name, profile) in enumerate(authors)],
    )
