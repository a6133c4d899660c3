"""What the differ reads and writes: runs to diff, facts without events, events, watched scopes.

The differ runs them inside its one transaction (``with archive.atomic():``), so a diff writes its
events, alerts and run markers together or not at all; each writer opens its own ``atomic()``
block too, so that called alone it is still all or nothing (a savepoint inside the differ's).
"""

from __future__ import annotations

import json
from typing import Any

from npi_crawler.archive.db import ArchiveBase, row_id


def _in(prefix: str, values: list[Any]) -> tuple[str, dict[str, Any]]:
    """``:p0, :p1, ...`` and their parameters, for an IN (...) list."""
    keys = [f"{prefix}{i}" for i in range(len(values))]
    return ", ".join(f":{k}" for k in keys), dict(zip(keys, values, strict=True))


class EventStore(ArchiveBase):
    def runs_to_diff(self) -> list[dict[str, Any]]:
        """Runs not diffed yet. The latest run is skipped while still ``running`` (a crawl in
        progress); an older ``running`` one was killed and is diffed like any other."""
        return self.rows(
            "SELECT * FROM runs WHERE diffed_at IS NULL AND "
            "(status != 'running' OR id < (SELECT max(id) FROM runs)) ORDER BY id"
        )

    def busy_run(self, diffed: list[int]) -> int:
        """The id of a crawl still running and not being diffed now (its articles wait), or -1."""
        row = self.conn.execute("SELECT id, status FROM runs ORDER BY id DESC LIMIT 1").fetchone()
        return row[0] if row and row[1] == "running" and row[0] not in diffed else -1

    def alert_article(self, url: str) -> dict[str, Any]:
        """An article as alerts show it, its sections read now (all its listings are stored),
        with its authors' names and its PDFs' URLs in page order."""
        row = self.rows(
            "SELECT url, lang, title, published, coalesce(body, '') AS body, first_run_id, "
            "(SELECT json_group_array(section) FROM (SELECT section FROM article_sections "
            "WHERE article_url = a.url ORDER BY section)) AS sections, "
            "(SELECT json_group_array(name) FROM (SELECT name FROM authors "
            "WHERE article_url = a.url ORDER BY position)) AS authors, "
            "(SELECT json_group_array(url) FROM (SELECT url FROM pdfs "
            "WHERE article_url = a.url ORDER BY position)) AS pdfs FROM articles a WHERE url = :url",
            {"url": url},
        )[0]
        for key in ("sections", "authors", "pdfs"):
            row[key] = json.loads(row[key])
        return row

    # -- facts without events -------------------------------------------------------------------
    def unrecorded_new(self, busy: int) -> list[str]:
        return [
            r[0]
            for r in self.conn.execute(
                "SELECT url FROM articles a WHERE NOT EXISTS "
                "(SELECT 1 FROM events e WHERE e.kind = 'new' AND e.article_url = a.url) "
                "AND coalesce(a.first_run_id, 0) != :busy ORDER BY rowid",
                {"busy": busy},
            )
        ]

    def unrecorded_revisions(self, busy: int) -> list[tuple[int, str, int | None]]:
        """(revision id, article URL, run id) of edits with no event yet."""
        return list(
            self.conn.execute(
                "SELECT r.id, r.article_url, r.run_id FROM revisions r WHERE NOT EXISTS "
                "(SELECT 1 FROM events e WHERE e.kind = 'changed' AND e.revision_id = r.id) "
                "AND coalesce(r.run_id, 0) != :busy ORDER BY r.id",
                {"busy": busy},
            )
        )

    def unrecorded_removals(self) -> list[tuple[str, str]]:
        """(article URL, removed_at) of removals with no event yet."""
        return list(
            self.conn.execute(
                "SELECT url, removed_at FROM articles a WHERE removed_at IS NOT NULL AND NOT EXISTS "
                "(SELECT 1 FROM events e WHERE e.kind = 'removed' AND e.article_url = a.url "
                "AND e.removed_at = a.removed_at)"
            )
        )

    def record_event(self, now: str, kind: str, run_id: int | None, article: dict[str, Any], **extra: Any) -> int:
        with self.atomic() as conn:
            cur = conn.execute(
                "INSERT INTO events (at, run_id, kind, article_url, lang, title, sections, revision_id, removed_at, "
                "section, alerted) VALUES (:at, :run_id, :kind, :url, :lang, :title, :sections, :revision_id, "
                ":removed_at, :section, 0)",
                {
                    "at": now,
                    "run_id": run_id,
                    "kind": kind,
                    "url": article["url"],
                    "lang": article["lang"],
                    "title": article["title"],
                    "sections": json.dumps(article["sections"]),
                    "revision_id": extra.get("revision_id"),
                    "removed_at": extra.get("removed_at"),
                    "section": extra.get("section"),
                },
            )
        return row_id(cur)

    def mark_alerted(self, event_ids: list[int]) -> None:
        with self.atomic() as conn:
            conn.executemany("UPDATE events SET alerted = 1 WHERE id = ?", [(e,) for e in event_ids])

    def new_event_id(self, url: str) -> int | None:
        return self.one("SELECT id FROM events WHERE kind = 'new' AND article_url = :url", {"url": url})

    # -- scopes and baselines -------------------------------------------------------------------
    def watched_scopes(self) -> set[tuple[str, str]]:
        return {(r[0], r[1]) for r in self.conn.execute("SELECT lang, section FROM watch_scopes")}

    def add_watched_scope(self, lang: str, section: str, now: str, run_id: int | None) -> None:
        """Watch (lang, section) from now; the baseline covers what runs up to ``run_id`` listed."""
        with self.atomic() as conn:
            conn.execute(
                "INSERT INTO watch_scopes (lang, section, since, baseline_event_id, baseline_run_id) "
                "VALUES (:lang, :section, :now, (SELECT coalesce(max(id), 0) FROM events), :run_id)",
                {"lang": lang, "section": section, "now": now, "run_id": run_id},
            )

    def baseline_run(self, diffed: list[int]) -> int | None:
        """The last run a baseline taken now covers: the last of ``diffed`` (the runs this diff
        covers), else the last run diffed before."""
        if diffed:
            return max(diffed)
        return self.one("SELECT max(id) FROM runs WHERE diffed_at IS NOT NULL")

    def baseline_listings(self, urls: list[str]) -> dict[str, tuple[set[str], set[str]]]:
        """For each of ``urls`` that belongs to a baseline although it was not archived then (its
        page could not be read): (the sections it was listed in by its scope's baseline, the rules
        whose baseline came after it was first listed)."""
        keys, params = _in("url", urls)
        found: dict[str, tuple[set[str], set[str]]] = {}
        for url, section in self.conn.execute(
            "SELECT s.article_url, s.section FROM article_sections s JOIN articles a ON a.url = s.article_url "
            "JOIN watch_scopes w ON w.lang = a.lang AND w.section = s.section "
            f"WHERE s.article_url IN ({keys}) AND s.first_run_id <= w.baseline_run_id",
            params,
        ):
            found.setdefault(url, (set(), set()))[0].add(section)
        for url, rule in self.conn.execute(
            "SELECT DISTINCT s.article_url, w.name FROM article_sections s JOIN watch_rules w "
            f"ON s.first_run_id <= w.baseline_run_id WHERE s.article_url IN ({keys})",
            params,
        ):
            found.setdefault(url, (set(), set()))[1].add(rule)
        return found

    def has_crawled(self) -> bool:
        """Whether any run reached the site: a baseline needs something to stand on."""
        return self.one("SELECT 1 FROM runs WHERE status IN ('ok', 'partial') LIMIT 1") is not None

    def live_count(self) -> int:
        return int(self.one("SELECT count(*) FROM articles WHERE removed_at IS NULL"))

    def _scope_condition(self, scopes: list[tuple[str, str]]) -> tuple[str, dict[str, Any]]:
        keys, params = _in("scope", [f"{lang}/{section}" for lang, section in scopes])
        return f"a.removed_at IS NULL AND (a.lang || '/' || s.section) IN ({keys})", params

    def scope_count(self, scopes: list[tuple[str, str]]) -> int:
        condition, params = self._scope_condition(scopes)
        return int(
            self.one(
                "SELECT count(DISTINCT a.url) FROM articles a JOIN article_sections s ON s.article_url = a.url "
                f"WHERE {condition}",
                params,
            )
        )

    def latest_unalerted(self, scopes: list[tuple[str, str]], limit: int) -> list[str]:
        """The newest live articles of ``scopes`` never alerted as new (for ``--send-latest``)."""
        condition, params = self._scope_condition(scopes)
        return [
            r[0]
            for r in self.conn.execute(
                "SELECT DISTINCT a.url FROM articles a JOIN article_sections s ON s.article_url = a.url "
                f"WHERE {condition} AND NOT EXISTS (SELECT 1 FROM alerts al WHERE al.kind = 'new' "
                "AND al.article_url = a.url) "
                "ORDER BY a.published IS NULL, a.published DESC, a.first_seen DESC, a.url LIMIT :limit",
                {**params, "limit": limit},
            )
        ]

    # -- run markers ----------------------------------------------------------------------------
    def last_diff_outcome(self) -> str | None:
        return self.one("SELECT diff_outcome FROM runs WHERE diffed_at IS NOT NULL ORDER BY id DESC LIMIT 1")

    def mark_diffed(self, run_ids: list[int], now: str, outcome: str) -> None:
        keys, params = _in("run", run_ids)
        with self.atomic() as conn:
            conn.execute(
                f"UPDATE runs SET diffed_at = :now, diff_outcome = :outcome WHERE id IN ({keys})",
                {**params, "now": now, "outcome": outcome},
            )
