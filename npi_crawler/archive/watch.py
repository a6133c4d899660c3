"""What the monitor's rules, section joins and held alerts read and write.

- Rules: the documents rules are matched against (title, body, the text of the article's PDFs as
  ``pdf_texts`` holds it now), and ``watch_rules``, each rule's baseline (like ``watch_scopes``).
- Joins: an article listed in a section after its first diff (a row of ``article_sections`` that
  its ``new`` event did not know) becomes a ``joined`` event once.
- Holds: events of a diff that tripped the layout alarm are held (``events.held_at``) instead of
  alerted, then released (``released_at``) by the first healthy diff.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from npi_crawler.archive.db import ArchiveBase
from npi_crawler.rules.matching import Document

_DOCUMENTS = """
    SELECT a.url, a.lang, a.title, a.published, coalesce(a.body, '') AS body,
      (SELECT json_group_array(section) FROM
         (SELECT section FROM article_sections WHERE article_url = a.url ORDER BY section)) AS sections
    FROM articles a WHERE {where} ORDER BY a.rowid
"""
_PDF_TEXTS = """
    SELECT p.article_url, p.url, t.text FROM pdfs p
    JOIN pdf_texts t ON t.url = p.url JOIN articles a ON a.url = p.article_url
    WHERE t.text IS NOT NULL AND {where} ORDER BY p.article_url, p.position
"""


class WatchStore(ArchiveBase):
    # -- rules ----------------------------------------------------------------------------------
    def rule_documents(self, urls: Iterable[str] | None = None) -> list[Document]:
        """The articles at ``urls`` (None: every live article) as the rule matcher reads them."""
        if urls is None:
            where, params = "a.removed_at IS NULL", {}
        else:
            where, params = "a.url IN (SELECT value FROM json_each(:urls))", {"urls": json.dumps(list(urls))}
        pdfs: dict[str, list[tuple[str, str]]] = {}
        for article_url, pdf_url, text in self.conn.execute(_PDF_TEXTS.format(where=where), params):
            pdfs.setdefault(article_url, []).append((pdf_url, text))
        return [
            Document(
                url=row["url"],
                lang=row["lang"],
                sections=tuple(json.loads(row["sections"])),
                title=row["title"] or "",
                body=row["body"],
                pdfs=tuple(pdfs.get(row["url"], ())),
                published=row["published"],
            )
            for row in self.db.query(_DOCUMENTS.format(where=where), params)
        ]

    def watched_rules(self) -> set[str]:
        return {r[0] for r in self.conn.execute("SELECT name FROM watch_rules")}

    def add_watched_rule(self, name: str, now: str, run_id: int | None) -> None:
        """Know the rule from now; its baseline covers what runs up to ``run_id`` listed."""
        with self.atomic() as conn:
            conn.execute(
                "INSERT INTO watch_rules (name, since, baseline_event_id, baseline_run_id) "
                "VALUES (:name, :now, (SELECT coalesce(max(id), 0) FROM events), :run_id)",
                {"name": name, "now": now, "run_id": run_id},
            )

    # -- joins ----------------------------------------------------------------------------------
    def unrecorded_joins(self, busy: int) -> list[tuple[str, str, int | None]]:
        """(article URL, section, run id) of live articles listed in a section after their ``new``
        event, with no ``joined`` event for it yet. A crawl still running keeps its listings."""
        return list(
            self.conn.execute(
                "SELECT s.article_url, s.section, s.first_run_id FROM article_sections s "
                "JOIN events e ON e.kind = 'new' AND e.article_url = s.article_url "
                "JOIN articles a ON a.url = s.article_url "
                "WHERE a.removed_at IS NULL AND coalesce(s.first_run_id, 0) != :busy "
                "AND s.section NOT IN (SELECT value FROM json_each(e.sections)) "
                "AND NOT EXISTS (SELECT 1 FROM events j WHERE j.kind = 'joined' "
                "AND j.article_url = s.article_url AND j.section = s.section) "
                "ORDER BY s.rowid",
                {"busy": busy},
            )
        )

    # -- held alerts ----------------------------------------------------------------------------
    def hold_events(self, event_ids: list[int], now: str) -> None:
        with self.atomic() as conn:
            conn.executemany(
                "UPDATE events SET held_at = :now WHERE id = :id", [{"now": now, "id": e} for e in event_ids]
            )

    def held_events(self, *, degraded_notes: Iterable[str] = ()) -> list[tuple[int, str, str, str | None]]:
        """(event id, kind, article URL, section) of events held and not yet released; with
        ``degraded_notes``, only those whose article is now stored without any of these notes."""
        return list(
            self.conn.execute(
                "SELECT e.id, e.kind, e.article_url, e.section FROM events e JOIN articles a ON a.url = e.article_url "
                "WHERE e.held_at IS NOT NULL AND e.released_at IS NULL AND NOT EXISTS (SELECT 1 FROM "
                "json_each(coalesce(a.parse_notes, '[]')) WHERE value IN (SELECT value FROM json_each(:notes))) "
                "ORDER BY e.id",
                {"notes": json.dumps(sorted(degraded_notes))},
            )
        )

    def release_held(self, event_ids: list[int], now: str) -> None:
        with self.atomic() as conn:
            conn.executemany(
                "UPDATE events SET released_at = :now WHERE id = :id", [{"now": now, "id": e} for e in event_ids]
            )

    def held_count(self) -> int:
        return int(self.one("SELECT count(*) FROM events WHERE held_at IS NOT NULL AND released_at IS NULL"))

    def held_urls(self, degraded_notes: Iterable[str]) -> list[str]:
        """Live articles with a held event whose stored version came through one of the parser's
        ``degraded_notes`` (fallbacks): the next crawl fetches them again for a clean version."""
        return [
            r[0]
            for r in self.conn.execute(
                "SELECT DISTINCT a.url FROM events e JOIN articles a ON a.url = e.article_url "
                "WHERE e.held_at IS NOT NULL AND e.released_at IS NULL AND a.removed_at IS NULL "
                "AND EXISTS (SELECT 1 FROM json_each(coalesce(a.parse_notes, '[]')) "
                "WHERE value IN (SELECT value FROM json_each(:notes))) ORDER BY a.url",
                {"notes": json.dumps(sorted(degraded_notes))},
            )
        ]
