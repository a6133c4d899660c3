"""What a crawl prints: the progress line on a terminal only, --quiet for cron, --log-file."""

from __future__ import annotations

import io
import os
import pty
import re
import select
import subprocess
import sys

from npi_crawler.archive.records import ArticleRecord
from npi_crawler.extensions import Progress, ProgressLine
from npi_crawler.items import FetchErrorItem, NotModifiedItem
from tests.conftest import ROOT, run_cli


def test_progress_line_counts_what_the_signals_report():
    stream = io.StringIO()
    ext = ProgressLine(stream, interval=0)
    for _ in range(3):
        ext.response_received()
    ext.item_scraped(ArticleRecord(url="u", lang="en", title="t", published=None, body=""))
    ext.item_scraped(NotModifiedItem(url="u"))
    ext.item_scraped(FetchErrorItem(url="u", kind="article:http_503", message="503"))
    assert stream.getvalue().split("\r\x1b[K")[-1] == "crawling: 3 pages, 1 articles, 1 re-checked, 1 errors"
    ext.spider_closed()
    assert stream.getvalue().endswith("\r\x1b[K")  # erased before the summary
    progress = Progress()
    progress.extra["alerts"] = 2
    assert progress.line() == "crawling: 0 pages, 0 articles, 0 errors, 2 alerts"


def run_on_a_terminal(*args: str) -> tuple[int, str, str]:
    """Run the CLI with stderr on a pseudo-terminal (stdout a pipe), as a person would see it."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "npi_crawler", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=slave,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    os.close(slave)
    terminal = b""
    while True:
        ready, _, _ = select.select([master], [], [], 120)
        if not ready:
            break
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        terminal += chunk
    out = proc.stdout.read().decode()
    proc.wait(timeout=60)
    os.close(master)
    return proc.returncode, out, terminal.decode(errors="replace")


def test_progress_on_a_terminal_not_with_quiet(replica, db_path):
    rc, out, terminal = run_on_a_terminal("crawl", "--db", db_path, "--base-url", replica.url)
    assert rc == 0, terminal
    assert "crawling: " in terminal and " pages, " in terminal and " articles, " in terminal
    assert out.startswith("run 1 (incremental)")
    rc, out, terminal = run_on_a_terminal("crawl", "--db", db_path, "--base-url", replica.url, "--quiet")
    assert rc == 0 and "crawling:" not in terminal


def test_quiet_prints_only_runs_that_need_a_look_and_log_file_keeps_everything(
    replica, site, db_path, tmp_path
):
    log = tmp_path / "watch.log"
    # The replica's first crawl has warnings (an article dated from its URL, a broken PDF): printed.
    first = run_cli("crawl", "--db", db_path, "--base-url", replica.url, "--quiet", "--log-file", str(log))
    assert first.returncode == 0 and first.stdout.startswith("run 1 ")
    assert re.search(r"^  warnings   [1-9]", first.stdout, re.M), first.stdout
    assert first.stderr == ""
    # A clean run prints nothing at all: cron sends no mail.
    second = run_cli("crawl", "--db", db_path, "--base-url", replica.url, "--quiet", "--log-file", str(log))
    assert (second.returncode, second.stdout, second.stderr) == (0, "", "")
    text = log.read_text()
    assert "[npi-crawler] run 1 (incremental)" in text and "[npi-crawler] run 2 (incremental)" in text
    assert "[scrapy.core.engine] INFO: Spider opened" in text  # Scrapy's own log, at INFO


def test_quiet_and_verbose_together_is_a_usage_error(db_path):
    result = run_cli("crawl", "--db", db_path, "--quiet", "--verbose")
    assert result.returncode == 2 and "cannot be used together" in result.stderr


def test_unwritable_log_file_is_one_line(db_path, tmp_path):
    result = run_cli("crawl", "--db", db_path, "--log-file", str(tmp_path / "no" / "dir.log"))
    assert result.returncode == 2
    assert "cannot write" in result.stderr and "Traceback" not in result.stderr
