"""The outbox: ``alerts`` (one per message to send) and ``deliveries`` (one per alert and channel).

A delivery is claimed (``sending``, by host:pid) in a committed transaction before it is sent and
marked ``sent`` in its own commit right after the channel accepted it (monitor/delivery.py).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from npi_crawler.archive.db import ArchiveBase, row_id, stamp, utcnow


class Outbox(ArchiveBase):
    def enqueue_alert(
        self, now: str, run_id: int | None, event_id: int | None, kind: str, message: dict[str, Any]
    ) -> dict[str, Any]:
        """A new pending alert, atomically with its event counted as alerted (inside the differ's
        transaction, or its own)."""
        params = {
            "now": now,
            "run_id": run_id,
            "kind": kind,
            "event_id": event_id,
            "url": message.get("url"),
            "title": message["title"],
            "body": message["body"],
            "tags": ",".join(message["tags"]),
            "rules": ",".join(message.get("rules") or ()) or None,
        }
        with self.atomic() as conn:
            cur = conn.execute(
                "INSERT INTO alerts (created, run_id, kind, event_id, article_url, title, body, tags, rules, status, "
                "attempts) VALUES (:now, :run_id, :kind, :event_id, :url, :title, :body, :tags, :rules, 'pending', 0)",
                params,
            )
            if event_id is not None:
                conn.execute("UPDATE events SET alerted = 1 WHERE id = :id", {"id": event_id})
        return {"id": row_id(cur), "kind": kind, "article_url": message.get("url"), **message}

    def pending_alerts(self) -> list[dict[str, Any]]:
        return self.rows("SELECT * FROM alerts WHERE status = 'pending' ORDER BY id")

    def sent_deliveries(self) -> set[tuple[int, str]]:
        """(alert id, channel id) of every delivery not to send again: a channel accepted it, or
        it went out and no answer came (``unknown``: re-sent only by ``reopen_unknown``)."""
        sql = "SELECT alert_id, channel FROM deliveries WHERE status IN ('sent', 'unknown')"
        return {(r[0], r[1]) for r in self.conn.execute(sql)}

    def unknown_deliveries(self, limit: int = 5) -> list[dict[str, Any]]:
        """Deliveries of unknown outcome, newest first: (alert id, title, channel label, when)."""
        return self.rows(
            "SELECT d.alert_id, a.title, d.label, d.last_attempt FROM deliveries d JOIN alerts a ON a.id = d.alert_id "
            "WHERE d.status = 'unknown' ORDER BY d.last_attempt DESC, d.alert_id DESC LIMIT :limit",
            {"limit": limit},
        )

    def count_unknown_deliveries(self) -> int:
        return int(self.one("SELECT count(*) FROM deliveries WHERE status = 'unknown'"))

    def reopen_unknown(self) -> int:
        """Make every delivery of unknown outcome pending again (``notify --resend-unknown``):
        the next delivery sends it once more. Returns how many."""
        with self.atomic() as conn:
            conn.execute(
                "UPDATE alerts SET status = 'pending' WHERE status = 'sent' "
                "AND id IN (SELECT alert_id FROM deliveries WHERE status = 'unknown')"
            )
            return conn.execute("UPDATE deliveries SET status = 'failed' WHERE status = 'unknown'").rowcount

    def announced_elsewhere(self) -> set[tuple[int, str]]:
        """(pending alert id, channel id) where that channel was already sent another alert that
        announces the same article (``new`` or ``joined``): one article reaches a channel once,
        whichever rule, section or run announced it first."""
        return {
            (r[0], r[1])
            for r in self.conn.execute(
                "SELECT p.id, d.channel FROM alerts p "
                "JOIN alerts o ON o.article_url = p.article_url AND o.id != p.id AND o.kind IN ('new', 'joined') "
                "JOIN deliveries d ON d.alert_id = o.id AND d.status IN ('sent', 'unknown') "
                "WHERE p.status = 'pending' AND p.kind IN ('new', 'joined')"
            )
        }

    def claim_deliveries(
        self, alert_ids: list[int], channel: str, label: str, claimant: str, *, lapse_seconds: int, alive: Any
    ) -> list[int]:
        """Mark (alert, channel) pairs ``sending`` by ``claimant`` in one committed transaction and
        return the alert ids this process may send: not sent, and not claimed within the last
        ``lapse_seconds`` by a process that ``alive(claimant)`` says may still be sending."""
        now = dt.datetime.now(dt.timezone.utc)
        fresh = stamp(now - dt.timedelta(seconds=lapse_seconds))
        mine = []
        with self.atomic() as conn:
            for alert_id in alert_ids:
                key = {"alert": alert_id, "channel": channel}
                row = conn.execute(
                    "SELECT status, last_attempt, claimed_by FROM deliveries WHERE alert_id = :alert AND channel = :channel",
                    key,
                ).fetchone()
                if row and (row[0] in ("sent", "unknown") or (row[0] == "sending" and (row[1] or "") > fresh and alive(row[2]))):
                    continue
                conn.execute(
                    "INSERT INTO deliveries (alert_id, channel, label, status, attempts, last_attempt, claimed_by) "
                    "VALUES (:alert, :channel, :label, 'sending', 0, :now, :claimant) "
                    "ON CONFLICT (alert_id, channel) DO UPDATE SET status = 'sending', "
                    "last_attempt = excluded.last_attempt, claimed_by = excluded.claimed_by",
                    {**key, "label": label, "now": stamp(now), "claimant": claimant},
                )
                mine.append(alert_id)
        return mine

    def record_deliveries(self, alert_ids: list[int], channel: str, *, ok: bool | None, error: str | None) -> None:
        """The outcome of one send to ``channel`` of these alerts, committed at once (``ok`` None:
        sent without an answer, status ``unknown``)."""
        now = utcnow()
        with self.atomic() as conn:
            conn.executemany(
                "UPDATE deliveries SET status = :status, attempts = attempts + 1, last_error = :error, "
                "last_attempt = :now, sent_at = :sent_at WHERE alert_id = :alert AND channel = :channel",
                [
                    {
                        "status": "sent" if ok else "unknown" if ok is None else "failed",
                        "error": error or None,
                        "now": now,
                        "sent_at": now if ok else None,
                        "alert": alert_id,
                        "channel": channel,
                    }
                    for alert_id in alert_ids
                ],
            )

    def settle_alerts(self, *, unrouted: list[int], sent: list[int], failed: dict[int, str]) -> None:
        """After a delivery pass: alerts no channel takes, alerts every channel has, and failures."""
        now = utcnow()
        with self.atomic() as conn:
            conn.executemany("UPDATE alerts SET status = 'unrouted' WHERE id = ?", [(i,) for i in unrouted])
            conn.executemany(
                "UPDATE alerts SET status = 'sent', sent_at = :now WHERE id = :id", [{"now": now, "id": i} for i in sent]
            )
            conn.executemany(
                "UPDATE alerts SET attempts = attempts + 1, last_error = :error, last_attempt = :now WHERE id = :id",
                [{"error": error, "now": now, "id": i} for i, error in failed.items()],
            )

    def alert_backlog(self, max_attempts: int) -> tuple[int, int]:
        """(pending alerts, of which stuck: failed ``max_attempts`` times or more)."""
        row = self.conn.execute(
            "SELECT count(*), coalesce(sum(attempts >= :max), 0) FROM alerts WHERE status = 'pending'",
            {"max": max_attempts},
        ).fetchone()
        return int(row[0]), int(row[1])

    def alert_totals(self) -> dict[str, int]:
        return dict(self.conn.execute("SELECT status, count(*) FROM alerts GROUP BY status").fetchall())

    def alerts_per_run(self) -> dict[tuple[int, str], int]:
        return {
            (r[0], r[1]): r[2] for r in self.conn.execute("SELECT run_id, status, count(*) FROM alerts GROUP BY run_id, status")
        }

    def stuck_alerts(self, max_attempts: int, limit: int = 5) -> list[dict[str, Any]]:
        return self.rows(
            "SELECT id, title, attempts, last_error FROM alerts WHERE status = 'pending' AND attempts >= :max "
            "ORDER BY id LIMIT :limit",
            {"max": max_attempts, "limit": limit},
        )
