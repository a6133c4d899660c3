"""A stop is an input like any other (issue 10): SIGTERM and SIGINT end a crawl or a watch
within the stop bound with 143/130 and one line, the run is recorded as ``interrupted`` (never
``ok``), ``status`` says so, and the next plain run fetches everything that was missed; a second
signal does not wait; a stop during delivery neither loses nor repeats an alert; a run killed by
SIGKILL is marked ``killed`` by the next one. Real subprocesses over the replica on loopback."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT, export_rows, run_cli
from tests.endpoints import JsonSink
from tests.site import ReplicaServer, generate_site, new_article

pytestmark = pytest.mark.slow
ENV = {**os.environ, "PYTHONWARNINGS": "ignore"}


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "npi_crawler", *args], cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def runs(db_path: str) -> list[str]:
    conn = sqlite3.connect(db_path)
    try:
        return [r[0] for r in conn.execute("SELECT status FROM runs ORDER BY id")]
    finally:
        conn.close()


def wait_for_requests(replica: ReplicaServer, n: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while len(replica.log) < n and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before the signal"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stopped_crawl_is_interrupted_and_the_next_run_misses_nothing(tmp_path, signum):
    site = generate_site(seed=3, n_articles=64, per_page=3)
    db_path = str(tmp_path / "npi.db")
    with ReplicaServer(site, delay=0.05) as replica:
        proc = start("crawl", "--db", db_path, "--base-url", replica.url, "--delay", "0.2", "--concurrency", "1")
        wait_for_requests(replica, 15, proc)
        sent = time.monotonic()
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
        took = time.monotonic() - sent
        assert proc.returncode == 128 + signum
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"Error: stopped by {signal.Signals(signum).name}: run 1 recorded as interrupted")
        assert out == "" and took < 15  # NPI_STOP_GRACE (10 s) bounds it; queued requests are dropped
        assert runs(db_path) == ["interrupted"]
        status = run_cli("status", "--db", db_path)
        assert status.returncode == 3 and "interrupted" in status.stderr
        again = run_cli("crawl", "--db", db_path, "--base-url", replica.url)
        assert again.returncode == 0, again.stderr
        assert runs(db_path) == ["interrupted", "ok"]
        assert export_rows(db_path) == site.expected_export(replica.url)


def test_a_second_signal_does_not_wait_for_a_hanging_transfer(tmp_path):
    site = generate_site(seed=3, n_articles=30, per_page=3)
    db_path = str(tmp_path / "npi.db")
    with ReplicaServer(site) as replica:
        replica.add_fault("/en/research/policy/index.html", "hang", seconds=60)
        proc = start("crawl", "--db", db_path, "--base-url", replica.url, "-s", "NPI_STOP_GRACE=50")
        wait_for_requests(replica, 14, proc)
        proc.send_signal(signal.SIGTERM)  # graceful: would wait for the hanging page (grace 50 s)
        time.sleep(1.0)
        assert proc.poll() is None
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
        assert proc.returncode == 143 and time.monotonic() - sent < 10, err
        assert runs(db_path) == ["interrupted"]


def test_a_stop_during_delivery_waits_for_the_message_then_loses_and_repeats_nothing(tmp_path):
    site = generate_site(seed=5, n_articles=30, per_page=3)
    db_path = str(tmp_path / "npi.db")
    with JsonSink() as endpoint, ReplicaServer(site) as replica:
        endpoint.delay = 1.5  # it has the message at once; its answer comes 1.5 s later
        watch = ["watch", "--db", db_path, "--base-url", replica.url, "--notify", endpoint.url()]
        assert run_cli(*watch).returncode == 0  # baseline
        proposals = [new_article(site, lang="en", sections=["policy"], n=i) for i in range(1, 4)]
        proc = start(*watch)
        deadline = time.monotonic() + 60
        while not endpoint.posts and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)  # while the first message waits for its answer
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 143, err
        assert len(endpoint.posts) == 1  # the message under way finished; no new one began
        assert run_cli(*watch).returncode == 0
        urls = [post["message"].splitlines()[-1] for post in endpoint.posts]
        base = replica.url.rstrip("/")
        assert sorted(urls) == sorted(base + p.path for p in proposals)  # each exactly once


def test_a_run_killed_by_sigkill_is_marked_killed_by_the_next_run(tmp_path):
    site = generate_site(seed=3, n_articles=40, per_page=3)
    db_path = str(tmp_path / "npi.db")
    with ReplicaServer(site, delay=0.05) as replica:
        proc = start("crawl", "--db", db_path, "--base-url", replica.url, "--delay", "0.2", "--concurrency", "1")
        wait_for_requests(replica, 15, proc)
        proc.kill()
        proc.wait()
        assert runs(db_path) == ["running"]
        assert run_cli("crawl", "--db", db_path, "--base-url", replica.url).returncode == 0
        assert runs(db_path) == ["killed", "ok"]
        assert export_rows(db_path) == site.expected_export(replica.url)


def test_status_after_a_stop_during_delivery_counts_the_alert_that_went_out(tmp_path):
    """Issue 23.6: the delivery was recorded, but its alert was settled (``sent``) only after the
    whole delivery pass, which a stop cut short: status said "0 sent, 3 pending"."""
    site = generate_site(seed=5, n_articles=30, per_page=3)
    db_path = str(tmp_path / "npi.db")
    with JsonSink() as endpoint, ReplicaServer(site) as replica:
        endpoint.delay = 1.5
        watch = ["watch", "--db", db_path, "--base-url", replica.url, "--notify", endpoint.url()]
        assert run_cli(*watch).returncode == 0  # baseline
        for i in range(1, 4):
            new_article(site, lang="en", sections=["policy"], n=i)
        proc = start(*watch)
        deadline = time.monotonic() + 60
        while not endpoint.posts and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 143, err
        assert len(endpoint.posts) == 1
        status = run_cli("status", "--db", db_path)
        assert "alerts     1 sent, 2 pending" in status.stdout, status.stdout
        conn = sqlite3.connect(db_path)
        try:
            rows = conn.execute("SELECT a.status, d.status FROM alerts a LEFT JOIN deliveries d ON d.alert_id = a.id").fetchall()
        finally:
            conn.close()
        assert all((alert == "sent") == (delivery == "sent") for alert, delivery in rows), rows
