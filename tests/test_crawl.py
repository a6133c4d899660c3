"""End-to-end crawls of the replica over real HTTP on 127.0.0.1, through the real CLI."""

from __future__ import annotations

import json
import sqlite3

import pytest

from tests.conftest import crawl, export_rows
from tests.site import ReplicaServer, generate_site, new_article

# The rolling sweep off: these tests are about the incremental run alone (tests/test_sweep.py
# covers what the sweep re-checks on top of it).
NO_SWEEP = ("--sweep-lists", "0", "--sweep-articles", "0")


def article_requests(replica: ReplicaServer, since: int = 0) -> list[str]:
    return [path for _m, path, _s, _h in replica.log[since:] if "/research/2" in path]


def last_run(db_path: str) -> dict:
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    row = dict(conn.execute("SELECT * FROM runs ORDER BY id DESC LIMIT 1").fetchone())
    conn.close()
    row["stats"] = json.loads(row["stats"])
    return row


@pytest.mark.parametrize("seed,n_articles,per_page", [(1, 60, 3), (11, 37, 4), (23, 90, 7)])
def test_crawl_then_export_gives_every_article_exactly_once(seed, n_articles, per_page, db_path):
    site = generate_site(seed=seed, n_articles=n_articles, per_page=per_page)
    with ReplicaServer(site) as replica:
        result = crawl(replica, db_path)
        assert export_rows(db_path) == site.expected_export(replica.url)
    assert "ok" in result.stdout.splitlines()[0]
    run = last_run(db_path)
    assert run["status"] == "ok" and run["articles_new"] == len(site.live())
    assert run["errors"] == 0


def test_second_crawl_of_unchanged_site_fetches_no_article(replica, db_path):
    crawl(replica, db_path)
    before = export_rows(db_path)
    mark = len(replica.log)
    crawl(replica, db_path, *NO_SWEEP)
    second = replica.paths()[mark:]
    assert article_requests(replica, mark) == []
    # robots.txt plus the first page of each of the 12 lists, nothing else
    assert sorted(second) == sorted(
        ["/robots.txt"]
        + [
            f"{lang}/research/{s}/index.html"
            for lang in ("", "/en")
            for s in ("diplomacy", "industry", "economy", "technology", "government", "policy")
        ]
    )
    assert export_rows(db_path) == before
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 2
    assert conn.execute("SELECT count(*) FROM revisions").fetchone()[0] == 0


def test_incremental_run_fetches_only_new_articles(replica, site, db_path):
    crawl(replica, db_path)
    added = [
        new_article(site, lang="ja", sections=["policy"], n=1),
        new_article(site, lang="en", sections=["policy", "industry"], n=2),
        new_article(site, lang="en", sections=["technology"], n=3),
    ]
    mark = len(replica.log)
    crawl(replica, db_path, *NO_SWEEP)
    assert sorted(article_requests(replica, mark)) == sorted(a.path for a in added)
    run = last_run(db_path)
    # robots.txt, the 12 first pages, one more page of each list that had news, the 3 articles
    assert run["articles_new"] == 3
    assert run["list_pages"] <= 12 + 4
    assert run["requests"] == 1 + run["list_pages"] + 3 + sum(len(a.pdfs) for a in added)
    assert export_rows(db_path) == site.expected_export(replica.url)


def test_article_listed_in_two_sections_is_one_record(replica, site, db_path):
    crawl(replica, db_path)
    rows = export_rows(db_path)
    multi = [a for a in site.live() if len(a.sections) > 1]
    assert multi, "the replica must have articles in two sections"
    for a in multi:
        matching = [r for r in rows if r["url"].endswith(a.path)]
        assert len(matching) == 1 and matching[0]["sections"] == sorted(a.sections)


def test_full_run_uses_conditional_get_and_catches_edits_and_removals(replica, site, db_path):
    crawl(replica, db_path)
    live = site.live()
    edited, removed = live[10], live[12]
    site.edit(edited.path, title="Revised: " + edited.title, append="A paragraph added later.")
    site.remove(removed.path)
    mark = len(replica.log)
    crawl(replica, db_path, "--full")
    pages = [(p, status) for _m, p, status, _h in replica.log[mark:] if "/research/2" in p]
    statuses = {p: status for p, status in pages if not p.endswith(".pdf")}  # article pages
    conditional = [h for _m, p, _s, h in replica.log[mark:] if "/research/2" in p]
    assert all("If-None-Match" in h for h in conditional)
    assert statuses[edited.path] == 200 and statuses[removed.path] == 404
    assert sum(1 for s in statuses.values() if s == 304) == len(live) - 2
    run = last_run(db_path)
    assert (run["articles_updated"], run["articles_removed"], run["articles_not_modified"]) == (
        1,
        1,
        len(live) - 2,
    )
    conn = sqlite3.connect(db_path)
    old_title = conn.execute(
        "SELECT title FROM revisions WHERE article_url LIKE ?", ["%" + edited.path]
    ).fetchone()[0]
    assert old_title == " ".join(edited.title.removeprefix("Revised: ").split())
    assert export_rows(db_path) == site.expected_export(replica.url)


def test_lang_and_section_options_limit_the_crawl(replica, site, db_path):
    crawl(replica, db_path, "--lang", "en", "--section", "policy")
    rows = export_rows(db_path)
    expected = [a for a in site.live() if a.lang == "en" and "policy" in a.sections]
    assert {r["url"] for r in rows} == {replica.url.rstrip("/") + a.path for a in expected}
    assert all(
        p.startswith(("/en/research/policy/", "/en/research/2", "/en/research/data/", "/en/experts/", "/robots.txt"))
        for p in replica.paths()
    )


def test_side_block_links_never_add_a_section(replica, site, db_path):
    crawl(replica, db_path)
    by_url = {r["url"]: r for r in export_rows(db_path)}
    for a in site.live():
        assert by_url[replica.url.rstrip("/") + a.path]["sections"] == sorted(a.sections)


def test_messy_pages_are_parsed_and_counted(replica, site, db_path):
    crawl(replica, db_path)
    stats = last_run(db_path)["stats"]
    assert stats["npi/parse/fallback/date_url"] == sum(1 for a in site.live() if not a.show_date)
    rows = {r["url"]: r for r in export_rows(db_path)}
    messy_title = next(a for a in site.live() if a.title_html)
    assert rows[replica.url.rstrip("/") + messy_title.path]["title"] == " ".join(messy_title.title.split())


def test_killed_run_makes_the_next_one_walk_every_page(replica, site, db_path):
    crawl(replica, db_path)
    conn = sqlite3.connect(db_path)
    conn.execute("UPDATE runs SET status = 'running', finished = NULL")  # as if killed mid-run
    conn.commit()
    conn.close()
    mark = len(replica.log)
    crawl(replica, db_path, *NO_SWEEP)
    pages = [p for p in replica.paths()[mark:] if "index_" in p]
    assert pages, "after an unfinished run every list page is walked again"
    assert article_requests(replica, mark) == []
