"""The outbox: ``alerts`` (one per message to send) and ``deliveries`` (one per alert and channel).

A delivery is claimed (``sending``, by host:pid) in a committed transaction before it is sent and
marked ``sent`` in its own commit right after the channel accepted it (monitor/delivery.py).

An article reaches a channel once, whichever alert announces it (``ANNOUNCEMENTS``: a rule, a
section it joined later, ``--send-latest``): the delivery of an announcing alert carries the
article's URL (``deliveries.announces``), and a unique index allows one delivery per (article,
channel) that is being sent, sent, or sent without an answer (migration 011). A claim that the
index refuses is an article the channel has, or is being sent by another process right now.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from npi_crawler.archive.db import ArchiveBase, row_id, stamp, utcnow

ANNOUNCEMENTS = ("new", "joined")  # alert kinds that announce an article: once per article and channel


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
            "parts": json.dumps(message["parts"], ensure_ascii=False) if message.get("parts") else None,
        }
        with self.atomic() as conn:
            cur = conn.execute(
                "INSERT INTO alerts (created, run_id, kind, event_id, article_url, title, body, tags, rules, parts, "
                "status, attempts) VALUES (:now, :run_id, :kind, :event_id, :url, :title, :body, :tags, :rules, "
                ":parts, 'pending', 0)",
                params,
            )
            if event_id is not None:
                conn.execute("UPDATE events SET alerted = 1 WHERE id = :id", {"id": event_id})
        return {"id": row_id(cur), "kind": kind, "article_url": message.get("url"), **message}

    def channel_key(self, *, create: bool = True) -> bytes:
        """The key channel ids are made with, kept beside the archive (archive/channelkey.py)."""
        from npi_crawler.archive.channelkey import channel_key

        return channel_key(self.path, create=create)

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

    def failing_channels(self) -> set[str]:
        """Channel ids whose last attempt at a pending alert failed: channels in a failure
        episode (monitor/trouble.py tells the admin channels when one starts)."""
        sql = (
            "SELECT DISTINCT d.channel FROM deliveries d JOIN alerts a ON a.id = d.alert_id "
            "WHERE d.status = 'failed' AND a.status = 'pending'"
        )
        return {r[0] for r in self.conn.execute(sql)}

    def announced(self) -> set[tuple[str, str]]:
        """(article URL, channel id) of every article a channel has had (sent, or sent without an
        answer), whichever alert announced it: what the index keeps once."""
        sql = "SELECT announces, channel FROM deliveries WHERE announces IS NOT NULL AND status IN ('sent', 'unknown')"
        return {(r[0], r[1]) for r in self.conn.execute(sql)}

    def claim_deliveries(
        self,
        alert_ids: list[int],
        channel: str,
        label: str,
        claimant: str,
        *,
        lapse_seconds: int,
        alive: Callable[[str | None], bool],
        announces: Mapping[int, str] | None = None,
    ) -> tuple[list[int], list[int]]:
        """Mark (alert, channel) pairs ``sending`` by ``claimant`` in one committed transaction.

        Returns (mine, covered): the alert ids this process may send (not sent, not claimed
        within the last ``lapse_seconds`` by a process that ``alive(claimant)`` says may still be
        sending), and those that announce (``announces``: alert id -> article URL) an article the
        channel has had, or gets in this very claim: they count as delivered to it."""
        now = dt.datetime.now(dt.timezone.utc)
        claim = {"channel": channel, "label": label, "now": stamp(now), "claimant": claimant}
        fresh = stamp(now - dt.timedelta(seconds=lapse_seconds))

        def busy(row: Any) -> bool:
            return row[0] == "sending" and (row[1] or "") > fresh and alive(row[2])

        mine: list[int] = []
        covered: list[int] = []
        with self.atomic() as conn:
            for alert_id in alert_ids:
                key = {"alert": alert_id, "channel": channel, "url": (announces or {}).get(alert_id)}
                row = conn.execute(
                    "SELECT status, last_attempt, claimed_by FROM deliveries WHERE alert_id = :alert AND channel = :channel",
                    key,
                ).fetchone()
                if row and (row[0] in ("sent", "unknown") or busy(row)):
                    continue
                outcome = _claim(conn, {**claim, **key}, mine, busy)
                if outcome == "mine":
                    mine.append(alert_id)
                elif outcome == "covered":
                    covered.append(alert_id)
        return mine, covered

    def record_deliveries(
        self, alert_ids: list[int], channel: str, *, ok: bool | None, error: str | None, completed: Iterable[int] = ()
    ) -> None:
        """The outcome of one send to ``channel`` of these alerts, committed at once (``ok`` None:
        sent without an answer, status ``unknown``), with the alerts it ``completed`` (every channel
        they go to has them now) marked ``sent`` in the same transaction."""
        now = utcnow()
        with self.atomic() as conn:
            conn.executemany(
                "UPDATE alerts SET status = 'sent', sent_at = :now WHERE id = :id AND status = 'pending'",
                [{"now": now, "id": i} for i in completed],
            )
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
                "UPDATE alerts SET status = 'sent', sent_at = :now WHERE id = :id AND status = 'pending'",
                [{"now": now, "id": i} for i in sent],
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


_UPSERT = (
    "INSERT INTO deliveries (alert_id, channel, label, status, attempts, last_attempt, claimed_by, announces) "
    "VALUES (:alert, :channel, :label, 'sending', 0, :now, :claimant, :url) "
    "ON CONFLICT (alert_id, channel) DO UPDATE SET status = 'sending', "
    "last_attempt = excluded.last_attempt, claimed_by = excluded.claimed_by, announces = excluded.announces"
)
_HOLDER = (
    "SELECT status, last_attempt, claimed_by, alert_id FROM deliveries WHERE announces = :url AND channel = :channel "
    "AND status IN ('sending', 'sent', 'unknown')"
)


def _claim(conn: sqlite3.Connection, params: dict[str, Any], mine: list[int], busy: Callable[[Any], bool]) -> str:
    """Claim one (alert, channel) delivery, ``sending`` by this claimant now: ``mine``. When the
    unique index refuses it (the alert's article is on this channel already): ``covered`` if the
    channel has it, or gets it from an alert claimed just before (``mine``: one digest); ``busy``
    if another live process is sending it now; a claim that lapsed (its process died) gives way."""
    try:
        conn.execute(_UPSERT, params)
        return "mine"
    except sqlite3.IntegrityError:
        holder = conn.execute(_HOLDER, params).fetchone()
        if holder is None:
            raise
    if holder[0] in ("sent", "unknown") or holder[3] in mine:
        return "covered"
    if busy(holder):
        return "busy"
    conn.execute(
        "UPDATE deliveries SET status = 'failed', last_error = 'claim lapsed' WHERE alert_id = :holder AND channel = :channel",
        {"holder": holder[3], "channel": params["channel"]},
    )
    conn.execute(_UPSERT, params)
    return "mine"
