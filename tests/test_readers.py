"""What readers get out of the archive, through the real CLI on archives crawled from replicas:
removed articles and every stored version in exports, one CSV convention, search that fits the
terminal and takes FTS5 column filters, and summaries that say what happened (issue 10, 9-10)."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import unicodedata
from fcntl import ioctl

import pytest

from tests.conftest import ROOT, crawl, run_cli
from tests.endpoints import JsonSink
from tests.site import ReplicaServer, generate_site, new_article

pytestmark = pytest.mark.slow


def export(db_path: str, *args: str) -> list[dict]:
    result = run_cli("export", "--db", db_path, *args)
    assert result.returncode == 0, result.stderr
    return result.jsonl()


def export_csv(db_path: str, *args: str) -> list[dict]:
    result = run_cli("export", "--db", db_path, "--format", "csv", *args)
    assert result.returncode == 0, result.stderr
    return list(csv.DictReader(io.StringIO(result.stdout)))


CONTENT = ("title", "published", "body", "pdfs", "authors")


# -- export: removed articles and every stored version ---------------------------------------------


@pytest.fixture(scope="module")
def edited(tmp_path_factory):
    """A replica crawled four times: as generated; after an edit of ``target``; after a second
    edit; after ``gone`` was removed. ``versions`` are the oracle's rows of ``target``, in order."""
    site = generate_site(seed=31, n_articles=18, per_page=4)
    ordered = sorted(site.live(), key=lambda a: a.path)
    target = ordered[3]
    # removed: an article whose lists keep another entry (an emptied list page is the layout alarm)
    gone = next(a for a in ordered[4:] if all(_listed_elsewhere(site, a, s) for s in a.sections))
    db_path = str(tmp_path_factory.mktemp("edited") / "npi.db")
    with ReplicaServer(site) as replica:
        base = replica.url.rstrip("/")

        def oracle_row(path):
            return next(r for r in site.expected_export(base) if r["url"] == base + path)

        versions = [oracle_row(target.path)]
        crawl(replica, db_path)
        for change in ({"title": "Corrected title 訂正"}, {"append": "A closing paragraph, added later."}):
            with replica.lock:
                site.edit(target.path, **change)
            versions.append(oracle_row(target.path))
            crawl(replica, db_path, "--full")
        with replica.lock:
            site.remove(gone.path)
        crawl(replica, db_path, "--full")
    return {"db": db_path, "site": site, "target": base + target.path, "gone": base + gone.path, "versions": versions}


def _listed_elsewhere(site, article, section: str) -> bool:
    return any(o is not article and o.lang == article.lang and section in o.sections for o in site.live())


def test_export_include_removed_adds_the_removed_articles_and_removed_at(edited):
    plain = export(edited["db"])
    assert edited["gone"] not in {r["url"] for r in plain} and all("removed_at" not in r for r in plain)
    every = export(edited["db"], "--include-removed")
    assert {r["url"] for r in every} == {r["url"] for r in plain} | {edited["gone"]}
    removed = {r["url"]: r["removed_at"] for r in every if r["removed_at"]}
    assert list(removed) == [edited["gone"]] and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", removed[edited["gone"]])
    rows = export_csv(edited["db"], "--include-removed")
    assert list(rows[0]) == [*list(plain[0]), "removed_at"]
    assert {r["url"]: r["removed_at"] for r in rows} == {r["url"]: r["removed_at"] or "" for r in every}


def test_export_revisions_has_every_stored_version_with_its_dates_and_runs(edited):
    rows = export(edited["db"], "--revisions")
    live = export(edited["db"])
    # one row per article, except the edited one: its two earlier versions, then the current one
    assert len(rows) == len(live) + 2
    assert [r["url"] for r in rows if r["version"] == max(x["version"] for x in rows if x["url"] == r["url"])] == [
        r["url"] for r in live
    ]
    mine = [r for r in rows if r["url"] == edited["target"]]
    assert [r["version"] for r in mine] == [1, 2, 3]
    for got, expected in zip(mine, edited["versions"], strict=True):
        assert {k: got[k] for k in CONTENT} == {k: expected[k] for k in CONTENT}
    # each version was stored when the one before it was replaced, by the run that replaced it
    current = next(r for r in live if r["url"] == edited["target"])
    assert mine[0]["stored_at"] == current["first_seen"]
    assert [r["stored_run_id"] for r in mine] == [1, 2, 3]
    assert [r["replaced_run_id"] for r in mine] == [2, 3, None]
    assert [r["stored_at"] for r in mine[1:]] == [r["replaced_at"] for r in mine[:-1]]
    assert mine[0]["stored_at"] < mine[1]["stored_at"] <= mine[2]["stored_at"] and mine[2]["replaced_at"] is None
    untouched = [r for r in rows if r["url"] != edited["target"]]
    assert all(r["version"] == 1 and r["replaced_at"] is None and r["stored_run_id"] == 1 for r in untouched)


def test_export_revisions_with_removed_articles_filters_and_csv(edited):
    with_removed = export(edited["db"], "--revisions", "--include-removed")
    gone = [r for r in with_removed if r["url"] == edited["gone"]]
    assert len(gone) == 1 and gone[0]["removed_at"] and len(with_removed) == len(export(edited["db"], "--revisions")) + 1
    target = next(a for a in edited["site"].articles.values() if edited["target"].endswith(a.path))
    filters = ["--lang", target.lang, "--since", target.published[:7]]
    filtered = export(edited["db"], "--revisions", *filters)
    assert {r["url"] for r in filtered} == {r["url"] for r in export(edited["db"], *filters)}
    assert sum(r["url"] == edited["target"] for r in filtered) == 3
    # the CSV holds the same rows: lists as JSON arrays, nulls as empty cells
    rows = export_csv(edited["db"], "--revisions", "--include-removed")
    assert len(rows) == len(with_removed) and list(rows[0]) == list(with_removed[0])
    for got, expected in zip(rows, with_removed, strict=True):
        assert json.loads(got["pdfs"]) == expected["pdfs"] and json.loads(got["authors"]) == expected["authors"]
        assert got["version"] == str(expected["version"]) and got["replaced_at"] == (expected["replaced_at"] or "")
        assert got["body"] == expected["body"]


# -- search: column filters, scores, the CSV convention, the terminal's width -------------------


@pytest.fixture(scope="module")
def searchable(tmp_path_factory):
    site = generate_site(seed=7, n_articles=50, per_page=4)
    db_path = str(tmp_path_factory.mktemp("searchable") / "npi.db")
    with ReplicaServer(site) as replica:
        crawl(replica, db_path)
        base = replica.url.rstrip("/")
    return {"db": db_path, "site": site, "base": base}


def search_json(db_path: str, *args: str) -> list[dict]:
    result = run_cli("search", "--db", db_path, "--format", "json", "--limit", "1000", *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_fts_column_filters_search_the_index_that_has_the_column(searchable):
    site, base = searchable["site"], searchable["base"]
    in_title = {base + a.path for a in site.live() if "半導体" in a.title}
    anywhere = {h["url"] for h in search_json(searchable["db"], "半導体")}
    assert in_title and in_title < anywhere  # the filter must narrow the search
    hits = search_json(searchable["db"], "--fts", "title: 半導体")
    assert {h["url"] for h in hits} == in_title and {h["match"] for h in hits} == {"text"}
    assert all("[title]" not in h["snippet"] for h in hits)
    pdf = search_json(searchable["db"], "--fts", "text: pdfonlyterm")
    assert pdf and {h["match"] for h in pdf} == {"pdf"}
    for expression in ("nosuch: 半導体", "title: (半導体", '"半導体', "NOT", "半導体 AND"):
        bad = run_cli("search", "--db", searchable["db"], "--fts", expression)
        assert bad.returncode == 2 and bad.stdout == "", expression  # a usage error
        assert bad.stderr.startswith("Error: the query is not valid: ") and bad.stderr.count("\n") == 1
        assert "damaged" not in bad.stderr and "FTS5 expression" in bad.stderr


def test_scores_are_relevance_higher_first_never_negative_zero(searchable):
    result = run_cli("search", "--db", searchable["db"], "--format", "json", "--limit", "1000", "pdfonlyterm")
    assert "-0.0" not in result.stdout
    hits = json.loads(result.stdout)
    assert hits and {h["match"] for h in hits} == {"pdf"} and all(h["score"] >= 0 for h in hits)
    for term in ("semiconductors", "憲法"):  # the bm25 path and the two-character scan
        scores = [h["score"] for h in search_json(searchable["db"], term) if h["match"] == "text"]
        assert scores and scores == sorted(scores, reverse=True) and scores[0] > 0


def test_every_csv_writes_list_fields_the_same_way(searchable):
    db = searchable["db"]
    found = run_cli("search", "--db", db, "--format", "csv", "--limit", "1000", "研究会")
    hits = list(csv.DictReader(io.StringIO(found.stdout)))
    exported = {r["url"]: r for r in export_csv(db)}
    assert any(len(json.loads(h["sections"])) > 1 for h in hits)  # a cell with several sections
    for hit in hits:
        assert hit["sections"] == exported[hit["url"]]["sections"]  # the same cell, byte for byte
        assert isinstance(json.loads(hit["sections"]), list)


def width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def run_on_a_terminal(columns: int, *args: str) -> str:
    """The CLI with stdout on a pseudo-terminal ``columns`` wide; what the terminal shows."""
    master, slave = pty.openpty()
    ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "npi_crawler", *args], cwd=ROOT, stdout=slave, stderr=subprocess.PIPE, env=env
    )
    os.close(slave)
    shown = bytearray()
    with contextlib.suppress(OSError):  # EIO: the child closed the terminal
        while select.select([master], [], [], 60)[0] and (chunk := os.read(master, 65536)):
            shown += chunk
    proc.wait(timeout=60)
    os.close(master)
    assert proc.returncode == 0, proc.stderr.read()
    return re.sub(r"\x1b\[[0-9;]*m", "", shown.decode()).replace("\r\n", "\n")


def test_search_table_fits_the_terminal_keeps_urls_and_the_match(searchable):
    db = searchable["db"]
    hits = search_json(db, "半導体")
    assert max(width(h["snippet"]) for h in hits) > 120  # the snippets are wider than the terminal
    shown = run_on_a_terminal(60, "search", "--db", db, "--limit", "1000", "半導体")
    lines = shown.splitlines()
    assert len(lines) == 4 * len(hits)
    urls = {h["url"] for h in hits}
    assert {line.strip() for line in lines[2::4]} == urls  # URLs whole, never cut
    assert all(width(line) <= 60 for i, line in enumerate(lines) if i % 4 != 2)
    assert all("[半導体]" in line for line in lines[3::4])  # the match stays in view
    # not a terminal: whole lines (grep, files), unless COLUMNS asks for a width
    piped = run_cli("search", "--db", db, "--limit", "1000", "半導体", env={"COLUMNS": ""})
    assert [line.strip() for line in piped.stdout.splitlines()[3::4]] == [h["snippet"] for h in hits]
    narrow = run_cli("search", "--db", db, "--limit", "1000", "半導体", env={"COLUMNS": "50"})
    assert max(width(line) for line in narrow.stdout.splitlines()[3::4]) <= 50


# -- summaries that say what happened ----------------------------------------------------------------


def test_full_run_summary_counts_every_request_304s_included(replica, site, db_path):
    crawl(replica, db_path)
    mark = len(replica.log)
    summary = crawl(replica, db_path, "--full").stdout
    line = next(x for x in summary.splitlines() if x.startswith("  requests"))
    total, breakdown = re.fullmatch(r"  requests   (\d+) \((.*)\)", line).groups()
    parts = dict((what, int(n)) for n, what in (p.split(" ", 1) for p in breakdown.split(", ")))
    assert parts["articles not modified (304)"] == len(site.live())
    assert sum(parts.values()) == int(total) == len(replica.log) - mark  # what the site answered


@pytest.fixture
def sink():
    with JsonSink() as sink:
        yield sink


def watch(replica, db_path, sink, *extra):
    result = run_cli("watch", "--db", db_path, "--base-url", replica.url, "--notify", sink.url(), *extra)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_send_latest_baseline_summary_says_what_was_sent(replica, site, db_path, sink):
    result = watch(replica, db_path, sink, "--send-latest", "2")
    assert len(sink.posts) == 2
    assert f"baseline: {len(site.live())} articles archived, the latest 2 alerted as a test" in result.stdout
    assert "no alerts sent" not in result.stdout and "2 message(s) sent" in result.stdout


def test_watch_dry_run_says_the_crawl_is_stored_and_the_next_watch_alerts_it(replica, site, db_path, sink):
    assert "stores the crawl" in " ".join(run_cli("watch", "--help").stdout.split())
    watch(replica, db_path, sink)
    proposal = new_article(site, lang="en", sections=["policy"], n=1)
    dry = watch(replica, db_path, sink, "--dry-run")
    assert f"the crawl above is stored in {db_path}" in dry.stdout and "1 new" in dry.stdout
    assert sink.posts == []
    assert proposal.path in {r["url"].removeprefix(replica.url.rstrip("/")) for r in export(db_path)}
    real = watch(replica, db_path, sink)
    assert "1 new" in real.stdout and [p["title"] for p in sink.posts] == [f"[NPI policy/en] {' '.join(proposal.title.split())}"]
