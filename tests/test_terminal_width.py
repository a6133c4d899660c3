"""Every command's human output fits the terminal (issue 22): at 60, 80 and 120 columns (COLUMNS, as
a terminal would say), no line of status, probe, rules check, doctor, or the crawl and watch
summaries is wider, a Japanese character counting two columns; only a word wider than a whole
line (a URL) stays whole, on a line of its own, for the terminal to wrap."""

from __future__ import annotations

import unicodedata

import pytest

from tests.conftest import run_cli
from tests.site import ReplicaServer, generate_site

WIDTHS = (60, 80, 120)
RULES = (  # the [[rule]] tables as one array of inline tables: the same to the TOML reader
    'rule = [{ name = "chips", any = ["半導体", "semiconductors", "経済安全保障と半導体のサプライチェーン"] },\n'
    '  { name = "security-policy", any = ["economic security"], all = ["This paper"] }]\n'
)


def width(line: str) -> int:
    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in line)


def too_wide(text: str, columns: int) -> list[str]:
    """The lines wider than ``columns``, but for one unbreakable word alone after its indent."""
    return [line for line in text.splitlines() if width(line) > columns and " " in line.strip()]


@pytest.fixture(scope="module")
def site():
    return generate_site(seed=1)


@pytest.fixture(scope="module")
def replica(site):
    with ReplicaServer(site) as server:
        yield server


@pytest.fixture(scope="module")
def crawled(replica, tmp_path_factory):
    """One crawl per width (each summary printed at its width) and a rules file."""
    folder = tmp_path_factory.mktemp("widths")
    rules = folder / "rules.toml"
    rules.write_text(RULES, encoding="utf-8")
    summaries = {}
    for columns in WIDTHS:
        db = str(folder / f"npi{columns}.db")
        result = run_cli("crawl", "--db", db, "--base-url", replica.url, env={"COLUMNS": str(columns)})
        assert result.returncode == 0, result.stderr
        summaries[columns] = result.stdout
    return {"db": str(folder / "npi60.db"), "rules": str(rules), "summaries": summaries}


def at(columns: int, *args: str, ok=(0,)) -> str:
    result = run_cli(*args, env={"COLUMNS": str(columns)})
    assert result.returncode in ok, result.stderr
    assert result.stdout.strip()
    return result.stdout


@pytest.mark.parametrize("columns", WIDTHS)
def test_the_crawl_summary_fits(crawled, columns):
    summary = crawled["summaries"][columns]
    assert "pdf:broken" in summary  # the replica's broken PDF: the summary's longest line
    assert too_wide(summary, columns) == []


@pytest.mark.parametrize("columns", WIDTHS)
def test_status_and_the_watch_summary_fit(crawled, replica, columns):
    watch = at(columns, "watch", "--db", crawled["db"], "--base-url", replica.url, "--dry-run")
    status = at(columns, "status", "--db", crawled["db"])
    assert "run" in status and "healthy" in status
    assert too_wide(watch, columns) == too_wide(status, columns) == []
    if columns < 100:  # the runs table: a row continues under its first column, never mid-word
        assert any(line.startswith("       ") and "diff" in line for line in status.splitlines())


@pytest.mark.parametrize("columns", WIDTHS)
def test_rules_check_fits_with_japanese_snippets(crawled, columns):
    shown = at(columns, "rules", "check", crawled["rules"], "--db", crawled["db"])
    assert "[半導体]" in shown or "[semiconductors]" in shown
    assert too_wide(shown, columns) == []


@pytest.mark.parametrize("columns", WIDTHS)
def test_probe_and_doctor_fit(crawled, replica, site, columns):
    article = next(a for a in site.live() if a.lang == "ja" and a.authors)
    for url in (replica.url + "research/policy/index.html", replica.url.rstrip("/") + article.path):
        assert too_wide(at(columns, "probe", url), columns) == []
    doctor = at(columns, "doctor", "--db", crawled["db"], "--base-url", replica.url, "--no-notify", ok=(0, 1))
    assert "ok" in doctor and too_wide(doctor, columns) == []
