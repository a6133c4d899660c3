"""The ``runs`` table (one row per crawl), ``run_errors`` (what failed in a run) and
``run_parse_notes`` (what a run's pages said of the site's layout: ``ParseHealth``)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from npi_crawler.archive.db import ArchiveBase, row_id, utcnow

# runs columns a finished crawl fills from its stats (see runstate.RunState).
RUN_COUNTS = (
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
)


@dataclass(frozen=True)
class ParseHealth:
    """What a run's pages said of the site's layout, built when the run closes: how many article
    and list pages it parsed, and for each parser note (``fallback/title_og``, ``miss/list_entries``,
    ``nomatch/title``: see npi_crawler/site/notes.py) on how many pages it was noted. The layout
    alarm (monitor.differ.layout_problem) reads it."""

    article_pages: int = 0
    list_pages: int = 0
    notes: Mapping[str, int] = field(default_factory=dict)

    def pages_with(self, notes: Iterable[str]) -> int:
        """Pages noted with any of ``notes`` (each note counts its pages; one page has one of a
        field's alternatives at most)."""
        return sum(self.notes.get(note, 0) for note in notes)

    def with_prefix(self, prefix: str) -> dict[str, int]:
        """The notes starting with ``prefix`` (``nomatch/``), the prefix removed, by pages."""
        return {note.removeprefix(prefix): n for note, n in self.notes.items() if note.startswith(prefix) and n}


class RunStore(ArchiveBase):
    """Runs and their errors."""

    def start_run(self, *, mode: str, base_url: str, langs: Iterable[str], sections: Iterable[str]) -> int:
        with self.atomic() as conn:
            cur = conn.execute(
                "INSERT INTO runs (started, mode, base_url, langs, sections, status) "
                "VALUES (:started, :mode, :base_url, :langs, :sections, 'running')",
                {
                    "started": utcnow(),
                    "mode": mode,
                    "base_url": base_url,
                    "langs": ",".join(langs),
                    "sections": ",".join(sections),
                },
            )
            return row_id(cur)

    def finish_run(self, run_id: int, *, status: str, counts: dict[str, int], stats: dict[str, Any]) -> None:
        assignments = ", ".join(f"{c} = :{c}" for c in RUN_COUNTS)
        params = {c: int(counts.get(c, 0)) for c in RUN_COUNTS}
        with self.atomic() as conn:
            conn.execute(
                f"UPDATE runs SET finished = :finished, status = :status, stats = :stats, {assignments} "
                "WHERE id = :id",
                {
                    **params,
                    "finished": utcnow(),
                    "status": status,
                    "stats": json.dumps(stats, default=str, sort_keys=True),
                    "id": run_id,
                },
            )

    def store_parse_health(self, run_id: int, health: ParseHealth) -> None:
        """The run's ``ParseHealth``: its article pages in ``runs``, its notes in ``run_parse_notes``."""
        with self.atomic() as conn:
            conn.execute(
                "UPDATE runs SET article_pages = :pages WHERE id = :id", {"pages": health.article_pages, "id": run_id}
            )
            conn.execute("DELETE FROM run_parse_notes WHERE run_id = :id", {"id": run_id})
            conn.executemany(
                "INSERT INTO run_parse_notes (run_id, note, pages) VALUES (?, ?, ?)",
                [(run_id, note, pages) for note, pages in sorted(health.notes.items()) if pages],
            )

    def parse_health(self, run_id: int) -> ParseHealth:
        row = self.conn.execute("SELECT article_pages, list_pages FROM runs WHERE id = :id", {"id": run_id}).fetchone()
        notes = self.conn.execute("SELECT note, pages FROM run_parse_notes WHERE run_id = :id", {"id": run_id})
        return ParseHealth(
            article_pages=int(row[0] or 0) if row else 0,
            list_pages=int(row[1] or 0) if row else 0,
            notes=dict(notes.fetchall()),
        )

    def run(self, run_id: int) -> dict[str, Any] | None:
        rows = self.rows("SELECT * FROM runs WHERE id = :id", {"id": run_id})
        return rows[0] if rows else None

    def last_run(self) -> dict[str, Any] | None:
        rows = self.rows("SELECT * FROM runs ORDER BY id DESC LIMIT 1")
        return rows[0] if rows else None

    def recent_runs(self, limit: int) -> list[dict[str, Any]]:
        return self.rows("SELECT * FROM runs ORDER BY id DESC LIMIT :limit", {"limit": limit})

    def last_run_complete(self) -> bool:
        """Whether the latest run finished cleanly. A killed or failed run may have left pages
        unwalked, so the next run walks every list page instead of stopping early."""
        return self.one("SELECT status FROM runs ORDER BY id DESC LIMIT 1") == "ok"

    def mark_killed_runs(self) -> int:
        """Runs left ``running`` by a process that is gone (SIGKILL, a power cut): ``killed``.
        Only for a caller holding the run lock, which no running run can then hold."""
        with self.atomic() as conn:
            return conn.execute(
                "UPDATE runs SET status = 'killed', finished = coalesce(finished, :now) WHERE status = 'running'",
                {"now": utcnow()},
            ).rowcount

    def record_error(self, run_id: int | None, url: str, kind: str, message: str) -> None:
        with self.atomic() as conn:
            conn.execute(
                "INSERT INTO run_errors (run_id, at, url, kind, message) VALUES (:run_id, :at, :url, :kind, :message)",
                {"run_id": run_id, "at": utcnow(), "url": url, "kind": kind, "message": message[:2000]},
            )

    def failed_before(self, run_id: int | None, url: str, kind: str) -> bool:
        """Whether the run before ``run_id`` recorded the same failure (``kind``) of ``url``."""
        if run_id is None:
            return False
        return (
            self.one(
                "SELECT 1 FROM run_errors WHERE run_id = (SELECT max(id) FROM runs WHERE id < :run) "
                "AND url = :url AND kind = :kind LIMIT 1",
                {"run": run_id, "url": url, "kind": kind},
            )
            is not None
        )

    def repeated_errors(self, run_id: int) -> set[tuple[str, str]]:
        """(url, kind) of the failures ``run_id`` recorded that the run before it recorded too."""
        rows = self.tuples(
            "SELECT url, kind FROM run_errors WHERE run_id = :run INTERSECT SELECT url, kind FROM run_errors "
            "WHERE run_id = (SELECT max(id) FROM runs WHERE id < :run)",
            {"run": run_id},
        )
        return {(url, kind) for url, kind in rows}

    def run_errors(self, run_id: int) -> list[dict[str, Any]]:
        return self.rows("SELECT * FROM run_errors WHERE run_id = :id ORDER BY id", {"id": run_id})
