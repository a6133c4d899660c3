"""Batched commits (issue 19): a crawl's writes go into one transaction per batch of items, and a
kill loses the open batch only, which the next run fetches again. The unit tests drive
``archive.batches.Batches`` on a real file with a clock of their own; the last test kills the real
CLI with SIGKILL mid-batch, over real HTTP against the replica."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from urllib.parse import urlsplit

import pytest

from npi_crawler.archive import Archive
from npi_crawler.archive.batches import Batches
from tests.conftest import ROOT, export_rows
from tests.crash import check_warc_pointers
from tests.site import ReplicaServer, generate_site

URL = "https://npi.or.jp/research/2025/06/{:08d}.html"


def committed(db_path: str, sql: str = "SELECT count(*) FROM article_sections") -> int:
    """What another connection sees: the committed state."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchone()[0]
    finally:
        conn.close()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def archive(db_path):
    with Archive.open(db_path) as archive:
        yield archive


def test_a_batch_is_committed_every_n_items(archive, db_path):
    batches = Batches(archive, items=3, seconds=60, clock=Clock())
    for i in range(7):
        with batches.item() as a:
            a.add_listing(URL.format(i), "policy", run_id=None)
        assert committed(db_path) == (i + 1) // 3 * 3  # the others wait in the open batch
    assert batches.commit() == 1 and committed(db_path) == 7


def test_a_batch_is_committed_after_t_seconds(archive, db_path):
    clock = Clock()
    batches = Batches(archive, items=100, seconds=5, clock=clock)
    with batches.item() as a:
        a.add_listing(URL.format(1), "policy", run_id=None)
    clock.now = 4.9
    assert not batches.due()
    with batches.item() as a:
        a.add_listing(URL.format(2), "policy", run_id=None)
    assert committed(db_path) == 0
    clock.now = 5.0
    assert batches.due()  # what the run state's idle timer asks, with no item coming
    with batches.item() as a:
        a.add_listing(URL.format(3), "policy", run_id=None)
    assert committed(db_path) == 3 and batches.pending == 0


def test_a_failing_item_undoes_itself_only(archive, db_path):
    batches = Batches(archive, items=10, seconds=60, clock=Clock())
    with batches.item() as a:
        a.add_listing(URL.format(1), "policy", run_id=None)
    with pytest.raises(sqlite3.IntegrityError), batches.item() as a:
        a.add_listing(URL.format(2), "policy", run_id=None)
        a.add_listing(URL.format(3), "no-such-section", run_id=None)  # a foreign key fails
    batches.commit()
    assert committed(db_path, "SELECT group_concat(article_url) FROM article_sections") == URL.format(1)


def test_a_refused_commit_loses_the_whole_batch_and_says_how_many_items(archive, db_path):
    batches = Batches(archive, items=10, seconds=60, clock=Clock())
    archive.conn.execute("PRAGMA defer_foreign_keys = ON")  # the violation is found at COMMIT
    for i, section in enumerate(["policy", "policy", "no-such-section"]):
        with batches.item() as a:
            a.add_listing(URL.format(i), section, run_id=None)
    with pytest.raises(sqlite3.IntegrityError):
        batches.commit()
    assert batches.settle() == 3 and batches.settle() == 0  # counted once
    assert committed(db_path) == 0 and not archive.in_transaction


def stored_articles(db_path: str) -> int:
    try:
        return committed(db_path, "SELECT count(*) FROM articles")
    except sqlite3.Error:  # not there yet, or not migrated yet
        return 0


def article_paths(urls) -> set[str]:
    return {urlsplit(u).path for u in urls}


def test_sigkill_mid_batch_loses_the_open_batch_and_the_next_run_fetches_exactly_it(tmp_path):
    site = generate_site(seed=19, n_articles=60, per_page=5)
    db = str(tmp_path / "npi.db")
    every = {a.path for a in site.live()}
    argv = [sys.executable, "-m", "npi_crawler", "crawl", "--db", db]
    batch = ["-s", "NPI_COMMIT_ITEMS=15", "-s", "NPI_COMMIT_SECONDS=120"]  # batches by count only
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    with ReplicaServer(site, delay=0.02) as replica:
        proc = subprocess.Popen([*argv, "--base-url", replica.url, *batch], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.monotonic() + 120
        # Kill once a batch is committed and more articles were served than the archive holds.
        while proc.poll() is None and time.monotonic() < deadline:
            stored = stored_articles(db)
            served = len(every & set(replica.paths()))
            if stored and served >= stored + 5:
                break
            time.sleep(0.005)
        assert proc.poll() is None, "the crawl ended before a kill mid-batch"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        served = every & set(replica.paths())
        conn = sqlite3.connect(db)
        kept = article_paths(r[0] for r in conn.execute("SELECT url FROM articles"))
        conn.close()
        lost = served - kept
        assert kept and lost, (len(kept), len(lost))
        assert kept <= served
        check_warc_pointers(db)  # every pointer a committed batch holds reads back
        mark = len(replica.log)
        # no sweep: its re-checks of known articles are not what the lost batch held
        rerun = subprocess.run([*argv, "--base-url", replica.url, "--sweep-lists", "0", "--sweep-articles", "0"], cwd=ROOT, env=env, capture_output=True, text=True)
        assert rerun.returncode == 0, rerun.stderr
        fetched_again = every & {path for method, path, *_ in replica.log[mark:] if method == "GET"}
        # exactly what the archive did not hold: the lost batch, and what the kill never reached
        assert fetched_again == every - kept
        assert lost <= fetched_again and not (kept & fetched_again)
        assert export_rows(db) == site.expected_export(replica.url)


def test_a_crawl_waiting_on_one_slow_answer_commits_its_batch_after_t_seconds(tmp_path):
    """The run state's idle timer: with no item coming to fill the batch (the crawl waits on one
    PDF that hangs), what the batch holds is committed after NPI_COMMIT_SECONDS all the same."""
    site = generate_site(seed=23, n_articles=12, per_page=4)
    db = str(tmp_path / "npi.db")
    slow = next(pdf for a in sorted(site.live(), key=lambda a: a.path) for pdf in a.pdfs)
    argv = [sys.executable, "-m", "npi_crawler", "crawl", "--db", db, "-s", "NPI_COMMIT_ITEMS=100000",
            "-s", "NPI_COMMIT_SECONDS=3"]  # fmt: skip
    with ReplicaServer(site) as replica:
        replica.add_fault(slow, "hang", times=1, seconds=12)
        proc = subprocess.Popen([*argv, "--base-url", replica.url], cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONWARNINGS": "ignore"})  # fmt: skip
        def hanging() -> bool:  # the PDF was asked for once and has not answered (nor been asked again)
            return [path for _m, path, *_ in replica.log].count(slow) < 2 and proc.poll() is None

        try:
            while hanging() and stored_articles(db) < len(site.live()):
                time.sleep(0.05)
            assert hanging(), "the articles became visible only once the slow answer ended the wait"
        finally:
            proc.wait(timeout=120)
        assert proc.returncode == 0
