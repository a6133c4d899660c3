"""Expert pages: crawled once each from the replica over HTTP, re-checked by --full runs with a
conditional GET, stored in ``experts``; ``--author`` on search and export; the fetcher's rules."""

from __future__ import annotations

import json
import sqlite3

import pytest

from npi_crawler.archive import Archive
from npi_crawler.archive.records import ArticleRecord
from npi_crawler.spiders.experts import ExpertFetcher
from tests.conftest import crawl, run_cli
from tests.site import ReplicaServer

EXPERT_FIELDS = "url, lang, name, title, areas, biography, status"


def expert_paths(site) -> set[str]:
    return {path for a in site.live() for _name, path in a.authors}


def expert_requests(replica: ReplicaServer, since: int = 0) -> list[tuple[str, int, dict]]:
    return [(path, status, headers) for _m, path, status, headers in replica.log[since:] if "/experts/" in path]


def experts(db_path: str) -> dict[str, dict]:
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    rows = {r["url"]: dict(r) for r in conn.execute(f"SELECT {EXPERT_FIELDS}, last_changed FROM experts")}
    conn.close()
    return rows


def test_every_linked_expert_page_is_fetched_once_and_stored(replica, site, db_path):
    summary = crawl(replica, db_path).stdout
    paths = expert_paths(site)
    assert len(paths) > 5 and {p.startswith("/en/") for p in paths} == {True, False}
    requested = [path for path, _status, _h in expert_requests(replica)]
    assert sorted(requested) == sorted(paths)  # once each, though most are linked many times
    assert f"{len(paths)} expert pages" in summary
    base = replica.url.rstrip("/")
    stored = experts(db_path)
    assert set(stored) == {base + p for p in paths}
    for path in paths:
        expert = site.expert(path)
        row = stored[base + path]
        assert (row["lang"], row["name"], row["title"], row["status"]) == (expert.lang, expert.name, expert.title, "ok")
        assert row["areas"] == ("、" if expert.lang == "ja" else ", ").join(expert.areas)
        assert row["biography"] == expert.biography
    # authors.profile_url is the link: every author of every article finds their page
    conn = sqlite3.connect(db_path)
    unlinked = conn.execute(
        "SELECT count(*) FROM authors au LEFT JOIN experts e ON e.url = au.profile_url WHERE e.url IS NULL"
    ).fetchone()[0]
    assert unlinked == 0


def test_incremental_runs_never_ask_again_and_full_runs_recheck_conditionally(replica, site, db_path):
    crawl(replica, db_path)
    mark = len(replica.log)
    crawl(replica, db_path)
    assert expert_requests(replica, mark) == []
    promoted = sorted(expert_paths(site))[0]
    site.positions[promoted] = "理事長" if not promoted.startswith("/en/") else "President"
    before = experts(db_path)
    mark = len(replica.log)
    crawl(replica, db_path, "--full")
    rechecked = expert_requests(replica, mark)
    assert sorted(p for p, _s, _h in rechecked) == sorted(expert_paths(site))
    assert all("If-None-Match" in headers for _p, _s, headers in rechecked)
    assert {p: s for p, s, _h in rechecked if s != 304} == {promoted: 200}
    after = experts(db_path)
    url = replica.url.rstrip("/") + promoted
    assert after[url]["title"] == site.positions[promoted] != before[url]["title"]
    assert after[url]["last_changed"] > before[url]["last_changed"]
    assert all(after[u] == before[u] for u in after if u != url)  # 304s change nothing but when


def test_an_unreadable_expert_page_is_a_warning_and_the_next_run_retries_it(replica, site, db_path):
    path = sorted(expert_paths(site))[0]
    replica.add_fault(path, "status", status=503)
    result = crawl(replica, db_path)
    assert "expert:http_503" in result.stdout and "errors     0" in result.stdout
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT status FROM runs").fetchone()[0] == "ok"
    url = replica.url.rstrip("/") + path
    assert experts(db_path)[url]["status"] == "http_503"
    replica.clear_faults()
    mark = len(replica.log)
    crawl(replica, db_path)
    assert [p for p, _s, _h in expert_requests(replica, mark)] == [path]  # only the failed one
    assert experts(db_path)[url]["status"] == "ok"


def test_experts_off_for_one_run_are_fetched_by_the_next(replica, site, db_path):
    crawl(replica, db_path, "-s", "NPI_EXPERTS=0")
    assert expert_requests(replica) == [] and experts(db_path) == {}
    mark = len(replica.log)
    crawl(replica, db_path)
    assert sorted(p for p, _s, _h in expert_requests(replica, mark)) == sorted(expert_paths(site))


def test_robots_txt_keeps_the_crawler_off_expert_pages(replica, site, db_path):
    site.robots = "User-agent: *\nDisallow: /en/experts/\n"
    crawl(replica, db_path)
    assert all(not p.startswith("/en/") for p, _s, _h in expert_requests(replica))
    statuses = {r["status"] for u, r in experts(db_path).items() if "/en/experts/" in u}
    assert statuses == {"robots_forbidden"}
    mark = len(replica.log)
    crawl(replica, db_path)  # final until a --full run: not asked again
    assert expert_requests(replica, mark) == []


def test_search_and_export_by_author(replica, site, db_path):
    crawl(replica, db_path)
    base = replica.url.rstrip("/")

    def by(name: str) -> set[str]:
        return {base + a.path for a in site.live() if any(name in n for n, _ in a.authors)}

    def exported(*args: str) -> set[str]:
        result = run_cli("export", "--db", db_path, *args)
        assert result.returncode == 0, result.stderr
        return {row["url"] for row in result.jsonl()}

    assert by("山田 花子") and by("Yamada")
    assert exported("--author", "山田 花子") == by("山田 花子")
    assert exported("--author", "山田花子") == by("山田 花子")  # spaces ignored
    assert exported("--author", "yamada") == by("Yamada")  # case ignored, part of a name
    assert exported("--author", "Yamada", "--lang", "ja") == set()  # the other filters still apply
    hits = run_cli("search", "--db", db_path, "--format", "json", "--limit", "1000", "--author", "Yamada", "policy")
    urls = {h["url"] for h in json.loads(hits.stdout)}
    assert urls and urls <= by("Yamada")
    for bad in ("", "  "):
        result = run_cli("export", "--db", db_path, "--author", bad)
        assert result.returncode == 2 and result.stderr.count("\n") == 1 and "--author" in result.stderr


def test_the_author_filter_reads_the_name_on_the_expert_page_too(db_path):
    article = {
        "url": "https://npi.or.jp/en/research/2024/01/01000000.html",
        "lang": "en",
        "title": "T",
        "published": "2024-01-01",
        "body": "B",
        "authors": [("H. Yamada", "https://npi.or.jp/en/experts/yamada.html")],
        "pdfs": [],
    }
    with Archive.open(db_path) as archive:
        archive.store_article(ArticleRecord(**article), run_id=None)
        assert list(archive.iter_articles(author="Hanako")) == []
        archive.store_expert(article["authors"][0][1], status="ok", run_id=None, lang="en", name="Hanako Yamada")
        assert [a["url"] for a in archive.iter_articles(author="hanako")] == [article["url"]]
        assert [a["url"] for a in archive.iter_articles(author="H. Yam")] == [article["url"]]
        assert list(archive.iter_articles(author="50%")) == []  # % and _ are letters, not wildcards


@pytest.mark.parametrize(
    ("url", "known", "recheck", "requested", "conditional"),
    [
        ("https://npi.or.jp/experts/a.html", None, False, True, False),
        ("https://npi.or.jp/experts/a.html", ("ok", '"e"', None), False, False, False),
        ("https://npi.or.jp/experts/a.html", ("ok", '"e"', None), True, True, True),
        ("https://npi.or.jp/experts/a.html", ("error", None, None), False, True, False),
        ("https://npi.or.jp/experts/a.html", ("http_404", None, None), False, False, False),
        ("https://example.com/experts/a.html", None, False, False, False),
    ],
)
def test_which_expert_pages_are_requested(url, known, recheck, requested, conditional):
    fetcher = ExpertFetcher(enabled=True, allowed_domains=["npi.or.jp"], known={url: known} if known else {})
    requests = list(fetcher.requests([url, url], recheck=recheck))  # a repeat is never asked twice
    assert len(requests) == (1 if requested else 0)
    if requests:
        assert ("If-None-Match" in requests[0].headers) == conditional
        assert requests[0].meta["npi_kind"] == "expert"
    assert list(ExpertFetcher(enabled=False, allowed_domains=["npi.or.jp"]).requests([url])) == []
