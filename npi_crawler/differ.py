"""The differ: facts in the archive that no event records yet become events, and alerts in the outbox.

Plain functions over the archive, outside Scrapy: they run the same after ``npi-crawler watch``,
after ``npi-crawler crawl`` or after a Scrapyd job. One diff is ONE transaction that writes the
events, the outbox rows and the ``runs.diffed_at`` marker together, so a process killed anywhere
leaves either all of them or none: the next diff redoes exactly what is missing, never twice
(a unique index makes each fact an event once).

- ``new``: an article with no ``new`` event (sections are read from ``article_sections`` at diff
  time, so memberships stored as separate listing items are all counted).
- ``changed``: a row of ``revisions`` with no event (title, date, body, PDFs or authors changed).
- ``removed``: an article whose own page answered 404/410 (``removed_at``) with no event for it.

Alerts go to the outbox only for events in a watched scope (a language and a section) that was
already watched before this diff: the first diff that watches a scope is its baseline and sends
nothing, so neither a first run nor widening ``--section`` later floods anyone.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from npi_crawler import notifier
from npi_crawler.parsing import LANGS
from npi_crawler.storage import Archive, utcnow

TITLE_NOTES = ("fallback/title_og", "fallback/title_tag", "miss/title")
DATE_NOTES = ("fallback/date_url", "fallback/date_any", "miss/date")


@dataclass(frozen=True)
class Scope:
    """What the watcher cares about: these sections, in these languages."""

    sections: tuple[str, ...] = ("policy",)
    langs: tuple[str, ...] = LANGS

    def pairs(self) -> list[tuple[str, str]]:
        return [(lang, section) for lang in self.langs for section in self.sections]


@dataclass
class DiffOptions:
    scope: Scope = field(default_factory=Scope)
    send_latest: int = 0  # on a baseline, still alert the latest K articles (a test message)
    alert_changes: bool = False
    alert_removals: bool = False
    admin_tag: str = "admin"
    layout_min_pages: int = 3  # article pages a run needs before their share of misses counts
    flood_limit: int = 25  # more article alerts than this in one diff become one summary message
    dry_run: bool = False  # do everything, then roll back


@dataclass
class DiffResult:
    runs: list[int] = field(default_factory=list)
    new: int = 0
    changed: int = 0
    removed: int = 0
    alerts: list[dict[str, Any]] = field(default_factory=list)  # outbox rows this diff created
    baseline_scopes: list[tuple[str, str]] = field(default_factory=list)
    baseline_articles: int = 0  # live articles in the newly watched scopes
    archived: int = 0  # live articles in the whole archive
    watched_scopes: int = 0
    layout_problems: list[str] = field(default_factory=list)
    flood: int = 0  # article alerts folded into one summary (over the flood limit)

    @property
    def baseline(self) -> bool:
        """Every watched scope was new: the first watch of this archive."""
        return bool(self.baseline_scopes) and len(self.baseline_scopes) == self.watched_scopes


class _Rollback(Exception):
    pass


def layout_problem(run: dict[str, Any], min_pages: int = 3) -> str | None:
    """One line saying why this run's pages look like a changed site layout, or None.

    A list page without entries is enough; for article pages, more than half of them (at least
    ``min_pages`` pages) lacking a title or a date from the documented selectors.
    """
    if run.get("status") == "failed":  # nothing was fetched: the site is down, not redesigned
        return None
    stats = json.loads(run.get("stats") or "{}")
    empty = int(stats.get("npi/parse/miss/list_entries", 0))
    if empty:
        return f"run {run['id']}: {empty} list page(s) had no entries"
    pages = int(stats.get("npi/article/pages", 0))
    bad = max(
        sum(int(stats.get(f"npi/parse/{k}", 0)) for k in TITLE_NOTES),
        sum(int(stats.get(f"npi/parse/{k}", 0)) for k in DATE_NOTES),
    )
    if pages >= min_pages and bad * 2 > pages:
        return f"run {run['id']}: {bad} of {pages} article pages had no title or date where expected"
    return None


def runs_to_diff(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Runs not diffed yet. The latest run is skipped while still ``running`` (a crawl in
    progress); an older ``running`` one was killed and is diffed like any other."""
    conn.row_factory = sqlite3.Row
    try:
        rows = conn.execute(
            "SELECT * FROM runs WHERE diffed_at IS NULL AND "
            "(status != 'running' OR id < (SELECT max(id) FROM runs)) ORDER BY id"
        ).fetchall()
        return [dict(r) for r in rows]
    finally:
        conn.row_factory = None


def _sections(conn: sqlite3.Connection, url: str) -> list[str]:
    return [
        r[0]
        for r in conn.execute(
            "SELECT section FROM article_sections WHERE article_url = ? ORDER BY section", [url]
        )
    ]


def _article(conn: sqlite3.Connection, url: str) -> dict[str, Any]:
    row = conn.execute(
        "SELECT url, lang, title, published, body FROM articles WHERE url = ?", [url]
    ).fetchone()
    return {
        "url": row[0],
        "lang": row[1],
        "title": row[2],
        "published": row[3],
        "body": row[4] or "",
        "sections": _sections(conn, url),
    }


def _record(conn: sqlite3.Connection, now: str, kind: str, run_id: int | None, article: dict, **extra) -> int:
    cur = conn.execute(
        "INSERT INTO events (at, run_id, kind, article_url, lang, title, sections, revision_id, removed_at, alerted) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
        [
            now,
            run_id,
            kind,
            article["url"],
            article["lang"],
            article["title"],
            json.dumps(article["sections"]),
            extra.get("revision_id"),
            extra.get("removed_at"),
        ],
    )
    return int(cur.lastrowid)


def _enqueue(
    conn: sqlite3.Connection, now: str, run_id: int | None, event_id: int | None, kind: str, message: dict
) -> dict[str, Any]:
    cur = conn.execute(
        "INSERT INTO alerts (created, run_id, kind, event_id, article_url, title, body, tags, status, attempts) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0)",
        [
            now,
            run_id,
            kind,
            event_id,
            message.get("url"),
            message["title"],
            message["body"],
            ",".join(message["tags"]),
        ],
    )
    if event_id is not None:
        conn.execute("UPDATE events SET alerted = 1 WHERE id = ?", [event_id])
    return {"id": int(cur.lastrowid), "kind": kind, "article_url": message.get("url"), **message}


def diff(archive: Archive, options: DiffOptions | None = None, now: str | None = None) -> DiffResult:
    """Record every fact not yet an event, enqueue the alerts they call for, mark the runs diffed.

    All in one transaction (rolled back at the end with ``options.dry_run``).
    """
    options = options or DiffOptions()
    now = now or utcnow()
    result = DiffResult(watched_scopes=len(options.scope.pairs()))
    try:
        with archive.transaction() as conn:
            _diff(conn, options, now, result)
            if options.dry_run:
                raise _Rollback
    except _Rollback:
        pass
    return result


def _diff(conn: sqlite3.Connection, options: DiffOptions, now: str, result: DiffResult) -> None:
    scope = options.scope
    runs = runs_to_diff(conn)
    result.runs = [r["id"] for r in runs]
    latest_run = result.runs[-1] if result.runs else None
    for run in runs:
        if problem := layout_problem(run, options.layout_min_pages):
            result.layout_problems.append(problem)
    held = bool(result.layout_problems)
    # A crawl still running: its articles wait for the next diff (their listings may still come).
    last = conn.execute("SELECT id, status FROM runs ORDER BY id DESC LIMIT 1").fetchone()
    busy = last[0] if last and last[1] == "running" and last[0] not in result.runs else -1

    # 1. Facts without events become events.
    new_events = []
    for (url,) in conn.execute(
        "SELECT url FROM articles a WHERE NOT EXISTS "
        "(SELECT 1 FROM events e WHERE e.kind = 'new' AND e.article_url = a.url) "
        "AND coalesce(a.first_run_id, 0) != ? ORDER BY rowid",
        [busy],
    ).fetchall():
        article = _article(conn, url)
        run_id = conn.execute("SELECT first_run_id FROM articles WHERE url = ?", [url]).fetchone()[0]
        new_events.append((_record(conn, now, "new", run_id, article), article))
    changed_events = []
    for rev_id, url, run_id in conn.execute(
        "SELECT r.id, r.article_url, r.run_id FROM revisions r WHERE NOT EXISTS "
        "(SELECT 1 FROM events e WHERE e.kind = 'changed' AND e.revision_id = r.id) "
        "AND coalesce(r.run_id, 0) != ? ORDER BY r.id",
        [busy],
    ).fetchall():
        article = _article(conn, url)
        changed_events.append((_record(conn, now, "changed", run_id, article, revision_id=rev_id), article))
    removed_events = []
    if not held:  # a run that tripped the layout alarm records no removal
        for url, removed_at in conn.execute(
            "SELECT url, removed_at FROM articles a WHERE removed_at IS NOT NULL AND NOT EXISTS "
            "(SELECT 1 FROM events e WHERE e.kind = 'removed' AND e.article_url = a.url "
            "AND e.removed_at = a.removed_at)"
        ).fetchall():
            article = _article(conn, url)
            event_id = _record(conn, now, "removed", latest_run, article, removed_at=removed_at)
            removed_events.append((event_id, article))
    result.new, result.changed, result.removed = len(new_events), len(changed_events), len(removed_events)

    # 2. Scopes watched for the first time: this diff is their baseline.
    watched = {(r[0], r[1]) for r in conn.execute("SELECT lang, section FROM watch_scopes").fetchall()} & set(
        scope.pairs()
    )
    # A baseline needs something to stand on: not a crawl that reached nothing, not garbage.
    crawled = conn.execute("SELECT 1 FROM runs WHERE status IN ('ok', 'partial') LIMIT 1").fetchone()
    max_event = conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]
    for lang, section in scope.pairs():
        if (lang, section) not in watched and crawled and not held:
            conn.execute(
                "INSERT INTO watch_scopes (lang, section, since, baseline_event_id) VALUES (?, ?, ?, ?)",
                [lang, section, now, max_event],
            )
            result.baseline_scopes.append((lang, section))
    result.archived = conn.execute("SELECT count(*) FROM articles WHERE removed_at IS NULL").fetchone()[0]
    if result.baseline_scopes:
        result.baseline_articles = conn.execute(
            "SELECT count(DISTINCT a.url) FROM articles a JOIN article_sections s ON s.article_url = a.url "
            f"WHERE a.removed_at IS NULL AND (a.lang || '/' || s.section) IN ({','.join('?' * len(result.baseline_scopes))})",
            [f"{lang}/{section}" for lang, section in result.baseline_scopes],
        ).fetchone()[0]

    def in_watched(article: dict) -> list[str]:
        return [s for s in scope.sections if s in article["sections"] and (article["lang"], s) in watched]

    # 3. Alerts, unless this diff's runs look like garbage.
    if not held:
        wanted: list[tuple[int, str, dict]] = []
        for kind, events, on in (
            ("new", new_events, True),
            ("changed", changed_events, options.alert_changes),
            ("removed", removed_events, options.alert_removals),
        ):
            wanted += [
                (event_id, kind, article) for event_id, article in events if on and in_watched(article)
            ]
        messages = [
            (event_id, kind, notifier.format_article(a, kind, in_watched(a))) for event_id, kind, a in wanted
        ]
        if options.flood_limit and len(messages) > options.flood_limit:
            # Far more at once than a think tank publishes (URLs changed, lists reorganised):
            # one summary instead of a flood; the events are all recorded.
            message = notifier.format_flood([m for _e, _k, m in messages], options.flood_limit)
            result.alerts.append(_enqueue(conn, now, latest_run, None, "flood", message))
            result.flood = len(messages)
            conn.executemany("UPDATE events SET alerted = 1 WHERE id = ?", [(e,) for e, _k, _m in messages])
        else:
            for event_id, kind, message in messages:
                result.alerts.append(_enqueue(conn, now, latest_run, event_id, kind, message))
        if options.send_latest and result.baseline_scopes:
            _send_latest(conn, now, latest_run, options, result)

    # 4. The layout alarm: one attention message per episode (not again while it lasts).
    if held:
        previous = conn.execute(
            "SELECT diff_outcome FROM runs WHERE diffed_at IS NOT NULL ORDER BY id DESC LIMIT 1"
        ).fetchone()
        if not previous or previous[0] != "layout_break":
            message = notifier.format_attention(result.layout_problems, options.admin_tag)
            result.alerts.append(_enqueue(conn, now, latest_run, None, "attention", message))
    outcome = "layout_break" if held else ("baseline" if result.baseline else "ok")
    if result.runs:
        conn.execute(
            f"UPDATE runs SET diffed_at = ?, diff_outcome = ? WHERE id IN ({','.join('?' * len(result.runs))})",
            [now, outcome, *result.runs],
        )


def _send_latest(conn, now: str, run_id, options: DiffOptions, result: DiffResult) -> None:
    """The latest K articles of the newly watched scopes, as a test of the channels."""
    keys = [f"{lang}/{section}" for lang, section in result.baseline_scopes]
    rows = conn.execute(
        "SELECT DISTINCT a.url FROM articles a JOIN article_sections s ON s.article_url = a.url "
        f"WHERE a.removed_at IS NULL AND (a.lang || '/' || s.section) IN ({','.join('?' * len(keys))}) "
        "AND NOT EXISTS (SELECT 1 FROM alerts al WHERE al.kind = 'new' AND al.article_url = a.url) "
        "ORDER BY a.published IS NULL, a.published DESC, a.first_seen DESC, a.url LIMIT ?",
        [*keys, options.send_latest],
    ).fetchall()
    for (url,) in rows:
        article = _article(conn, url)
        event = conn.execute("SELECT id FROM events WHERE kind = 'new' AND article_url = ?", [url]).fetchone()
        sections = [s for s in options.scope.sections if s in article["sections"]]
        message = notifier.format_article(article, "new", sections)
        result.alerts.append(_enqueue(conn, now, run_id, event[0] if event else None, "new", message))
