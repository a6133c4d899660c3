"""The run lock: one run per archive at a time, the second exits at once with code 75, and a
killed run never leaves a stale lock."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

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
