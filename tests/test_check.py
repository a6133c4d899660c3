"""The check before a crawl (issue 20): a run that finds nothing changed and nothing due ends
without Scrapy, writes its run row and nothing else; a change hands over to the crawl, which asks
nothing twice. Real CLI processes, the replica over HTTP, real SQLite files."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, crawl, run_cli
from tests.endpoints import JsonSink
from tests.site import control

NO_SWEEP = ("--sweep-lists", "0", "--sweep-articles", "0")
FIRST_PAGES = sorted(
    f"{lang}/research/{s}/index.html"
    for lang in ("", "/en")
    for s in ("diplomacy", "industry", "economy", "technology", "government", "policy")
)
# Run the CLI in a fresh interpreter and say, at its exit, which heavy libraries it imported.
PROBE = (
    "import atexit, sys\n"
    "atexit.register(lambda: print('IMPORTED', sorted({m.split('.')[0] for m in sys.modules} "
    "& {'scrapy', 'twisted', 'lxml', 'apprise', 'warcio', 'pypdf'}), file=sys.stderr))\n"
    "from npi_crawler.cli import main\n"
    "sys.argv = ['npi-crawler', *sys.argv[1:]]\n"
    "main()\n"
)


def probe(*args: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, cwd=ROOT, timeout=180)
    line = next(line for line in proc.stderr.splitlines() if line.startswith("IMPORTED"))
    return proc, json.loads(line.removeprefix("IMPORTED ").replace("'", '"'))


def snapshot(db_path: str) -> dict[str, list]:
    """Every row of every table but ``runs`` (the FTS shadow tables included)."""
    conn = sqlite3.connect(db_path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {t: conn.execute(f'SELECT * FROM "{t}"').fetchall() for t in tables if t != "runs"}
    finally:
        conn.close()


def runs(db_path: str) -> list[dict]:
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM runs ORDER BY id")]
    finally:
        conn.close()


def warc_files(db_path: str) -> dict[str, int]:
    folder = Path(db_path).with_name("npi-warc")
    return {p.name: p.stat().st_size for p in folder.iterdir()} if folder.exists() else {}


@pytest.fixture
def sink():
    with JsonSink() as sink:
        yield sink


@pytest.fixture
def watched(replica, db_path, sink):
    """An archive crawled and watched once (the differ's baseline, robots.txt kept)."""
    crawl(replica, db_path)
    crawl(replica, db_path, "--notify", sink.url(), command="watch")
    return db_path


def test_a_no_change_watch_starts_no_scrapy_and_writes_nothing_but_its_run_row(replica, watched, sink):
    before, files = snapshot(watched), warc_files(watched)
    mark = len(replica.log)
    proc, imported = probe("watch", "--db", watched, "--base-url", replica.url, "--notify", sink.url(), *NO_SWEEP)
    assert proc.returncode == 0, proc.stderr
    assert imported == []  # no Scrapy, Twisted, lxml, Apprise (a channel is configured), WARC or PDF reader
    asked = replica.log[mark:]
    assert sorted(path for _m, path, _s, _h in asked) == FIRST_PAGES  # robots.txt is kept a day
    assert {status for _m, _p, status, _h in asked} == {304}
    assert all(headers.get("If-None-Match") for _m, _p, _s, headers in asked)
    said = " ".join(proc.stdout.split())  # lines fit the terminal's width (COLUMNS)
    assert "nothing new: 12 requests (12 list pages not modified (304)); no crawl started" in said
    assert snapshot(watched) == before and warc_files(watched) == files
    last = runs(watched)[-1]
    assert (last["status"], last["requests"], last["list_pages"], last["diff_outcome"]) == ("ok", 12, 12, "ok")
    assert sink.posts == []


def test_a_new_article_hands_over_and_the_crawl_asks_nothing_twice(replica, site, watched, sink):
    with replica.lock:
        article = control.publish(site, sections=["policy"], lang="en", title="A new proposal")
    mark = len(replica.log)
    result = crawl(replica, watched, "--notify", sink.url(), *NO_SWEEP, command="watch")
    asked = [path for _m, path, _s, _h in replica.log[mark:]]
    assert len(asked) == len(set(asked)), asked  # the changed first page was read from the check's answer
    assert article.path in asked and "/robots.txt" not in asked
    assert set(FIRST_PAGES) <= set(asked)
    assert [p["title"] for p in sink.posts] == ["[NPI policy/en] A new proposal"]
    said = " ".join(result.stdout.split())
    assert "crawled: " in said and "lists 1 article(s) new" in said
    last = runs(watched)[-1]
    assert last["requests"] == len(asked) and last["status"] == "ok"


def test_a_list_page_that_changed_with_nothing_new_is_kept_without_a_crawl(replica, site, watched, sink):
    first = site.list_entries("ja", "policy")[0]
    with replica.lock:
        control.edit(site, first.path, title="A clearer title")  # lists show titles (and side blocks)
    mark = len(replica.log)
    proc, imported = probe("watch", "--db", watched, "--base-url", replica.url, *NO_SWEEP)
    assert proc.returncode == 0, proc.stderr
    assert "lxml" in imported and "scrapy" not in imported  # read, not crawled
    said = " ".join(proc.stdout.split())
    assert "6 list pages changed with nothing new" in said and "no crawl started" in said
    assert ("GET", "/research/policy/index.html", 200) in [entry[:3] for entry in replica.log[mark:]]
    mark = len(replica.log)
    crawl(replica, watched, *NO_SWEEP, command="watch")
    assert {status for _m, _p, status, _h in replica.log[mark:]} == {304}  # its new validators were kept


def test_robots_txt_is_asked_once_a_day_and_then_conditionally(replica, watched):
    conn = sqlite3.connect(watched)
    (fetched,) = conn.execute("SELECT fetched_at FROM robots_txt").fetchone()
    day_ago = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=25)).strftime("%Y-%m-%dT%H:%M:%SZ")
    with conn:
        conn.execute("UPDATE robots_txt SET fetched_at = ?", (day_ago,))
    conn.close()
    mark = len(replica.log)
    crawl(replica, watched, *NO_SWEEP, command="watch")
    robots = [(status, headers) for _m, path, status, headers in replica.log[mark:] if path == "/robots.txt"]
    assert len(robots) == 1 and robots[0][0] == 304 and robots[0][1].get("If-None-Match")
    conn = sqlite3.connect(watched)
    assert conn.execute("SELECT fetched_at FROM robots_txt").fetchone()[0] >= fetched
    conn.close()
    mark = len(replica.log)
    crawl(replica, watched, *NO_SWEEP, command="watch")
    assert "/robots.txt" not in replica.paths()[mark:]


def test_the_check_obeys_robots_txt(replica, site, watched):
    with replica.lock:
        site.robots = "User-agent: *\nDisallow: /en/research/policy/\n"
    conn = sqlite3.connect(watched)
    with conn:
        conn.execute("DELETE FROM robots_txt")  # as a day later
    conn.close()
    mark = len(replica.log)
    crawl(replica, watched, *NO_SWEEP, command="watch")
    asked = replica.paths()[mark:]
    assert "/robots.txt" in asked and "/en/research/policy/index.html" not in asked
    assert len([p for p in asked if p.endswith("index.html")]) == 11


def test_an_article_listed_but_never_archived_is_due_though_nothing_changed(replica, site, db_path):
    missing = site.list_entries("ja", "policy")[0].path
    replica.add_fault(missing, "status", times=4, status=500)  # fails the first crawl, retries included
    crawl(replica, db_path)
    mark = len(replica.log)
    result = crawl(replica, db_path, *NO_SWEEP, command="watch")  # nothing changed, but it is due
    assert ("GET", missing, 200) in [entry[:3] for entry in replica.log[mark:]]
    assert "1 listed article(s) not archived yet" in " ".join(result.stdout.split())
    result = crawl(replica, db_path, *NO_SWEEP, command="watch")
    assert "no crawl started" in " ".join(result.stdout.split())  # and then nothing is


def test_without_validators_an_unchanged_page_is_still_recognized(replica, watched):
    """A server that sends no ETag or Last-Modified: the page's digest says it is the same."""
    conn = sqlite3.connect(watched)
    with conn:
        conn.execute("UPDATE list_pages SET etag = NULL, last_modified = NULL")
    conn.close()
    mark = len(replica.log)
    result = crawl(replica, watched, *NO_SWEEP, command="watch")
    assert {status for _m, _p, status, _h in replica.log[mark:]} == {200}
    said = " ".join(result.stdout.split())
    assert "12 list pages not modified (304)" in said and "no crawl started" in said


def test_a_site_that_does_not_answer_the_check_is_crawled_and_the_run_fails_as_before(replica, watched):
    replica.add_fault("/research/*", "drop")
    replica.add_fault("/en/research/*", "drop")
    result = run_cli("watch", "--db", watched, "--base-url", replica.url, *NO_SWEEP)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "could not crawl" in result.stderr
    assert runs(watched)[-1]["status"] == "failed"


def test_a_full_run_and_a_run_after_an_interrupted_one_skip_the_check(replica, watched):
    result = crawl(replica, watched, "--full", *NO_SWEEP)
    assert "no check: a full run reads every page" in " ".join(result.stdout.split())
    conn = sqlite3.connect(watched)
    with conn:
        conn.execute("UPDATE runs SET status = 'interrupted' WHERE id = (SELECT max(id) FROM runs)")
    conn.close()
    mark = len(replica.log)
    result = crawl(replica, watched, *NO_SWEEP)
    assert "no check: the last run did not finish" in " ".join(result.stdout.split())
    assert any("index_2.html" in p for p in replica.paths()[mark:])  # every list page walked


def test_a_swept_article_whose_side_blocks_changed_is_unchanged_without_a_crawl(replica, site, watched, sink):
    """Every publication changes every article page (its "Latest Articles" blocks): the sweep
    re-reads such a page and, the article being the same, starts no crawl and writes nothing."""
    with replica.lock:
        control.publish(site, sections=["policy"], lang="en", title="A new proposal")
    crawl(replica, watched, "--notify", sink.url(), *NO_SWEEP, command="watch")  # the new one is archived
    before = snapshot(watched)
    mark = len(replica.log)
    proc, imported = probe(
        "watch", "--db", watched, "--base-url", replica.url, "--notify", sink.url(), "--sweep-lists", "0",
        "--sweep-articles", "5",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    swept = [(path, status) for _m, path, status, _h in replica.log[mark:] if "/research/2" in path]
    assert len(swept) == 5 and {status for _path, status in swept} == {200}, swept  # changed bytes
    assert "scrapy" not in imported and "lxml" in imported  # read, not crawled
    said = " ".join(proc.stdout.split())
    assert "no crawl started" in said and "5 articles not modified" in said
    assert snapshot(watched) == before
