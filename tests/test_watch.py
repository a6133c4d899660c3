"""``npi-crawler watch / notify / status`` end to end: the real CLI crawls the replica over HTTP on
127.0.0.1 and delivers through real Apprise to a local JSON endpoint; tests assert on what the
endpoint received."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys

import pytest

from tests.conftest import ROOT, run_cli
from tests.endpoints import JsonSink
from tests.site import new_article

pytestmark = pytest.mark.slow


@pytest.fixture
def sink():
    with JsonSink() as sink:
        yield sink


def watch(replica, db_path, sink, *extra, code=0):
    result = run_cli("watch", "--db", db_path, "--base-url", replica.url, "--notify", sink.url(), *extra)
    assert result.returncode == code, result.stdout + result.stderr
    return result


def query(db_path, sql, params=()):
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def publish(site, k=2):
    """k new proposals (alternating JA and EN), plus two articles outside the watched section."""
    proposals = [
        new_article(site, lang="ja" if i % 2 else "en", sections=["policy"], n=i) for i in range(1, k + 1)
    ]
    new_article(site, lang="en", sections=["technology"], n=50)
    new_article(site, lang="ja", sections=["economy"], n=51)
    return proposals


def test_baseline_then_exactly_the_new_proposals_then_nothing(replica, site, db_path, sink):
    first = watch(replica, db_path, sink)
    assert "baseline: 60 articles archived, no alerts sent" in first.stdout
    assert sink.posts == []
    proposals = publish(site, k=3)
    watch(replica, db_path, sink)
    assert len(sink.posts) == 3
    base = replica.url.rstrip("/")
    by_url = {base + a.path: a for a in proposals}
    for post in sink.posts:
        url = post["message"].splitlines()[-1]
        proposal = by_url.pop(url)
        assert post["title"] == f"[NPI policy/{proposal.lang}] {' '.join(proposal.title.split())}"
    assert by_url == {}
    watch(replica, db_path, sink)
    assert len(sink.posts) == 3
    status = run_cli("status", "--db", db_path)
    assert status.returncode == 0 and "healthy" in status.stdout
    assert "3/0/0" in status.stdout  # run 2: 3 alerts sent


def test_channel_down_for_two_runs_then_up_delivers_each_alert_once(replica, site, db_path, sink):
    watch(replica, db_path, sink)
    publish(site, k=2)
    sink.status = 500
    down = watch(replica, db_path, sink, "--max-attempts", "2", code=3)  # loud at the first failure
    assert "2 pending (0 stuck)" in down.stdout and "failed: json://127.0.0.1" in down.stdout
    assert "json://127.0.0.1 (no tags: every alert) refused 2 alert(s) this run" in down.stderr
    stuck = watch(replica, db_path, sink, "--max-attempts", "2", code=3)
    assert "stuck" in stuck.stderr
    assert run_cli("status", "--db", db_path, "--max-attempts", "2").returncode == 3
    sink.status = 200
    up = watch(replica, db_path, sink)
    assert "2 message(s) sent, 0 pending" in up.stdout
    watch(replica, db_path, sink)
    assert len(sink.posts) == 2 and len({p["title"] for p in sink.posts}) == 2 and sink.refused == 4
    assert run_cli("status", "--db", db_path, "--max-attempts", "2").returncode == 0


def test_edits_and_removals_are_recorded_not_alerted(replica, site, db_path, sink):
    watch(replica, db_path, sink)
    policy = sorted((a for a in site.live() if "policy" in a.sections), key=lambda a: a.path)
    old_title = " ".join(policy[0].title.split())
    site.edit(policy[0].path, title="A corrected title")
    site.remove(policy[1].path)
    watch(replica, db_path, sink, "--full")
    assert sink.posts == []
    events = query(db_path, "SELECT kind, article_url FROM events WHERE kind != 'new'")
    base = replica.url.rstrip("/")
    assert sorted(events) == [("changed", base + policy[0].path), ("removed", base + policy[1].path)]
    old = query(
        db_path,
        "SELECT r.title FROM events e JOIN revisions r ON r.id = e.revision_id WHERE e.kind = 'changed'",
    )
    assert old == [(old_title,)]


def test_layout_change_exits_3_with_one_attention_message_and_no_removals(replica, site, db_path, sink):
    watch(replica, db_path, sink)
    publish(site, k=1)
    site.layout = "redesign"
    broken = watch(replica, db_path, sink, code=3)
    assert broken.stderr.count("\n") == 1 and "layout seems to have changed" in broken.stderr
    assert [p["title"] for p in sink.posts] == ["npi-crawler needs attention"]
    watch(replica, db_path, sink, "--full", code=3)  # every known article re-fetched in the new layout
    assert len(sink.posts) == 1  # one message per episode, not one per run
    assert query(db_path, "SELECT count(*) FROM revisions") == [(0,)]  # the clean versions were kept
    assert query(db_path, "SELECT count(*) FROM events WHERE kind = 'removed'") == [(0,)]
    assert query(db_path, "SELECT count(*) FROM articles WHERE removed_at IS NOT NULL") == [(0,)]
    assert run_cli("status", "--db", db_path).returncode == 3


def test_crawl_then_notify_delivers_once(replica, site, db_path, sink, tmp_path):
    watch(replica, db_path, sink)
    (proposal,) = publish(site, k=1)
    crawled = run_cli("crawl", "--db", db_path, "--base-url", replica.url)
    assert crawled.returncode == 0 and sink.posts == []
    config = tmp_path / "alerts.yml"
    config.write_text(
        f"urls:\n  - {sink.url('policy')}:\n      tag: policy-ja\n  - {sink.url('en')}:\n      tag: en\n"
    )
    for _ in range(2):
        result = run_cli("notify", "--db", db_path, "--config", str(config))
        assert result.returncode == 0, result.stderr
    assert sink.titles("policy") == [f"[NPI policy/ja] {' '.join(proposal.title.split())}"]
    assert sink.titles("en") == []


def test_watch_killed_during_delivery_delivers_on_the_next_run_once(replica, site, db_path, sink):
    watch(replica, db_path, sink)
    publish(site, k=1)
    sink.hang = True
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "npi_crawler",
            "watch",
            "--db",
            db_path,
            "--base-url",
            replica.url,
            "--notify",
            sink.url(),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    try:
        assert sink.hit.wait(120), "watch never tried to deliver"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(60)
    assert query(db_path, "SELECT status FROM alerts") == [("pending",)]
    sink.hang = False
    sink.release.set()
    watch(replica, db_path, sink)
    watch(replica, db_path, sink)
    assert len(sink.posts) == 1


def test_dry_run_prints_sends_nothing_marks_nothing(replica, site, db_path, sink):
    watch(replica, db_path, sink)
    (proposal,) = publish(site, k=1)
    dry = watch(replica, db_path, sink, "--dry-run")
    title = " ".join(proposal.title.split())
    assert "1 message(s) would be sent" in dry.stdout and title in dry.stdout
    assert sink.posts == [] and query(db_path, "SELECT count(*) FROM alerts") == [(0,)]
    watch(replica, db_path, sink)
    assert [p["title"] for p in sink.posts] == [f"[NPI policy/ja] {title}"]


def test_bad_channel_is_one_line_before_any_crawl(replica, db_path):
    result = run_cli(
        "watch",
        "--db",
        db_path,
        "--base-url",
        replica.url,
        "--notify",
        "nosuch://alice:s3cr3tpw@example.com/t0k3n",
    )
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert "not a valid Apprise URL" in result.stderr
    assert "s3cr3tpw" not in result.stderr + result.stdout and "t0k3n" not in result.stderr
    assert replica.log == []


def test_alerts_held_by_the_layout_alarm_are_sent_once_with_clean_titles(replica, site, db_path, sink):
    watch(replica, db_path, sink)
    site.layout = "redesign-articles"  # article pages change layout; the lists do not
    proposals = publish(site, k=3)
    broken = watch(replica, db_path, sink, code=3)
    assert "held       3 alert(s) until a healthy run" in broken.stdout
    assert [p["title"] for p in sink.posts] == ["npi-crawler needs attention"]  # no article alert
    stored = query(db_path, "SELECT title FROM articles WHERE url LIKE '%/2026/11/%' ORDER BY url")
    assert {t for (t,) in stored} <= {"Nakasone Peace Institute", "中曽根康弘世界平和研究所"}
    status = run_cli("status", "--db", db_path)
    assert status.returncode == 3 and "3 alerts held since the layout alarm" in status.stdout
    watch(replica, db_path, sink, code=3)  # still broken: still held, nothing sent
    assert len(sink.posts) == 1
    site.layout = "normal"
    healed = watch(replica, db_path, sink)
    assert "released   3 event(s) held since the layout alarm" in healed.stdout
    expected = sorted(f"[NPI policy/{a.lang}] {' '.join(a.title.split())}" for a in proposals)
    assert sorted(p["title"] for p in sink.posts[1:]) == expected  # each once, with its clean title
    watch(replica, db_path, sink)
    assert len(sink.posts) == 4
    status = run_cli("status", "--db", db_path)
    assert status.returncode == 0 and "held since" not in status.stdout
    refetched = [p for m, p, s, h in replica.log if p in {a.path for a in proposals} and "If-None-Match" not in h]
    assert len(refetched) >= 3 * 3  # first fetch, the broken run's re-fetch, the healthy one's
