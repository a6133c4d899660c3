"""The outbox's facts as data (issue 18): "once per article and channel" kept by ONE unique index
(migration 011) that delivery relies on, and a flood summary stored as data that delivery fits to
each channel without reading its text back. Library functions over real archive files, real
Apprise to a local endpoint."""

from __future__ import annotations

import os
import re
import socket
import sqlite3

import pytest

from npi_crawler.archive import Archive, utcnow
from npi_crawler.monitor.channels import bind, load_channels
from npi_crawler.monitor.delivery import DeliveryOptions, deliver
from npi_crawler.monitor.differ import DiffOptions, diff
from npi_crawler.rules.model import rules_from_table
from tests.endpoints import JsonSink
from tests.test_alert_content import baseline
from tests.test_monitor import article, run


def test_a_flood_summary_is_fitted_from_its_stored_parts_not_its_text(archive):
    baseline(archive)
    burst = [article() for _ in range(30)]
    run(archive, [(a, ["policy"]) for a in burst])
    diff(archive, DiffOptions(flood_limit=25))
    (row,) = archive.rows("SELECT parts FROM alerts WHERE kind = 'flood'")
    assert row["parts"] and '"more": 5' in row["parts"]
    archive.conn.execute("UPDATE alerts SET body = 'no list here to read back' WHERE kind = 'flood'")
    with JsonSink() as sink:
        (channel,) = load_channels([sink.url()])
        channel.server.body_maxlen, channel.server.overflow_amalgamate_title = 600, True
        assert deliver(archive, [channel]).alerts_sent == 1
        (post,) = sink.posts
    assert burst[0]["url"] in post["message"] and re.search(r"\.\.\. and \d+ more", post["message"])


def joined_alert(archive: Archive, url: str) -> int:
    """A second alert announcing the article at ``url`` (it joined a watched section)."""
    message = {
        "url": url,
        "title": "[NPI policy/en] Now in Policy Proposals: x",
        "body": url,
        "tags": ["all"],
    }
    return archive.enqueue_alert("2026-11-21T00:00:00Z", None, None, "joined", message)["id"]


def two_alerts_for_one_article(archive: Archive) -> tuple[dict, dict, int]:
    """A new article, its pending alert, and a second alert announcing it (it joined a section)."""
    baseline(archive)
    a = article()
    run(archive, [(a, ["policy"])])
    diff(archive)
    (first,) = archive.pending_alerts()
    return a, first, joined_alert(archive, a["url"])


def test_the_archive_refuses_a_second_delivery_of_one_article_to_one_channel(archive):
    a, first, second = two_alerts_for_one_article(archive)
    insert = "INSERT INTO deliveries (alert_id, channel, label, status, attempts, announces) VALUES (?, 'c', 'x', ?, 0, ?)"
    archive.conn.execute(insert, [first["id"], "sent", a["url"]])
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE constraint failed: deliveries.announces"):
        archive.conn.execute(insert, [second, "sending", a["url"]])
    archive.conn.execute(insert, [second, "failed", a["url"]])  # a failed try holds nothing
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE constraint failed: deliveries.announces"):
        archive.conn.execute("UPDATE deliveries SET status = 'sent' WHERE alert_id = ?", [second])


def test_two_pending_alerts_for_one_article_reach_a_channel_once_even_in_one_digest(archive):
    quantum = rules_from_table({"rule": [{"name": "quantum", "any": ["quantum"]}]}, "f")
    baseline(archive, rules=quantum)
    x = {**article(), "body": "Quantum sensing."}
    run(archive, [(x, ["technology"])])
    diff(archive, DiffOptions(rules=quantum))  # the rule's alert, pending: no channel yet
    run(archive, [])
    archive.add_listing(x["url"], "policy", run_id=None)
    diff(archive, DiffOptions(rules=quantum))  # it joined the watched section: a second alert
    assert [a["kind"] for a in archive.pending_alerts()] == ["new", "joined"]
    with JsonSink() as sink:
        result = deliver(archive, load_channels([sink.url()]), DeliveryOptions(digest=True))
        assert result.pending == 0 and result.alerts_sent == 2
        (post,) = sink.posts  # the digest held one article: sent as its alert
        assert post["title"] == f"[NPI technology/en] {x['title']}" and post["message"].endswith(x["url"])
        rows = archive.rows("SELECT status, announces FROM deliveries")
        assert rows == [{"status": "sent", "announces": x["url"]}]


@pytest.mark.parametrize("claimant, alive", [(f"{socket.gethostname()}:{os.getppid()}", True), ("gone:1", False)])
def test_an_article_another_process_is_sending_waits_and_a_lapsed_claim_gives_way(archive, claimant, alive):
    a, first, second = two_alerts_for_one_article(archive)
    with JsonSink() as sink:
        channels = load_channels([sink.url()])
        # a process (alive: this test's parent; or one that died) claimed the second alert's delivery
        archive.conn.execute(
            "INSERT INTO deliveries (alert_id, channel, label, status, attempts, last_attempt, claimed_by, announces) "
            "VALUES (?, ?, 'x', 'sending', 0, ?, ?, ?)",
            [second, bind(channels, archive.channel_key())[0].id, utcnow() if alive else "2000-01-01T00:00:00Z", claimant, a["url"]],
        )
        result = deliver(archive, channels)
    if alive:  # it is being sent right now: neither alert goes, both wait for the next run
        assert sink.posts == [] and result.pending == 2
    else:  # the first alert takes the article over; the second finds it delivered
        assert len(sink.posts) == 1 and result.pending == 0 and result.alerts_sent == 2
        rows = archive.rows("SELECT alert_id, status, last_error FROM deliveries ORDER BY alert_id")
        assert rows == [
            {"alert_id": first["id"], "status": "sent", "last_error": None},
            {"alert_id": second, "status": "failed", "last_error": "claim lapsed"},
        ]


def test_an_archive_from_before_the_index_keeps_its_deliveries(db_path):
    from npi_crawler.archive import MIGRATIONS, migrate_archive

    a = article()
    with Archive.connect(db_path) as old:
        migrate_archive(old, [step for step in MIGRATIONS if step[0] < "011"])
        run(old, [(a, ["policy"])])
        new, joined = (
            old.conn.execute(
                "INSERT INTO alerts (created, kind, article_url, title, body, tags, status) "
                "VALUES ('2026-11-21T00:00:00Z', ?, ?, 't', 'b', 'all', 'sent')",
                [kind, a["url"]],
            ).lastrowid
            for kind in ("new", "joined")
        )
        # that version sent the article twice to one channel (a kill in the delivery window)
        old.conn.executemany(
            "INSERT INTO deliveries (alert_id, channel, label, status, attempts) VALUES (?, 'c', 'x', 'sent', 1)",
            [(new,), (joined,)],
        )
    with Archive.open(db_path) as upgraded:
        rows = upgraded.rows("SELECT alert_id, status, announces FROM deliveries ORDER BY alert_id")
        assert rows == [
            {"alert_id": new, "status": "sent", "announces": a["url"]},
            {"alert_id": joined, "status": "sent", "announces": None},  # the repeat, kept as history
        ]
        assert upgraded.announced() == {(a["url"], "c")}
