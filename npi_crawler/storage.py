"""The archive: one SQLite file, its schema, migrations and every read and write of it.

Schema creation goes through sqlite-utils (tables, indexes, FTS5 with triggers); the hot-path
writes are plain parameterized SQL inside one explicit transaction per article, so an article, its
sections, authors, PDFs and revision are stored together or not at all.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from npi_crawler.parsing import SECTIONS

SECTION_NAMES = {
    "diplomacy": ("外交・安全保障", "Diplomacy and Security"),
    "industry": ("経済安全保障・産業", "Industry and Trade"),
    "economy": ("経済・社会", "Economy and Society"),
    "technology": ("科学技術", "Science and Technology"),
    "government": ("憲政", "Constitutional Politics"),
    "policy": ("政策提言", "Policy Proposals"),
}

BUSY_TIMEOUT_MS = 30_000


class ArchiveError(Exception):
    """The archive cannot be used; the message is one line that says what to do."""


def utcnow() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def content_hash(
    title: str | None, published: str | None, body: str, pdfs: list[str], authors: list[str]
) -> str:
    """What counts as the article's content: an edit to any of these is a new revision."""
    canonical = json.dumps([title, published, body, pdfs, authors], ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# -- migrations -----------------------------------------------------------------------------------


def _m001_initial(db: sqlite_utils.Database) -> None:
    db["sections"].create({"slug": str, "name_ja": str, "name_en": str}, pk="slug")
    db["sections"].insert_all(
        [{"slug": s, "name_ja": SECTION_NAMES[s][0], "name_en": SECTION_NAMES[s][1]} for s in SECTIONS]
    )
    db["runs"].create(
        {
            "id": int,
            "started": str,
            "finished": str,
            "mode": str,
            "base_url": str,
            "langs": str,
            "sections": str,
            "status": str,
            "requests": int,
            "responses": int,
            "list_pages": int,
            "articles_new": int,
            "articles_updated": int,
            "articles_unchanged": int,
            "articles_not_modified": int,
            "articles_removed": int,
            "errors": int,
            "warnings": int,
            "stats": str,
        },
        pk="id",
        not_null={"started", "mode", "status"},
        defaults={"status": "running"},
    )
    db["articles"].create(
        {
            "url": str,
            "lang": str,
            "title": str,
            "published": str,
            "body": str,
            "content_hash": str,
            "first_seen": str,
            "last_seen": str,
            "last_fetched": str,
            "last_changed": str,
            "first_run_id": int,
            "etag": str,
            "last_modified": str,
            "removed_at": str,
            "removed_status": int,
            "parse_notes": str,
        },
        pk="url",
        not_null={"lang", "first_seen", "last_seen"},
        foreign_keys=[("first_run_id", "runs", "id")],
    )
    db["article_sections"].create(
        {"article_url": str, "section": str, "first_seen": str, "last_seen": str, "first_run_id": int},
        pk=("article_url", "section"),
        foreign_keys=[("section", "sections", "slug")],
    )
    db["authors"].create(
        {"article_url": str, "position": int, "name": str, "profile_url": str},
        pk=("article_url", "position"),
        foreign_keys=[("article_url", "articles", "url")],
    )
    db["pdfs"].create(
        {"article_url": str, "url": str, "position": int},
        pk=("article_url", "url"),
        foreign_keys=[("article_url", "articles", "url")],
    )
    db["revisions"].create(
        {
            "id": int,
            "article_url": str,
            "run_id": int,
            "replaced_at": str,
            "title": str,
            "published": str,
            "body": str,
            "pdfs": str,
            "authors": str,
            "content_hash": str,
        },
        pk="id",
        foreign_keys=[("article_url", "articles", "url"), ("run_id", "runs", "id")],
    )
    db["run_errors"].create(
        {"id": int, "run_id": int, "at": str, "url": str, "kind": str, "message": str},
        pk="id",
        foreign_keys=[("run_id", "runs", "id")],
    )
    db["articles"].create_index(["published"])
    db["articles"].create_index(["lang", "published"])
    db["articles"].create_index(["first_run_id"])
    db["article_sections"].create_index(["section"])
    db["revisions"].create_index(["article_url"])
    db["revisions"].create_index(["run_id"])
    db["run_errors"].create_index(["run_id"])
    # trigram: FTS5's default tokenizer does not split Japanese, which has no spaces between
    # words; trigrams match any substring of three or more characters in either language.
    db["articles"].enable_fts(["title", "body"], create_triggers=True, tokenize="trigram")


def _m002_change_monitor(db: sqlite_utils.Database) -> None:
    """The change monitor (issue 4): events the differ found, the scopes it watches, the outbox of
    alerts and their per-channel deliveries. See docs/alerts.md."""
    db.execute("ALTER TABLE runs ADD COLUMN diffed_at TEXT")
    db.execute("ALTER TABLE runs ADD COLUMN diff_outcome TEXT")
    db["events"].create(
        {
            "id": int,
            "at": str,
            "run_id": int,
            "kind": str,
            "article_url": str,
            "lang": str,
            "title": str,
            "sections": str,
            "revision_id": int,
            "removed_at": str,
            "alerted": int,
        },
        pk="id",
        not_null={"at", "kind", "article_url"},
    )
    # The differ finds events by what has no event yet; this index makes each fact an event once.
    db.execute(
        "CREATE UNIQUE INDEX events_once ON events "
        "(kind, article_url, coalesce(revision_id, 0), coalesce(removed_at, ''))"
    )
    db["events"].create_index(["run_id"])
    db["watch_scopes"].create(
        {"lang": str, "section": str, "since": str, "baseline_event_id": int}, pk=("lang", "section")
    )
    db["alerts"].create(
        {
            "id": int,
            "created": str,
            "run_id": int,
            "kind": str,
            "event_id": int,
            "article_url": str,
            "title": str,
            "body": str,
            "tags": str,
            "status": str,
            "attempts": int,
            "last_error": str,
            "last_attempt": str,
            "sent_at": str,
        },
        pk="id",
        not_null={"created", "kind", "title", "status"},
        defaults={"status": "pending", "attempts": 0},
    )
    db["alerts"].create_index(["status"])
    db["deliveries"].create(
        {
            "alert_id": int,
            "channel": str,
            "label": str,
            "status": str,
            "attempts": int,
            "last_error": str,
            "last_attempt": str,
            "sent_at": str,
            "claimed_by": str,
        },
        pk=("alert_id", "channel"),
        foreign_keys=[("alert_id", "alerts", "id")],
    )


def _m003_research(db: sqlite_utils.Database) -> None:
    """PDF text (issue 5): one row per PDF URL, searchable through its own trigram FTS5 index."""
    db["pdf_texts"].create(
        {
            "url": str,
            "status": str,
            "error": str,
            "etag": str,
            "last_modified": str,
            "content_type": str,
            "size": int,
            "sha256": str,
            "pages": int,
            "text": str,
            "first_fetched": str,
            "last_fetched": str,
            "run_id": int,
        },
        pk="url",
        not_null={"status"},
    )
    db["pdfs"].create_index(["url"])
    db["pdf_texts"].enable_fts(["text"], create_triggers=True, tokenize="trigram")


# Append-only: a step, once released, is never edited; a new step changes what came before.
MIGRATIONS: list[tuple[str, Callable[[sqlite_utils.Database], None]]] = [
    ("001_initial", _m001_initial),
    ("002_change_monitor", _m002_change_monitor),
    ("003_research", _m003_research),
]
SCHEMA_VERSION = len(MIGRATIONS)


# -- the archive ----------------------------------------------------------------------------------


@dataclass
class StoreResult:
    status: str  # "new", "updated" or "unchanged"
    revision_id: int | None = None


def integrity_check(path: str | os.PathLike, *, quick: bool = False) -> list[str]:
    """``PRAGMA integrity_check`` (or the faster ``quick_check``) on a read-only connection, which
    changes nothing in the file it examines: ``["ok"]`` when sound. Raises sqlite3.DatabaseError
    when the file cannot be read as SQLite at all."""
    conn = sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        return [r[0] for r in conn.execute("PRAGMA quick_check(1)" if quick else "PRAGMA integrity_check")]
    finally:
        conn.close()


def article_filters(
    *,
    langs: Iterable[str] | None = None,
    sections: Iterable[str] | None = None,
    since: str | None = None,
    until: str | None = None,
    include_removed: bool = False,
) -> tuple[list[str], list[Any]]:
    """SQL conditions (over ``articles a``) and their parameters for the filters every reader
    offers: language, section, publication date range (``until`` inclusive; a prefix such as
    ``2021`` or ``2021-06`` covers the whole year or month), live articles only by default."""
    where: list[str] = [] if include_removed else ["a.removed_at IS NULL"]
    params: list[Any] = []
    langs, sections = list(langs or ()), list(sections or ())
    if langs:
        where.append(f"a.lang IN ({','.join('?' * len(langs))})")
        params += langs
    if sections:
        where.append(
            f"a.url IN (SELECT article_url FROM article_sections WHERE section IN ({','.join('?' * len(sections))}))"
        )
        params += sections
    if since:
        where.append("a.published >= ?")
        params.append(since)
    if until:
        where.append("substr(a.published, 1, ?) <= ?")
        params += [len(until), until]
    return where, params


class Archive:
    """An NPI archive in one SQLite file. Open with ``Archive.open(path)``."""

    def __init__(self, db: sqlite_utils.Database, path: str):
        self.db = db
        self.path = path

    # -- opening ----------------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike, *, create: bool = True, migrate: bool = True) -> Archive:
        """Open (and, unless ``create`` is False, create) the archive at ``path``.

        Raises ArchiveError when the file is not a SQLite database or cannot be opened.
        """
        path = os.fspath(path)
        if path != ":memory:":
            file = Path(path)
            if file.is_dir():
                raise ArchiveError(f"{path} is a directory; give --db a file path such as npi.db")
            if not file.exists():
                if not create:
                    raise ArchiveError(f"{path} does not exist; run 'npi-crawler crawl --db {path}' first")
                if not file.parent.exists():
                    raise ArchiveError(
                        f"the folder {file.parent} does not exist; create it or choose another --db"
                    )
                # The archive may hold notification state; keep it readable by its owner only.
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        try:
            conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA schema_version").fetchone()
            if path != ":memory:":
                conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.DatabaseError as exc:
            raise ArchiveError(
                f"{path} is not an npi-crawler archive ({exc}); give --db a new or existing archive file"
            ) from None
        archive = cls(sqlite_utils.Database(conn), path)
        if migrate:
            archive.migrate()
        return archive

    def close(self) -> None:
        self.db.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; IMMEDIATE so that a concurrent writer waits instead of failing."""
        conn = self.db.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")

    def applied_migrations(self) -> list[str]:
        if not self.db["migrations"].exists():
            return []
        return [r[0] for r in self.db.execute("SELECT name FROM migrations ORDER BY name")]

    def migrate(self) -> list[str]:
        """Apply every migration step this archive has not had yet; returns their names."""
        applied = set(self.applied_migrations())
        existing = set(self.db.table_names())
        if not applied and existing - {"migrations"} and "articles" not in existing:
            raise ArchiveError(
                f"{self.path} is a SQLite file but not an npi-crawler archive; choose another --db"
            )
        done = []
        for name, step in MIGRATIONS:
            if name in applied:
                continue
            with self.transaction():
                if not self.db["migrations"].exists():
                    self.db.execute("CREATE TABLE migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
                step(self.db)
                self.db.execute("INSERT INTO migrations (name, applied_at) VALUES (?, ?)", [name, utcnow()])
            done.append(name)
        return done

    # -- what the spider needs to know -------------------------------------------------------
    def known_urls(self) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT url FROM articles")}

    def known_memberships(self) -> set[tuple[str, str]]:
        return {(r[0], r[1]) for r in self.db.execute("SELECT article_url, section FROM article_sections")}

    def validators(self) -> dict[str, tuple[str | None, str | None]]:
        """ETag and Last-Modified of every live article, for conditional GETs."""
        rows = self.db.execute("SELECT url, etag, last_modified FROM articles WHERE removed_at IS NULL")
        return {url: (etag, lm) for url, etag, lm in rows}

    def last_run_complete(self) -> bool:
        """Whether the latest run finished cleanly. A killed or failed run may have left pages
        unwalked, so the next run walks every list page instead of stopping early."""
        row = self.db.execute("SELECT status FROM runs ORDER BY id DESC LIMIT 1").fetchone()
        return row is not None and row[0] == "ok"

    # -- runs -------------------------------------------------------------------------------------
    def start_run(self, *, mode: str, base_url: str, langs: Iterable[str], sections: Iterable[str]) -> int:
        with self.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO runs (started, mode, base_url, langs, sections, status) "
                "VALUES (?, ?, ?, ?, ?, 'running')",
                [utcnow(), mode, base_url, ",".join(langs), ",".join(sections)],
            )
            return int(cur.lastrowid)

    def finish_run(self, run_id: int, *, status: str, counts: dict[str, int], stats: dict[str, Any]) -> None:
        columns = [
            "requests",
            "responses",
            "list_pages",
            "articles_new",
            "articles_updated",
            "articles_unchanged",
            "articles_not_modified",
            "articles_removed",
            "errors",
            "warnings",
        ]
        values = [int(counts.get(c, 0)) for c in columns]
        assignments = ", ".join(f"{c} = ?" for c in columns)
        with self.transaction() as conn:
            conn.execute(
                f"UPDATE runs SET finished = ?, status = ?, stats = ?, {assignments} WHERE id = ?",
                [utcnow(), status, json.dumps(stats, default=str, sort_keys=True), *values, run_id],
            )

    def run(self, run_id: int) -> dict[str, Any] | None:
        rows = list(self.db.query("SELECT * FROM runs WHERE id = ?", [run_id]))
        return rows[0] if rows else None

    def last_run(self) -> dict[str, Any] | None:
        rows = list(self.db.query("SELECT * FROM runs ORDER BY id DESC LIMIT 1"))
        return rows[0] if rows else None

    def record_error(self, run_id: int | None, url: str, kind: str, message: str) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO run_errors (run_id, at, url, kind, message) VALUES (?, ?, ?, ?, ?)",
                [run_id, utcnow(), url, kind, message[:2000]],
            )

    # -- articles ---------------------------------------------------------------------------------
    def store_article(
        self, article: dict[str, Any], *, run_id: int | None, now: str | None = None
    ) -> StoreResult:
        """Insert or update one parsed article (keys as ``items.ArticleItem``), atomically.

        An edit keeps the previous version in ``revisions``. A page that reappears after a
        removal is live again.
        """
        now = now or utcnow()
        article = {**article, "pdfs": list(dict.fromkeys(article["pdfs"]))}
        author_names = [name for name, _ in article["authors"]]
        digest = content_hash(
            article["title"], article["published"], article["body"], article["pdfs"], author_names
        )
        with self.transaction() as conn:
            old = conn.execute(
                "SELECT title, published, body, content_hash FROM articles WHERE url = ?", [article["url"]]
            ).fetchone()
            revision_id = None
            if old is None:
                status = "new"
                conn.execute(
                    "INSERT INTO articles (url, lang, title, published, body, content_hash, first_seen, "
                    "last_seen, last_fetched, last_changed, first_run_id, etag, last_modified, parse_notes) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        article["url"],
                        article["lang"],
                        article["title"],
                        article["published"],
                        article["body"],
                        digest,
                        now,
                        now,
                        now,
                        now,
                        run_id,
                        article.get("etag"),
                        article.get("last_modified"),
                        json.dumps(article.get("notes") or []),
                    ],
                )
            else:
                status = "unchanged" if old[3] == digest else "updated"
                if status == "updated":
                    old_pdfs = [
                        r[0]
                        for r in conn.execute(
                            "SELECT url FROM pdfs WHERE article_url = ? ORDER BY position", [article["url"]]
                        )
                    ]
                    old_authors = [
                        r[0]
                        for r in conn.execute(
                            "SELECT name FROM authors WHERE article_url = ? ORDER BY position",
                            [article["url"]],
                        )
                    ]
                    revision_id = conn.execute(
                        "INSERT INTO revisions (article_url, run_id, replaced_at, title, published, body, "
                        "pdfs, authors, content_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [
                            article["url"],
                            run_id,
                            now,
                            old[0],
                            old[1],
                            old[2],
                            json.dumps(old_pdfs),
                            json.dumps(old_authors, ensure_ascii=False),
                            old[3],
                        ],
                    ).lastrowid
                conn.execute(
                    "UPDATE articles SET lang = ?, title = ?, published = ?, body = ?, content_hash = ?, "
                    "last_seen = ?, last_fetched = ?, last_changed = CASE WHEN content_hash = ? "
                    "THEN last_changed ELSE ? END, etag = ?, last_modified = ?, removed_at = NULL, "
                    "removed_status = NULL, parse_notes = ? WHERE url = ?",
                    [
                        article["lang"],
                        article["title"],
                        article["published"],
                        article["body"],
                        digest,
                        now,
                        now,
                        digest,
                        now,
                        article.get("etag"),
                        article.get("last_modified"),
                        json.dumps(article.get("notes") or []),
                        article["url"],
                    ],
                )
            if status != "unchanged":
                conn.execute("DELETE FROM pdfs WHERE article_url = ?", [article["url"]])
                conn.executemany(
                    "INSERT INTO pdfs (article_url, url, position) VALUES (?, ?, ?)",
                    [(article["url"], pdf, i) for i, pdf in enumerate(article["pdfs"])],
                )
                conn.execute("DELETE FROM authors WHERE article_url = ?", [article["url"]])
                conn.executemany(
                    "INSERT INTO authors (article_url, position, name, profile_url) VALUES (?, ?, ?, ?)",
                    [
                        (article["url"], i, name, profile)
                        for i, (name, profile) in enumerate(article["authors"])
                    ],
                )
        return StoreResult(status, revision_id)

    def add_listing(self, url: str, section: str, *, run_id: int | None, now: str | None = None) -> bool:
        """Record that ``url`` is listed in ``section``; True when that membership is new."""
        now = now or utcnow()
        with self.transaction() as conn:
            cur = conn.execute(
                "UPDATE article_sections SET last_seen = ? WHERE article_url = ? AND section = ?",
                [now, url, section],
            )
            if cur.rowcount == 0:
                conn.execute(
                    "INSERT INTO article_sections (article_url, section, first_seen, last_seen, first_run_id) "
                    "VALUES (?, ?, ?, ?, ?)",
                    [url, section, now, now, run_id],
                )
            conn.execute("UPDATE articles SET last_seen = ? WHERE url = ?", [now, url])
            return cur.rowcount == 0

    def touch_article(self, url: str, now: str | None = None) -> None:
        """A conditional GET answered 304: the article is still there as stored."""
        with self.transaction() as conn:
            conn.execute(
                "UPDATE articles SET last_seen = ?, last_fetched = ? WHERE url = ?",
                [now or utcnow(), now or utcnow(), url],
            )

    def mark_removed(self, url: str, status: int, now: str | None = None) -> bool:
        """The article's own page answered 404/410. True when it was live until now."""
        now = now or utcnow()
        with self.transaction() as conn:
            cur = conn.execute(
                "UPDATE articles SET removed_at = ?, removed_status = ?, last_fetched = ? "
                "WHERE url = ? AND removed_at IS NULL",
                [now, status, now, url],
            )
            return cur.rowcount == 1

    # -- reading ----------------------------------------------------------------------------------
    def iter_articles(
        self,
        *,
        langs: Iterable[str] | None = None,
        sections: Iterable[str] | None = None,
        since: str | None = None,
        until: str | None = None,
        include_removed: bool = False,
    ) -> Iterator[dict[str, Any]]:
        """Every article in export shape, newest first (then by URL); undated ones last."""
        where, params = article_filters(
            langs=langs, sections=sections, since=since, until=until, include_removed=include_removed
        )
        sql = f"""
            SELECT a.url, a.lang, a.title, a.published, a.body, a.first_seen, a.last_seen,
              (SELECT json_group_array(section) FROM
                 (SELECT section FROM article_sections WHERE article_url = a.url ORDER BY section)) AS sections,
              (SELECT json_group_array(name) FROM
                 (SELECT name FROM authors WHERE article_url = a.url ORDER BY position)) AS authors,
              (SELECT json_group_array(url) FROM
                 (SELECT url FROM pdfs WHERE article_url = a.url ORDER BY position)) AS pdfs
            FROM articles a
            {"WHERE " + " AND ".join(where) if where else ""}
            ORDER BY a.published IS NULL, a.published DESC, a.url
        """
        for row in self.db.query(sql, params):
            yield {
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
