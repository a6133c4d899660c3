"""The pages as served: a crawl of the replica writes them as gzip WARC files that warcio reads,
the archive points to each record, and ``snapshot`` gives a page back as it was at a moment."""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator

from npi_crawler.archive.warc import payload_digest
from npi_crawler.site.articles import parse_article
from tests.conftest import crawl, export_rows, run_cli
from tests.crash import check_warc_pointers
from tests.site import ReplicaServer, generate_site
from tests.site.render import render

SEED, N_ARTICLES, PER_PAGE = 3, 30, 4


def warc_records(directory: Path) -> list[dict]:
    """Every record of every file, in order, each response's digest checked against its payload."""
    records = []
    for path in sorted(directory.iterdir()):
        assert path.name.endswith(".warc.gz") and path.read_bytes()[:2] == b"\x1f\x8b", path.name
        with open(path, "rb") as fh:
            for record in ArchiveIterator(fh):
                payload = record.raw_stream.read()
                headers = record.rec_headers
                if record.rec_type == "response":
                    assert headers.get_header("WARC-Payload-Digest") == payload_digest(payload)
                records.append(
                    {
                        "file": path.name,
                        "type": record.rec_type,
                        "uri": headers.get_header("WARC-Target-URI"),
                        "id": headers.get_header("WARC-Record-ID"),
                        "to": headers.get_header("WARC-Concurrent-To"),
                        "status": record.http_headers.get_statuscode() if record.http_headers else None,
                        "content_type": record.http_headers.get_header("Content-Type") if record.http_headers else None,
                        "payload": payload,
                    }
                )
    return records


def query(db_path: str, sql: str, params=()) -> list[sqlite3.Row]:
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def crawled(tmp_path_factory):
    """One crawl with --warc-dir of a replica the other tests have not seen, shared read-only."""
    site = generate_site(seed=SEED, n_articles=N_ARTICLES, per_page=PER_PAGE)
    root = tmp_path_factory.mktemp("warc")
    db_path, warcs = str(root / "npi.db"), root / "warcs"
    with ReplicaServer(site) as replica:
        summary = crawl(replica, db_path, "--warc-dir", str(warcs)).stdout
        base = replica.url.rstrip("/")
    return {"site": site, "db": db_path, "warcs": warcs, "base": base, "root": root, "summary": summary}


def test_every_archived_page_is_a_gzip_warc_response_record_with_its_html(crawled):
    records = warc_records(crawled["warcs"])
    responses = {r["uri"]: r for r in records if r["type"] == "response"}
    rows = export_rows(crawled["db"])
    assert len(rows) == len(crawled["site"].live()) > 20
    for row in rows:
        record = responses[row["url"]]
        assert record["status"] == "200" and record["content_type"].startswith("text/html")
        assert parse_article(record["payload"].decode("utf-8"), row["url"]).title == row["title"]
        path = row["url"][len(crawled["base"]) :]
        assert record["payload"] == render(crawled["site"], path).body  # byte for byte as served
    for url, sha256 in query(crawled["db"], "SELECT url, sha256 FROM pdf_texts"):
        assert hashlib.sha256(responses[url]["payload"]).hexdigest() == sha256
    assert any("/research/policy/index.html" in uri for uri in responses)  # list pages too
    # Each exchange: the response, then its request and a metadata record naming the run.
    by_id = {r["id"]: r for r in records}
    for kind in ("request", "metadata"):
        tied = [r for r in records if r["type"] == kind]
        assert len(tied) == len(responses) and all(by_id[r["to"]]["type"] == "response" for r in tied)
    assert all(b"run-id: 1\r\n" in r["payload"] for r in records if r["type"] == "metadata")
    assert [r["type"] for r in records].count("warcinfo") == len(list(crawled["warcs"].iterdir()))
    assert not (crawled["root"] / "npi-warc").exists()  # --warc-dir, not the default folder
    # warcio's own checker: every record's block and payload digests verified
    files = sorted(str(p) for p in crawled["warcs"].iterdir())
    check = subprocess.run([str(Path(sys.executable).parent / "warcio"), "check", "-v", *files], capture_output=True, text=True)
    assert check.returncode == 0 and "digest pass" in check.stdout and "fail" not in check.stdout
    size = sum(p.stat().st_size for p in crawled["warcs"].iterdir()) / 1e6
    line = f"  warc       {len(responses)} responses, 0 revisits (not modified), {size:.1f} MB in {crawled['warcs']}"
    assert line in crawled["summary"].splitlines()


def test_the_archive_points_to_each_record_in_the_transaction_of_its_row(crawled):
    db = crawled["db"]
    assert check_warc_pointers(db) > N_ARTICLES
    missing = query(
        db,
        "SELECT url FROM articles a WHERE NOT EXISTS (SELECT 1 FROM warc_records w WHERE w.url = a.url "
        "AND w.content_hash = a.content_hash AND w.record_type = 'response' AND w.kind = 'article')",
    )
    assert missing == []
    files = query(db, "SELECT DISTINCT directory FROM warc_files")
    assert [tuple(r) for r in files] == [(str(crawled["warcs"]),)]


def test_snapshot_prints_the_page_as_served_and_its_text(crawled):
    site, base = crawled["site"], crawled["base"]
    article = sorted(site.live(), key=lambda a: a.path)[0]
    url = base + article.path
    result = run_cli("snapshot", url, "--db", crawled["db"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.encode() == render(site, article.path).body
    assert " ".join(article.title.split()) in result.stdout
    assert len(result.stderr.splitlines()) == 1 and "as served at" in result.stderr and "WARC npi-" in result.stderr
    text = run_cli("snapshot", url, "--db", crawled["db"], "--format", "text")
    assert text.returncode == 0 and text.stdout == article.expected_body() + "\n"


def test_snapshot_without_a_page_to_show_is_one_line_and_a_failure(crawled, tmp_path):
    db, url = crawled["db"], crawled["base"] + sorted(crawled["site"].articles)[0]
    cases = [
        (["snapshot", crawled["base"] + "/research/1999/01/01000000.html"], 1, "no WARC record of"),
        (["snapshot", url, "--at", "2001"], 1, "no WARC record of " + url + " at or before 2001; the first is from"),
        (["snapshot", url, "--at", "2024-02-30"], 2, "is not a date like 2024-06-30 or a UTC time"),
        (["snapshot", url, "--at", "2024-06-30T25:00"], 2, "is not a date like"),
        (["snapshot", url, "--format", "pdf"], 2, "'pdf' is not one of 'html', 'text'"),
        (["snapshot", url, "--warc-dir", str(tmp_path)], 1, f"is in none of {tmp_path}; give --warc-dir the folder"),
    ]
    for args, code, fragment in cases:
        result = run_cli(*args, "--db", db)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == code and len(lines) == 1 and fragment in lines[0], (args, result.stderr)
        assert result.stdout == ""


def test_snapshot_of_a_moved_missing_or_damaged_warc_file(crawled, tmp_path):
    db = shutil.copy(crawled["db"], tmp_path / "npi.db")
    url = crawled["base"] + sorted(crawled["site"].articles)[0]
    [row] = query(db, "SELECT filename, file_offset, record_length FROM warc_records WHERE url = ?", (url,))
    moved = tmp_path / "elsewhere"
    shutil.copytree(crawled["warcs"], moved)
    assert run_cli("snapshot", url, "--db", str(db), "--warc-dir", str(moved)).returncode == 0
    shutil.copytree(moved, tmp_path / "npi-warc")  # beside the archive: found without --warc-dir
    found = run_cli("snapshot", url, "--db", str(db), "--format", "text")
    assert found.returncode == 0 and found.stdout.strip()
    damaged = moved / row["filename"]
    data = bytearray(damaged.read_bytes())
    data[row["file_offset"] + row["record_length"] // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    result = run_cli("snapshot", url, "--db", str(db), "--warc-dir", str(moved))
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith(f"Error: {row['filename']}") and len(result.stderr.splitlines()) == 1
    (moved / row["filename"]).unlink()
    gone = run_cli("snapshot", url, "--db", str(db), "--warc-dir", str(moved))
    assert gone.returncode == 1 and f"the WARC file {row['filename']} is in none of {moved}" in gone.stderr


def test_after_an_edit_snapshot_at_before_shows_the_old_text_and_without_at_the_new(tmp_path):
    site = generate_site(seed=SEED + 1, n_articles=12, per_page=4)
    db_path = str(tmp_path / "npi.db")
    edited, untouched = sorted(a.path for a in site.live())[:2]
    with ReplicaServer(site) as replica:
        crawl(replica, db_path)
        old_body = site.articles[edited].expected_body()
        time.sleep(1.1)
        before = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        time.sleep(1.1)
        with replica.lock:
            site.edit(edited, append="A paragraph added after publication.")
        crawl(replica, db_path, "--full")
        url = replica.url.rstrip("/") + edited

    def snapshot(*args: str) -> str:
        result = run_cli("snapshot", url, "--db", db_path, "--format", "text", *args)
        assert result.returncode == 0, result.stderr
        return result.stdout.rstrip("\n")

    assert snapshot("--at", before) == old_body
    assert snapshot() == old_body + "\n\nA paragraph added after publication."
    assert snapshot("--at", before[:10]) == snapshot()  # the whole day: the latest version that day
    # Every stored version points to its record; the unchanged article's 304 is a revisit of its
    # first response, and its snapshot is that page.
    versions = query(
        db_path,
        "SELECT content_hash FROM revisions WHERE article_url = ? UNION ALL SELECT content_hash FROM articles WHERE url = ?",
        (url, url),
    )
    assert len(versions) == 2
    for (content_hash,) in versions:
        assert query(db_path, "SELECT 1 FROM warc_records WHERE url = ? AND content_hash = ?", (url, content_hash))
    other = url.replace(edited, untouched)
    kinds = query(db_path, "SELECT record_type, status FROM warc_records WHERE url = ? ORDER BY id", (other,))
    assert [tuple(k) for k in kinds] == [("response", 200), ("revisit", 304)]
    result = run_cli("snapshot", other, "--db", db_path)
    assert result.returncode == 0 and "(HTTP 304, run 2), unchanged since" in result.stderr
    assert result.stdout.encode() == render(site, untouched).body
    assert check_warc_pointers(db_path) > 0


def test_unchanged_list_pages_are_not_written_again_and_no_warc_writes_nothing(tmp_path):
    site = generate_site(seed=SEED + 2, n_articles=12, per_page=4)  # 12: no list page left empty
    db_path = str(tmp_path / "npi.db")
    with ReplicaServer(site) as replica:
        crawl(replica, db_path)
        first = query(db_path, "SELECT count(*) FROM warc_records")[0][0]
        crawl(replica, db_path)  # nothing new: the lists' first pages, unchanged
        assert query(db_path, "SELECT count(*) FROM warc_records")[0][0] == first
        assert len(list((tmp_path / "npi-warc").iterdir())) == 1  # the default folder, one file
        other = tmp_path / "other.db"
        crawl(replica, str(other), "--no-warc")
    assert not (tmp_path / "other-warc").exists()
    assert query(str(other), "SELECT count(*) FROM warc_records")[0][0] == 0


def test_a_warc_folder_that_cannot_be_made_stops_the_crawl_before_it_starts(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a folder\n")
    with ReplicaServer(generate_site(seed=SEED, n_articles=10)) as replica:
        for folder, code, fragment in [
            (notes, 2, "is a file"),
            (notes / "warcs", 1, f"the WARC folder {notes / 'warcs'} cannot be made: {notes} is a file"),
        ]:
            result = run_cli("crawl", "--db", str(tmp_path / "npi.db"), "--base-url", replica.url, "--warc-dir", str(folder))
            assert result.returncode == code and len(result.stderr.strip().splitlines()) == 1, result.stderr
            assert fragment in result.stderr
        assert replica.log == []


def test_watch_takes_the_same_warc_options(tmp_path):
    site = generate_site(seed=SEED + 3, n_articles=10, per_page=4)
    with ReplicaServer(site) as replica:
        for db, extra in (("a.db", ("--warc-dir", str(tmp_path / "w"))), ("b.db", ("--no-warc",))):
            result = run_cli("watch", "--db", str(tmp_path / db), "--base-url", replica.url, *extra)
            assert result.returncode in (0, 3), result.stderr  # 3: a small site trips the layout alarm
    assert query(str(tmp_path / "a.db"), "SELECT count(*) FROM warc_records")[0][0] > len(site.live())
    assert [p.suffixes for p in (tmp_path / "w").iterdir()] == [[".warc", ".gz"]]
    assert not (tmp_path / "a-warc").exists() and not (tmp_path / "b-warc").exists()
