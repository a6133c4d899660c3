"""The researcher surface against archives crawled from replicas: search (English, Japanese,
PDF-only terms; ranking and filters), CSV, Atom feeds, history, and PDFs fetched once."""

from __future__ import annotations

import csv
import io
import json
import sqlite3

import feedparser
import pytest

from tests.conftest import crawl, run_cli
from tests.site import ReplicaServer, generate_site
from tests.site.model import BROKEN_PDF

SEED, N_ARTICLES, PER_PAGE = 7, 50, 4


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """One crawl of a replica the other tests have not seen (seed 7), shared by the read-only tests."""
    site = generate_site(seed=SEED, n_articles=N_ARTICLES, per_page=PER_PAGE)
    db_path = str(tmp_path_factory.mktemp("research") / "npi.db")
    with ReplicaServer(site) as replica:
        result = crawl(replica, db_path)
        base = replica.url.rstrip("/")
    return {"site": site, "db": db_path, "base": base, "summary": result.stdout}


def search(archive, *args: str) -> list[dict]:
    result = run_cli("search", "--db", archive["db"], "--format", "json", "--limit", "1000", *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def expected_urls(archive, term: str, *, lang: str | None = None, sections=None, pdf: bool = False) -> set:
    """Which articles contain ``term`` (case-insensitive substring), from the model alone."""
    out = set()
    for a in archive["site"].live():
        if lang and a.lang != lang or sections and not set(sections) & set(a.sections):
            continue
        if pdf:
            text = " ".join(t for t in a.pdf_texts.values() if t != BROKEN_PDF)
        else:
            text = " ".join(a.title.split()) + "\n" + a.expected_body()
        if term.lower() in text.lower():
            out.add(archive["base"] + a.path)
    return out


@pytest.mark.parametrize(
    "term", ["semiconductors", "Taiwan Strait", "半導体", "経済安全保障", "憲法", "財政"]
)
def test_search_finds_every_article_with_the_term_and_nothing_else(archive, term):
    hits = search(archive, term)
    expected = expected_urls(archive, term)
    assert expected, f"the model has no article with {term!r}: pick another term"
    assert {h["url"] for h in hits if h["match"] == "text"} == expected
    # the rest match only through a PDF they link
    pdf_only = expected_urls(archive, term, pdf=True) - expected
    assert {h["url"] for h in hits if h["match"] == "pdf"} == pdf_only
    assert [h["match"] for h in hits] == ["text"] * len(expected) + ["pdf"] * len(pdf_only)
    hits = [h for h in hits if h["match"] == "text"]
    assert all(term.lower() in h["snippet"].lower().replace("[", "").replace("]", "") for h in hits)


def test_title_matches_rank_above_body_only_matches(archive):
    term = "semiconductors"
    hits = search(archive, term)
    in_title = [term in h["title"].lower() for h in hits]
    assert any(in_title) and not all(in_title)
    # every title hit comes before every body-only hit
    assert in_title == sorted(in_title, reverse=True)
    two_chars = search(archive, "憲法")  # the LIKE path ranks title matches first too
    flags = ["憲法" in h["title"] for h in two_chars]
    assert any(flags) and flags == sorted(flags, reverse=True)


def test_a_word_only_in_a_pdf_finds_the_article_that_links_it(archive):
    site = archive["site"]
    # a pdfonlyterm<N> that is no other term's prefix (pdfonlyterm1 would also match pdfonlyterm12)
    terms = {t.split()[-1] for a in site.live() for t in a.pdf_texts.values() if t != BROKEN_PDF}
    term = next(t for t in sorted(terms) if not any(o != t and o.startswith(t) for o in terms))
    hits = search(archive, term)
    assert {h["url"] for h in hits} == expected_urls(archive, term, pdf=True)
    assert len(hits) == 1 and hits[0]["match"] == "pdf" and hits[0]["pdf_url"].endswith(".pdf")
    assert f"[{term}]" in hits[0]["snippet"]
    table = run_cli("search", "--db", archive["db"], term)
    assert "in PDF" in table.stdout and hits[0]["url"] in table.stdout


def test_filters_narrow_the_results(archive):
    pdf_any = search(archive, "pdfonlyterm", "--lang", "ja")
    assert {h["url"] for h in pdf_any} == expected_urls(archive, "pdfonlyterm", lang="ja", pdf=True)
    policy = search(archive, "This paper", "--section", "policy", "--section", "economy")
    assert {h["url"] for h in policy} == expected_urls(archive, "This paper", sections=["policy", "economy"])
    dated = search(archive, "研究会", "--since", "2019-04", "--until", "2022")
    everything = search(archive, "研究会")
    assert dated and len(dated) < len(everything)
    assert {h["url"] for h in dated} == {
        h["url"] for h in everything if h["published"] and "2019-04" <= h["published"][:7] <= "2022-12"
    }
    assert len(search(archive, "研究会", "--limit", "3")) == 3


@pytest.mark.parametrize("query", ['"unbalanced', "NOT", "a*b:c", "paper -x", "(", "paper NEAR/2"])
def test_query_syntax_never_breaks_the_search(archive, query):
    result = run_cli("search", "--db", archive["db"], "--format", "json", query)
    assert result.returncode == 0, result.stderr
    assert isinstance(json.loads(result.stdout), list)


def test_bad_search_input_is_one_line(archive):
    for args in (["--fts", "paper OR ("], [""], ["x", "--since", "2021-13"]):
        result = run_cli("search", "--db", archive["db"], *args)
        assert result.returncode in (1, 2), args
        assert "Traceback" not in result.stderr
        assert len([line for line in result.stderr.splitlines() if line.startswith("Error")]) == 1
    assert run_cli("search", "--db", archive["db"], "--fts", "paper OR 経済安全保障").returncode == 0


def test_search_csv_and_table_formats(archive):
    result = run_cli("search", "--db", archive["db"], "--format", "csv", "半導体")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert {r["url"] for r in rows} == expected_urls(archive, "半導体")
    assert rows[0]["rank"] == "1" and rows[0]["title"]
    none = run_cli("search", "--db", archive["db"], "zzzqqqxxx")
    assert none.returncode == 0 and none.stdout == "" and "no article matches" in none.stderr


def test_export_csv_has_one_row_per_article(archive):
    result = run_cli("export", "--db", archive["db"], "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == len(archive["site"].live()) == len({r["url"] for r in rows})
    assert all(json.loads(r["sections"]) for r in rows)
    until = run_cli("export", "--db", archive["db"], "--format", "csv", "--until", "2019")
    old = list(csv.DictReader(io.StringIO(until.stdout)))
    assert old and all(r["published"] <= "2019-12-31" for r in old if r["published"])
    assert len(old) == sum(1 for r in rows if r["published"] and r["published"] <= "2019-12-31")


@pytest.mark.parametrize("section,lang", [("policy", None), ("industry", "en"), ("government", "ja")])
def test_atom_feed_validates_and_lists_newest_first(archive, section, lang, tmp_path):
    args = ["feed", "--db", archive["db"], "--section", section, *(["--lang", lang] if lang else [])]
    result = run_cli(*args, "--limit", "500")
    assert result.returncode == 0, result.stderr
    parsed = feedparser.parse(result.stdout.encode())
    assert not parsed.bozo, parsed.get("bozo_exception")
    expected = [a for a in archive["site"].live() if section in a.sections and lang in (None, a.lang)]
    assert len(parsed.entries) == len(expected)
    assert {e.id for e in parsed.entries} == {archive["base"] + a.path for a in expected}
    updated = [e.updated_parsed for e in parsed.entries]
    assert updated == sorted(updated, reverse=True)
    assert all(e.summary and e.link == e.id for e in parsed.entries)
    limited = feedparser.parse(run_cli(*args, "--limit", "2").stdout.encode())
    assert [e.id for e in limited.entries] == [e.id for e in parsed.entries[:2]]


def test_broken_pdf_is_a_warning_not_a_failure(archive):
    conn = sqlite3.connect(archive["db"])
    run = conn.execute("SELECT status, errors, warnings FROM runs").fetchone()
    assert run[0] == "ok" and run[1] == 0 and run[2] >= 1
    kinds = [r[0] for r in conn.execute("SELECT kind FROM run_errors")]
    assert kinds == ["pdf:broken"]
    statuses = dict(conn.execute("SELECT status, count(*) FROM pdf_texts GROUP BY status").fetchall())
    n_pdfs = sum(len(a.pdfs) for a in archive["site"].live())
    assert statuses == {"ok": n_pdfs - 1, "broken": 1}
    assert "warnings/pdf/broken: 1" in archive["summary"]
    assert f"pdfs       {n_pdfs} requested: {n_pdfs - 1} with text" in archive["summary"]


# -- crawls that change the site between runs ----------------------------------------------------


def pdf_requests(replica: ReplicaServer, since: int) -> list[tuple[str, int, dict]]:
    return [(p, s, h) for m, p, s, h in replica.log[since:] if p.endswith(".pdf")]


def test_pdfs_are_downloaded_once_and_rechecked_conditionally_by_full_runs(db_path):
    site = generate_site(seed=13, n_articles=30, per_page=5)
    n_pdfs = sum(len(a.pdfs) for a in site.live())
    with ReplicaServer(site) as replica:
        crawl(replica, db_path)
        first = pdf_requests(replica, 0)
        assert sorted(p for p, _s, _h in first) == sorted(p for a in site.live() for p in a.pdfs)
        mark = len(replica.log)
        crawl(replica, db_path)
        assert pdf_requests(replica, mark) == []
        mark = len(replica.log)
        crawl(replica, db_path, "--full")
        full = pdf_requests(replica, mark)
        assert len(full) == n_pdfs and all(s == 304 and "If-None-Match" in h for _p, s, h in full)
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT count(*) FROM pdf_texts").fetchone()[0] == n_pdfs


def test_no_pdfs_skips_them_and_a_later_run_fetches_the_backlog(db_path):
    site = generate_site(seed=17, n_articles=24, per_page=6)
    with ReplicaServer(site) as replica:
        crawl(replica, db_path, "--no-pdfs")
        assert pdf_requests(replica, 0) == []
        conn = sqlite3.connect(db_path)
        assert conn.execute("SELECT count(*) FROM pdf_texts").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM pdfs").fetchone()[0] > 0
        mark = len(replica.log)
        crawl(replica, db_path)
        fetched = {p for p, s, _h in pdf_requests(replica, mark) if s == 200}
        assert fetched == {p for a in site.live() for p in a.pdfs}


def test_a_pdf_over_the_size_cap_is_a_warning(db_path):
    site = generate_site(seed=19, n_articles=12, per_page=6)
    with ReplicaServer(site) as replica:
        result = crawl(replica, db_path, "-s", "NPI_PDF_MAXSIZE=200")
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT status FROM runs").fetchone()[0] == "ok"
    statuses = {r[0] for r in conn.execute("SELECT status FROM pdf_texts")}
    assert statuses == {"too_large", "broken"}, statuses  # the broken one is 70 bytes
    assert "warnings/pdf/too_large" in result.stdout


def test_history_shows_the_diff_after_an_edit_and_a_full_crawl(db_path):
    site = generate_site(seed=29, n_articles=16, per_page=4)
    target = sorted(site.live(), key=lambda a: a.path)[2]
    old_title = " ".join(target.title.split())
    with ReplicaServer(site) as replica:
        crawl(replica, db_path)
        url = replica.url.rstrip("/") + target.path
        before = run_cli("history", "--db", db_path, url)
        assert before.returncode == 0 and "1 version" in before.stdout and " -> " not in before.stdout
        with replica.lock:
            site.edit(target.path, title="Corrected title 訂正", append="An added closing paragraph.")
        crawl(replica, db_path, "--full")
    result = run_cli("history", "--db", db_path, url)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "2 versions" in out and "version 2: stored" in out and "Corrected title 訂正" in out
    # what changed, as a --changes alert says it (monitor/changes.py): the old title, the added sentence
    changes = out.split("version 1 -> 2 (stored ", 1)[1].splitlines()[1:]
    assert changes == [f"Title was: {old_title}", "+ An added closing paragraph."]
    unknown = run_cli("history", "--db", db_path, replica.url + "en/research/1999/01/01000000.html")
    assert unknown.returncode == 1 and unknown.stderr.count("\n") == 1 and "no article" in unknown.stderr


def test_commands_on_a_missing_archive_say_so_in_one_line(tmp_path):
    missing = str(tmp_path / "nope.db")
    for args in (
        ["search", "x"],
        ["feed", "--section", "policy"],
        ["history", "https://npi.or.jp/a.html"],
        ["serve", "--port", "0"],
    ):
        result = run_cli(*args, "--db", missing)
        assert result.returncode == 1, args
        assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr
    assert not (tmp_path / "nope.db").exists()


def test_a_cut_list_says_the_total_and_how_to_see_every_match(archive):
    every = search(archive, "研究会")  # --limit 1000: every match
    assert len(every) > 20 and {h["total"] for h in every} == {len(every)}
    cut = run_cli("search", "--db", archive["db"], "研究会")
    assert cut.returncode == 0 and cut.stdout.count("研究会") >= 20
    assert cut.stderr == f"20 of {len(every)} articles shown, best first; --limit {len(every)} shows them all\n"
    rows = list(csv.DictReader(io.StringIO(run_cli("search", "--db", archive["db"], "--format", "csv", "研究会").stdout)))
    assert len(rows) == 20 and {r["total"] for r in rows} == {str(len(every))}
    assert all(float(r["score"]) >= 0 for r in rows)  # the documented score column
    whole = run_cli("search", "--db", archive["db"], "--limit", str(len(every)), "研究会")
    assert whole.stderr == ""  # nothing cut, nothing to say


def test_a_count_past_its_bound_says_more_than_the_bound(archive, monkeypatch):
    from npi_crawler.archive import Archive
    from npi_crawler.cli.research import total_line
    from npi_crawler.research import search as searching

    every = len(search(archive, "研究会"))
    monkeypatch.setattr(searching, "COUNT_CAP", 5)
    with Archive.open(archive["db"], readonly=True) as db:
        bounded = searching.search(db, "研究会", limit=3)
        whole = searching.search(db, "研究会", limit=every)  # the limit is the bound then
    assert (len(bounded), bounded.total, bounded.exact) == (3, 5, False)
    assert (whole.total, whole.exact) == (every, True) and [h.url for h in whole][:3] == [h.url for h in bounded]
    assert total_line(3, 5, False) == "3 of more than 5 articles shown, best first; a higher --limit shows and counts more"
