"""The command line: clear one-line errors, exports in both formats, help for every command."""

from __future__ import annotations

import csv
import io
import json
import socket
import time

import pytest
from click.testing import CliRunner

from npi_crawler.archive import Archive
from npi_crawler.archive.records import ArticleRecord
from npi_crawler.cli import cli
from npi_crawler.cli.research import EXPORT_FIELDS
from tests.conftest import run_cli


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def assert_one_line_error(result, *fragments):
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.parametrize("base_url", ["refused", "http://npi-crawler-test.invalid/"])
def test_unreachable_base_url_is_one_clear_line_without_retries(db_path, base_url):
    """A host that refuses connections or does not resolve: one line, in seconds (not 52 retried
    requests over a minute: the default retries are on here), recorded as a failed run."""
    if base_url == "refused":
        base_url = f"http://127.0.0.1:{free_port()}/"
    started = time.monotonic()
    result = run_cli("crawl", "--db", db_path, "--base-url", base_url)
    assert_one_line_error(result, "cannot reach", "--base-url")
    assert result.returncode == 1 and time.monotonic() - started < 30
    status = run_cli("status", "--db", db_path)
    assert status.returncode == 3 and "failed" in status.stderr


def test_db_that_is_not_sqlite_is_one_clear_line_and_left_untouched(tmp_path, replica):
    junk = tmp_path / "notes.db"
    junk.write_bytes(b"not a database at all\n" * 50)
    result = run_cli("crawl", "--db", str(junk), "--base-url", replica.url)
    assert_one_line_error(result, "not an npi-crawler archive")
    assert junk.read_bytes() == b"not a database at all\n" * 50
    assert replica.log == []  # nothing was crawled


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["crawl", "--section", "sports"], "'sports' is not one of"),
        (["crawl", "--lang", "fr"], "'fr' is not one of"),
        (["export", "--format", "xml"], "'xml' is not one of"),
        (["crawl", "--base-url", "npi.or.jp"], "must start with http"),
        (["crawl", "-s", "NOEQUALS"], "is not NAME=VALUE"),
    ],
)
def test_bad_options_are_usage_errors(args, fragment, db_path):
    result = CliRunner().invoke(cli, [*args, "--db", db_path])
    assert result.exit_code == 2
    assert fragment in result.output
    assert "Traceback" not in result.output


def test_export_of_missing_archive_is_one_line(tmp_path):
    result = CliRunner().invoke(cli, ["export", "--db", str(tmp_path / "none.db")])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: {tmp_path / 'none.db'} does not exist; run "
        f"'npi-crawler crawl --db {tmp_path / 'none.db'}' first"
    ]


@pytest.fixture
def small_archive(db_path):
    archive = Archive.open(db_path)
    for i, lang in enumerate(["ja", "en", "en"]):
        url = f"https://npi.or.jp/{'en/' if lang == 'en' else ''}research/2024/0{i + 1}/01000000.html"
        archive.store_article(
            ArticleRecord(
                url=url,
                lang=lang,
                title=f'Title {i}, "quoted"',
                published=f"2024-0{i + 1}-01",
                body="Line one.\n\nLine two, with a comma.",
                authors=[("A. Author", None)],
                pdfs=[url.replace(".html", ".pdf")],
                notes=[],
            ),
            run_id=None,
        )
        archive.add_listing(url, "policy", run_id=None)
        if i == 2:
            archive.add_listing(url, "economy", run_id=None)
    archive.close()
    return db_path


def test_export_jsonl_has_exactly_the_documented_keys(small_archive):
    result = CliRunner().invoke(cli, ["export", "--db", small_archive])
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert [tuple(r) for r in rows] == [EXPORT_FIELDS] * 3
    assert [r["published"] for r in rows] == ["2024-03-01", "2024-02-01", "2024-01-01"]
    assert rows[0]["sections"] == ["economy", "policy"]
    assert rows[0]["first_seen"].endswith("Z")


def test_export_csv_reads_back_with_the_csv_module(small_archive, tmp_path):
    out = tmp_path / "a.csv"
    result = CliRunner().invoke(
        cli, ["export", "--db", small_archive, "--format", "csv", "-o", str(out), "--lang", "en"]
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert len(rows) == 2
    assert rows[0]["title"] == 'Title 2, "quoted"'
    assert rows[0]["body"] == "Line one.\n\nLine two, with a comma."
    assert json.loads(rows[0]["sections"]) == ["economy", "policy"]


def test_every_command_has_help():
    for name, command in cli.commands.items():
        assert command.help, f"{name} has no help text"
        result = CliRunner().invoke(cli, [name, "--help"])
        assert result.exit_code == 0


def test_module_entry_point_and_version():
    result = run_cli("--version")
    assert result.returncode == 0 and "npi-crawler" in result.stdout
