"""The run lock: one run per archive at a time, the second exits at once with code 75, and a
killed run never leaves a stale lock."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from npi_crawler.archive.runlock import lock_holder, lock_path, run_lock
from npi_crawler.constants import EXIT_LOCKED
from npi_crawler.errors import LockUnavailable, RunLocked
from tests.conftest import ROOT, export_rows
from tests.site import ReplicaServer, generate_site


def test_second_holder_is_refused_then_lock_is_free_again(db_path):
    with run_lock(db_path, "crawl") as path:
        assert path == lock_path(db_path)
        assert lock_holder(db_path).startswith(f"pid {os.getpid()}, crawl since ")
        with pytest.raises(RunLocked) as caught:
            with run_lock(db_path, "watch"):
                pytest.fail("two holders at once")
        assert f"pid {os.getpid()}" in str(caught.value)
        assert "\n" not in str(caught.value)
    assert lock_holder(db_path) is None
    with run_lock(db_path):
        pass


def test_lock_file_in_a_missing_folder_is_one_line(tmp_path):
    with pytest.raises(LockUnavailable, match="does not exist"):
        with run_lock(str(tmp_path / "nope" / "npi.db")):
            pass


def test_a_killed_holder_leaves_no_stale_lock(db_path):
    code = (
        "import sys, time; from npi_crawler.archive.runlock import run_lock\n"
        f"with run_lock({db_path!r}, 'crawl'):\n    print('held', flush=True); time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        assert (
            lock_holder(db_path) == f"pid {proc.pid}, crawl since " + lock_holder(db_path).split("since ")[1]
        )
        with pytest.raises(RunLocked):
            with run_lock(db_path):
                pass
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert lock_holder(db_path) is None
    with run_lock(db_path):
        pass


def test_two_crawls_started_together_one_crawls_the_other_exits_75(db_path):
    site = generate_site(seed=1)
    # A slow site: the first run holds the lock for seconds, long after the second has started.
    with ReplicaServer(site, delay=0.15) as replica:
        args = [sys.executable, "-m", "npi_crawler", "crawl", "--db", db_path, "--base-url", replica.url]
        env = {**os.environ, "PYTHONWARNINGS": "ignore"}
        procs = [
            subprocess.Popen(
                args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            for _ in range(2)
        ]
        # The loser exits at once, while the winner is still crawling the slow site.
        deadline = time.monotonic() + 120
        while all(p.poll() is None for p in procs) and time.monotonic() < deadline:
            time.sleep(0.05)
        first = next(p for p in procs if p.poll() is not None)
        assert first.returncode == EXIT_LOCKED
        assert any(p.poll() is None for p in procs), "the locked run waited for the other"
        outcomes = []
        for proc in procs:
            out, err = proc.communicate(timeout=180)
            outcomes.append((proc.returncode, out, err))
        assert sorted(rc for rc, _, _ in outcomes) == [0, EXIT_LOCKED], outcomes
        loser = next(o for o in outcomes if o[0] == EXIT_LOCKED)
        lines = [line for line in loser[2].splitlines() if line.strip()]
        assert len(lines) == 1 and "another npi-crawler run is using" in lines[0], loser[2]
        assert "(pid " in lines[0] and "exit 75" in lines[0]
        assert loser[1] == ""
        assert export_rows(db_path) == site.expected_export(replica.url)
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT count(*), min(status) FROM runs").fetchone() == (1, "ok")
    conn.close()


def test_plain_scrapy_takes_the_same_lock(db_path, replica):
    """`scrapy crawl npi` (what Scrapyd runs) does not start while a run holds the lock."""
    scrapy = [sys.executable, "-m", "scrapy", "crawl", "npi", "-s", f"NPI_DB_PATH={db_path}", "-a"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    with run_lock(db_path, "watch"):
        result = subprocess.run(
            [*scrapy, f"base_url={replica.url}"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode != 0
        assert "another npi-crawler run is using" in result.stderr
    assert replica.log == []
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT count(*) FROM runs").fetchone() == (0,)
    conn.close()
    result = subprocess.run(
        [*scrapy, f"base_url={replica.url}", "-s", "LOG_LEVEL=ERROR", "-s", "DOWNLOAD_DELAY=0"]
        + ["-s", "AUTOTHROTTLE_ENABLED=False", "-s", "CONCURRENT_REQUESTS_PER_DOMAIN=8"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert lock_holder(db_path) is None
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT count(*), max(status) FROM runs").fetchone() == (1, "ok")
    conn.close()


def test_a_hard_link_of_the_archive_shares_its_run_lock(tmp_path):
    """Issue 23.3: the lock was keyed on the real path, so a crawl through a hard link in another
    folder ran beside one through the original name: two WAL files over one database file, and
    integrity_check then failed. The lock is the archive file's own (device and inode)."""
    site = generate_site(seed=1)
    first, other = tmp_path / "a" / "npi.db", tmp_path / "b" / "npi.db"
    first.parent.mkdir()
    other.parent.mkdir()
    with ReplicaServer(site, delay=0.15) as replica:
        crawl = [sys.executable, "-m", "npi_crawler", "crawl", "--base-url", replica.url, "--db"]
        env = {**os.environ, "PYTHONWARNINGS": "ignore"}
        assert subprocess.run([*crawl, str(first)], cwd=ROOT, env=env, capture_output=True, timeout=180).returncode == 0
        os.link(first, other)
        proc = subprocess.Popen([*crawl, str(first), "--full"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        before = len(replica.log)
        while len(replica.log) < before + 3 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, "the first crawl ended before the second started"
        requests = len(replica.log)
        second = subprocess.run([*crawl, str(other), "--full"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
        assert second.returncode == EXIT_LOCKED, second.stderr
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and "another npi-crawler run is using" in lines[0], second.stderr
        assert "hard link" in lines[0]
        assert lock_holder(other) is not None  # status through the other name sees the run too
        _out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
        assert len(replica.log) - requests < 200  # only the first crawl's own requests went on
    conn = sqlite3.connect(other)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert [r[0] for r in conn.execute("SELECT status FROM runs ORDER BY id")] == ["ok", "ok"]
    finally:
        conn.close()
    assert lock_holder(first) is None and lock_holder(other) is None


def test_a_hard_link_is_locked_in_process_too_and_sqlite_keeps_its_locks(tmp_path):
    """Holding or testing the lock opens the archive file itself; closing that descriptor while
    SQLite has the file open would drop SQLite's own POSIX locks (its WAL read lock among them)."""
    from npi_crawler.archive import Archive

    first, other = tmp_path / "npi.db", tmp_path / "other.db"
    Archive.open(first).close()
    os.link(first, other)
    with run_lock(first, "crawl"):
        with pytest.raises(RunLocked, match="hard link"):
            with run_lock(other, "watch"):
                pytest.fail("two holders of one file")
    with Archive.open(first) as archive:
        archive.conn.execute("SELECT count(*) FROM articles").fetchone()  # WAL mode: a shared lock on the file
        with run_lock(first, "crawl"):
            assert lock_holder(other) is not None
        assert lock_holder(first) is None
        # Another process's last connection checkpoints and deletes the WAL when it can lock the
        # file exclusively: it must not, while this process still has the archive open.
        closer = "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute('SELECT 1 FROM runs').fetchall(); c.close()"
        subprocess.run([sys.executable, "-c", closer, str(first)], check=True, timeout=60)
        assert Path(str(first) + "-wal").exists()
