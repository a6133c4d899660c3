"""The rolling sweep (issue 20): each run re-checks a few deeper list pages and a few known
articles, the least recently checked first, with conditional GETs; what it finds is handled as a
--full run would. Real CLI processes over the replica, real SQLite files."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time

import pytest

from npi_crawler.archive import Archive
from npi_crawler.archive.records import ListPageRecord
from npi_crawler.crawlplan import share, sweep_windows
from tests.conftest import ROOT, crawl, run_cli
from tests.endpoints import JsonSink
from tests.site import SECTIONS, ReplicaServer, control, generate_site
from tests.test_faults import query

SWEEP = ("--sweep-lists", "3", "--sweep-articles", "40")
LANGS = ("ja", "en")


@pytest.fixture
def sink():
    with JsonSink() as sink:
        yield sink


def back_dated(site, lang: str) -> str:
    """Publish a policy proposal dated so that the site files it on page 2 of its list."""
    entries = site.list_entries(lang, "policy")
    article = control.publish(site, lang=lang, sections=["policy"], date=entries[4].published, title=f"Filed late {lang}")
    assert article in site.list_pages(lang, "policy")[1], "not on page 2: choose another date"
    return article.path


def deeper_pages(site) -> int:
    return sum(len(site.list_pages(lang, s)) - 1 for lang in LANGS for s in SECTIONS)


def sent(db_path: str) -> list[tuple[str, str]]:
    """(kind, article path) of every alert delivered, in order."""
    rows = query(db_path, "SELECT kind, article_url FROM alerts WHERE status = 'sent' ORDER BY id")
    return [(kind, "/" + url.split("/", 3)[3]) for kind, url in rows]


def test_back_dated_articles_and_an_edit_are_found_within_the_bounds_and_alerted_once(replica, site, db_path, sink):
    def watch(first: bool = False) -> list[tuple]:
        rows = query(db_path, "SELECT url FROM articles") if os.path.exists(db_path) else []
        known = {"/" + url.split("/", 3)[3] for (url,) in rows}
        mark = len(replica.log)
        crawl(replica, db_path, "--notify", sink.url(), "--changes", *SWEEP, command="watch")
        asked = replica.paths()[mark:]
        lists = [p for p in asked if "/index" in p]
        rechecked = [p for p in asked if p in known]
        if not first:  # the first run walks the whole site
            assert len(lists) <= 12 + 3, lists
            assert len(rechecked) <= 40, rechecked
        return asked

    watch(first=True)  # the first run: the whole site, the differ's baseline
    with replica.lock:
        late = [back_dated(site, lang) for lang in LANGS]
        edited = site.list_entries("en", "policy")[7].path  # a proposal deep in its list
        control.edit(site, edited, append="A paragraph added later.")
    list_bound = math.ceil(deeper_pages(site) / 3) + 1
    article_bound = math.ceil(len(site.live()) / 40) + 1
    found: dict[str, int] = {}
    for run in range(1, max(list_bound, article_bound) + 3):
        watch()
        for kind, path in sent(db_path):
            found.setdefault(f"{kind} {path}", run)
    assert sorted(sent(db_path)) == sorted([("new", late[0]), ("new", late[1]), ("changed", edited)])  # once each
    assert max(found[f"new {p}"] for p in late) <= list_bound, (found, list_bound)
    assert found[f"changed {edited}"] <= article_bound, (found, article_bound)
    assert sorted(p["title"] for p in sink.posts if "Filed late" in p["title"]) == ["[NPI policy/en] Filed late en",
                                                                                   "[NPI policy/ja] Filed late ja"]  # fmt: skip


def test_a_removed_article_found_by_the_sweep_is_a_removal(replica, site, db_path, sink):
    crawl(replica, db_path, "--notify", sink.url(), *SWEEP, command="watch")
    gone = site.list_entries("ja", "policy")[-1].path  # the oldest: on the last page of its list
    with replica.lock:
        control.remove(site, gone)
    for _ in range(math.ceil(len(site.live()) / 40) + 1):
        crawl(replica, db_path, "--notify", sink.url(), "--removals", *SWEEP, command="watch")
    assert query(db_path, "SELECT removed_status FROM articles WHERE url LIKE ?", (f"%{gone}",)) == [(404,)]
    assert [k for k, p in sent(db_path) if p == gone] == ["removed"]


def test_a_run_stopped_during_a_sweep_loses_nothing(replica, site, db_path):
    crawl(replica, db_path, *SWEEP, command="watch")
    with replica.lock:
        late = back_dated(site, "en")
    replica.add_fault(late, "hang", seconds=60)  # the crawl the sweep hands over to waits on it
    for _ in range(math.ceil(deeper_pages(site) / 3) + 1):
        proc = subprocess.Popen(
            [sys.executable, "-m", "npi_crawler", "watch", "--db", db_path, "--base-url", replica.url, *SWEEP],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while proc.poll() is None and late not in replica.paths() and time.monotonic() < deadline:
            time.sleep(0.05)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            _out, err = proc.communicate(timeout=60)
            assert proc.returncode == 143, err
            break
        assert proc.returncode == 0, proc.stderr.read()
    else:
        pytest.fail("the sweep never reached the back-dated article's page")
    assert query(db_path, "SELECT status FROM runs ORDER BY id DESC LIMIT 1") == [("interrupted",)]
    replica.clear_faults()
    result = crawl(replica, db_path, *SWEEP)  # after an interrupted run: every list page is walked
    assert "no check: the last run did not finish" in " ".join(result.stdout.split())
    assert query(db_path, "SELECT count(*) FROM articles WHERE url LIKE ?", (f"%{late}",)) == [(1,)]


# -- the windows --------------------------------------------------------------------------------------


def test_a_fractional_rate_alternates_whole_numbers_that_add_up():
    assert [share(2.5, run) for run in range(1, 7)] == [2, 3, 2, 3, 2, 3]
    assert sum(share(1.5, run) for run in range(1, 101)) == 150
    assert [share(3, run) for run in range(1, 4)] == [3, 3, 3]
    assert share(0, 5) == 0


def _runs(archive: Archive, *positions: tuple[str | None, str | None], status: str = "ok") -> None:
    for lists_to, articles_to in positions:
        run_id = archive.start_run(mode="incremental", base_url="https://npi.or.jp/", langs=LANGS, sections=SECTIONS)
        stats = {k: v for k, v in (("npi/sweep/lists_to", lists_to), ("npi/sweep/articles_to", articles_to)) if v}
        archive.finish_run(run_id, status=status, counts={}, stats=stats)


def test_the_windows_go_round_in_url_order_after_where_the_last_finished_run_left(archive):
    pages = [f"https://npi.or.jp/research/policy/index_{n}.html" for n in range(2, 8)]
    for n, url in enumerate(pages, start=2):
        archive.store_list_page(ListPageRecord(url, "ja", "policy", n, digest=f"d{n}"), run_id=None)
    first = sweep_windows(archive, LANGS, SECTIONS, 4, 0)
    assert [p.url for p in first.lists] == sorted(pages)[:4]
    _runs(archive, (first.stats["npi/sweep/lists_to"], None))
    second = sweep_windows(archive, LANGS, SECTIONS, 4, 0)
    assert [p.url for p in second.lists] == sorted(pages)[4:] + sorted(pages)[:2]  # round again
    _runs(archive, (second.stats["npi/sweep/lists_to"], None), status="interrupted")
    again = sweep_windows(archive, LANGS, SECTIONS, 4, 0)
    assert [p.url for p in again.lists] == [p.url for p in second.lists]  # a stopped run moved nothing
    # a page the pagination showed but no run fetched yet comes first
    archive.store_list_page(ListPageRecord(pages[0], "ja", "policy", 2, digest="d2", pages=((pages[0][:-6] + "9.html", 9),)), run_id=None)
    assert sweep_windows(archive, LANGS, SECTIONS, 4, 0).lists[0].url.endswith("index_9.html")
    # a run over part of the site leaves the position of the whole where it is
    assert "npi/sweep/lists_to" not in sweep_windows(archive, ("en",), ("policy",), 4, 0).stats


def test_sweep_settings_come_from_flags_the_settings_file_and_the_environment(replica, db_path, tmp_path):
    crawl(replica, db_path, "--sweep-lists", "0", "--sweep-articles", "0")
    settings = tmp_path / "npi.toml"
    settings.write_text("sweep_lists = 0\nsweep_articles = 5\n")
    mark = len(replica.log)
    result = run_cli("--settings", str(settings), "crawl", "--db", db_path, "--base-url", replica.url)
    assert result.returncode == 0, result.stderr
    assert len(replica.log) - mark == 12 + 1 + 5  # first pages, robots.txt, 5 articles
    mark = len(replica.log)
    result = run_cli("crawl", "--db", db_path, "--base-url", replica.url, env={"NPI_SWEEP_LISTS": "0", "NPI_SWEEP_ARTICLES": "2"})
    assert result.returncode == 0 and len(replica.log) - mark == 12 + 2
    bad = run_cli("crawl", "--db", db_path, "--base-url", replica.url, "--sweep-lists", "-1")
    assert bad.returncode == 2 and "from 0 to" in bad.stderr
    settings.write_text('sweep_articles = "many"\n')
    bad = run_cli("--settings", str(settings), "crawl", "--db", db_path, "--base-url", replica.url)
    assert bad.returncode == 2 and "sweep_articles" in bad.stderr


def test_the_spider_sweeps_by_itself_under_plain_scrapy(tmp_path):
    """Scrapyd runs the spider without the check: it asks its windows itself, conditionally."""
    site = generate_site(seed=1)
    db = str(tmp_path / "npi.db")
    with ReplicaServer(site) as replica:
        crawl(replica, db, "--sweep-lists", "0", "--sweep-articles", "0")
        mark = len(replica.log)
        proc = subprocess.run(
            [sys.executable, "-m", "scrapy", "crawl", "npi", "-a", f"base_url={replica.url}", "-a", "sweep_lists=2",
             "-a", "sweep_articles=3", "-s", f"NPI_DB_PATH={db}", "-s", "DOWNLOAD_DELAY=0", "-s", "AUTOTHROTTLE_ENABLED=0"],
            cwd=ROOT, capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-2000:]
        asked = replica.log[mark:]
    assert len([e for e in asked if "/index" in e[1]]) == 12 + 2
    assert {status for _m, path, status, _h in asked if path != "/robots.txt"} == {304}
    assert len([e for e in asked if e[1].endswith(".html") and "/index" not in e[1]]) == 3
