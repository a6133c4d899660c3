"""The site's Retry-After is law (issue 20): a 429 or 503 with ``Retry-After`` stops the run's
requests at once (what is in flight may finish) and holds every later run until then: it sends
nothing, says until when in one line and exits 75. Real CLI processes over the replica."""

from __future__ import annotations

import datetime as dt
import sqlite3
import subprocess
import sys
from email.utils import format_datetime

import pytest

from npi_crawler.archive.db import parse_stamp
from tests.conftest import ROOT, crawl, run_cli
from tests.test_faults import last_run

NO_SWEEP = ("--sweep-lists", "0", "--sweep-articles", "0")
LOOPBACK_PER_HOST = 8  # requests in flight at once on loopback (runner.LOOPBACK_SETTINGS)


def held_for(db_path: str) -> float:
    """Seconds from now until the latest run's Retry-After."""
    until = parse_stamp(last_run(db_path)["retry_after"])
    assert until is not None
    return (until - dt.datetime.now(dt.timezone.utc)).total_seconds()


def after(replica, mark: int, path: str) -> list[str]:
    """The requests the replica answered after its answer to ``path`` (since ``mark``)."""
    log = replica.paths()[mark:]
    return log[log.index(path) + 1 :]


def test_a_429_during_the_crawl_stops_it_and_the_next_run_sends_nothing(replica, db_path):
    replica.add_fault("/research/policy/index.html", "429", retry_after=600)
    result = crawl(replica, db_path)  # the first run: no check, Scrapy asks 12 lists at once
    followed = after(replica, 0, "/research/policy/index.html")
    assert len(followed) <= LOOPBACK_PER_HOST - 1, followed  # at most what was already in flight
    run = last_run(db_path)
    assert run["status"] == "partial" and 590 <= held_for(db_path) <= 600
    said = " ".join(result.stdout.split())
    assert "held HTTP 429 with Retry-After 600 s: no request to the site before" in said
    mark = len(replica.log)
    again = run_cli("watch", "--db", db_path, "--base-url", replica.url)
    assert again.returncode == 75, again.stdout + again.stderr
    assert len(replica.log) == mark  # nothing sent
    assert "the site asked to be left alone" in again.stderr and run["retry_after"] in again.stderr
    assert again.stderr.count("\n") == 1 and again.stdout == ""
    status = run_cli("status", "--db", db_path)
    assert f"no request to the site before {run['retry_after']}" in " ".join(status.stdout.split())


def test_the_check_stops_at_once_and_later_runs_are_held(replica, db_path):
    crawl(replica, db_path)
    replica.add_fault("/research/economy/index.html", "429", retry_after=600)
    mark = len(replica.log)
    result = crawl(replica, db_path, *NO_SWEEP, command="watch")
    assert after(replica, mark, "/research/economy/index.html") == []  # one at a time: nothing followed
    said = " ".join(result.stdout.split())
    assert "the site asked to wait" in said and "no crawl started" in said and "runs before then send nothing" in said
    assert last_run(db_path)["status"] == "ok" and 590 <= held_for(db_path) <= 600
    mark = len(replica.log)
    quiet = run_cli("crawl", "--db", db_path, "--base-url", replica.url, "--quiet")
    assert quiet.returncode == 75 and quiet.stderr == "" and len(replica.log) == mark  # cron mails nothing
    replica.clear_faults()
    anyway = crawl(replica, db_path, "--ignore-retry-after", *NO_SWEEP)
    assert "no crawl started" in " ".join(anyway.stdout.split())
    assert len(replica.log) > mark
    assert last_run(db_path)["retry_after"] is None
    crawl(replica, db_path, *NO_SWEEP)  # the run that ignored it ended the hold


def test_a_503_with_an_http_date_holds_until_that_date(replica, db_path):
    crawl(replica, db_path)
    when = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=30)
    replica.add_fault("/robots.txt", "429", status=503, retry_after=format_datetime(when, usegmt=True))
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute("DELETE FROM robots_txt")  # asked again, as a day later
    conn.close()
    crawl(replica, db_path, *NO_SWEEP)
    assert 1790 <= held_for(db_path) <= 1800


def test_a_retry_after_is_held_for_a_day_at_most(replica, db_path):
    crawl(replica, db_path)
    replica.add_fault("/en/research/policy/index.html", "429", retry_after=10 * 86_400)
    crawl(replica, db_path, *NO_SWEEP)
    assert 86_390 <= held_for(db_path) <= 86_400


def test_a_429_without_retry_after_is_retried_as_before(replica, db_path):
    replica.add_fault("/research/policy/index.html", "429", retry_after=None, times=1)
    crawl(replica, db_path)
    assert last_run(db_path)["status"] == "ok" and last_run(db_path)["retry_after"] is None
    assert replica.paths().count("/research/policy/index.html") == 2


def test_plain_scrapy_obeys_the_hold_too(replica, db_path):
    replica.add_fault("/research/policy/index.html", "429", retry_after=600)
    crawl(replica, db_path)
    mark = len(replica.log)
    proc = subprocess.run(
        [sys.executable, "-m", "scrapy", "crawl", "npi", "-a", f"base_url={replica.url}", "-s", f"NPI_DB_PATH={db_path}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert "the site asked for no request before" in proc.stderr
    assert len(replica.log) == mark


@pytest.mark.parametrize("value", ["0", "soon", ""])
def test_a_retry_after_that_asks_for_nothing_holds_nothing(replica, db_path, value):
    replica.add_fault("/research/policy/index.html", "429", retry_after=value, times=1)
    crawl(replica, db_path)
    assert last_run(db_path)["retry_after"] is None
