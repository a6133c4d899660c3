"""The layout alarm names the [selectors] keys that stopped matching and points at probe; a redesigned
replica trips it, and a [selectors] override that names the new markup clears it with an export
equal to the oracle (the real CLI over HTTP, real Apprise to a local endpoint)."""

from __future__ import annotations

import json
import re
import sqlite3

import pytest

from npi_crawler.monitor.differ import layout_problem
from npi_crawler.monitor.messages import format_attention
from npi_crawler.runstate import parse_health
from tests.conftest import export_rows, run_cli
from tests.endpoints import JsonSink
from tests.site import new_article
from tests.site.render import REDESIGN_SELECTORS

LIST_KEYS = ("list_entry", "pagination")


def alarm(stats: dict, **extra) -> str | None:
    """The layout alarm of run 7 whose pages counted ``stats`` (parse health as the run state builds it)."""
    run = {"id": 7, "status": "ok", "base_url": "https://npi.or.jp/", "langs": "en", "sections": "policy,industry", **extra}
    return layout_problem(run, parse_health(stats))


def test_the_alarm_names_the_keys_that_matched_nothing_and_the_probe_command():
    lists = alarm({"npi/parse/miss/list_entries": 12, "npi/parse/nomatch/list_entry": 12})
    assert lists == (
        "run 7: 12 list page(s) had no entries; selectors that matched nothing: list_entry (12 pages); "
        "see them with npi-crawler probe https://npi.or.jp/en/research/policy/index.html"
    )
    articles = alarm(
        {
            "npi/article/pages": 10,
            "npi/parse/fallback/title_og": 9,
            "npi/parse/nomatch/title": 9,
            "npi/parse/nomatch/date": 10,
            "npi/parse/fallback/date_url": 10,
        },
        langs="ja",
        base_url="http://127.0.0.1:8000",
    )
    assert "10 of 10 article pages had no title, date or body where expected" in articles
    assert "selectors that matched nothing: date (10 pages), title (9 pages)" in articles
    assert articles.endswith("npi-crawler probe http://127.0.0.1:8000/research/policy/index.html")
    # a run from before the profile (no nomatch stats) still trips it, without key names
    old = alarm({"npi/parse/miss/list_entries": 3})
    assert "selectors that matched nothing" not in old and "npi-crawler probe" in old
    # healthy: a key that missed on a page or two is no alarm
    assert alarm({"npi/article/pages": 10, "npi/parse/nomatch/date": 1}) is None


def test_a_body_found_only_by_the_extractor_still_trips_the_alarm():
    stats = {"npi/article/pages": 8, "npi/parse/nomatch/body": 8, "npi/parse/fallback/body_extractor": 8}
    assert "8 of 8 article pages" in alarm(stats)
    assert alarm({**stats, "npi/parse/fallback/body_extractor": 4}) is None


def test_the_attention_message_says_what_to_do():
    message = format_attention(["run 7: 12 list page(s) had no entries; ..."], "admin")
    assert "npi-crawler probe URL" in message["body"] and "[selectors]" in message["body"]
    assert "docs/alerts.md" in message["body"] and message["tags"] == ["admin"]


# -- end to end: a redesign, the alarm, the override, the oracle ----------------------------------


@pytest.fixture
def sink():
    with JsonSink() as sink:
        yield sink


def watch(replica, db_path, sink, *extra, settings=None, code=0):
    args = ["--settings", str(settings)] if settings else []
    result = run_cli(*args, "watch", "--db", db_path, "--base-url", replica.url, "--notify", sink.url(), *extra)
    assert result.returncode == code, result.stdout + result.stderr
    return result


def selectors_file(tmp_path, keys) -> str:
    lines = [f"{key} = {json.dumps(REDESIGN_SELECTORS[key])}" for key in keys]
    path = tmp_path / "npi-crawler.toml"
    path.write_text("[selectors]\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def count(db_path: str, sql: str) -> int:
    with sqlite3.connect(db_path) as conn:
        return conn.execute(sql).fetchone()[0]


@pytest.mark.slow
def test_redesigned_list_pages_trip_the_alarm_and_a_selectors_override_clears_it(replica, site, db_path, sink, tmp_path):
    watch(replica, db_path, sink)  # the baseline, in the old layout
    site.layout = "redesign_lists"
    proposal = new_article(site, lang="en", sections=["policy"], n=1)
    broken = watch(replica, db_path, sink, code=3)
    alarm = broken.stderr.strip()
    # every first page, and the deeper pages the rolling sweep re-checked this run
    pages = re.search(r"selectors that matched nothing: list_entry \((\d+) pages\)", alarm)
    assert len(alarm.splitlines()) == 1 and pages and int(pages[1]) >= 12, alarm
    assert f"npi-crawler probe {replica.url}" in alarm
    assert [p["title"] for p in sink.posts] == ["npi-crawler needs attention"]
    assert "list_entry" in sink.posts[0]["message"] and "npi-crawler probe URL" in sink.posts[0]["message"]
    status = run_cli("status", "--db", db_path)
    assert status.returncode == 3 and "tripped the layout alarm" in status.stderr and "list_entry" in status.stderr
    # the operator probes a list page, then names its new markup
    settings = selectors_file(tmp_path, LIST_KEYS)
    probed = run_cli("--settings", settings, "probe", f"{replica.url}en/research/policy/index.html")
    assert probed.returncode == 0, probed.stdout + probed.stderr
    fixed = watch(replica, db_path, sink, settings=settings)
    assert fixed.stderr == "" and "no entries" not in fixed.stdout
    assert [p["title"] for p in sink.posts[1:]] == [f"[NPI policy/en] {' '.join(proposal.title.split())}"]
    assert run_cli("status", "--db", db_path).returncode == 0
    assert export_rows(db_path) == site.expected_export(replica.url)


@pytest.mark.slow
def test_a_whole_redesign_names_the_article_keys_and_the_full_override_reads_it_all(replica, site, db_path, sink, tmp_path):
    watch(replica, db_path, sink)
    site.layout = "redesign"
    proposal = new_article(site, lang="ja", sections=["policy"], n=2)
    lists_only = selectors_file(tmp_path, LIST_KEYS)
    broken = watch(replica, db_path, sink, "--full", settings=lists_only, code=3)
    for key in ("article", "title", "date", "body"):
        assert f"{key} (" in broken.stderr, broken.stderr
    assert "list_entry" not in broken.stderr
    assert count(db_path, "SELECT count(*) FROM revisions") == 0  # the clean versions were kept
    full = selectors_file(tmp_path, REDESIGN_SELECTORS)
    fixed = watch(replica, db_path, sink, "--full", settings=full)
    assert fixed.stderr == ""
    # the known articles read again equal what was stored; the one first stored during the alarm,
    # through fallbacks (it had no clean version to keep), is now corrected
    with sqlite3.connect(db_path) as conn:
        revised = conn.execute("SELECT article_url, title FROM revisions").fetchall()
    assert revised == [(replica.url.rstrip("/") + proposal.path, "中曽根康弘世界平和研究所")]
    assert export_rows(db_path) == site.expected_export(replica.url)
