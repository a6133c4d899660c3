"""Issue 23, hostile inputs: what a user (or a mistake) can hand the command line, each refused
or survived in one line with the right exit code, nothing stored lost.

11 settings outside their range (a run that never sends a request, with the lock held);
13 files that are not files (FIFOs, devices), too big, too deep, or saved with a BOM;
16 tracebacks: a folder one cannot enter, bytes that are not UTF-8, an output encoding that
   cannot hold the text, a full disk, numbers too large, a damaged WARC pointer;
17 a misspelt key in an Apprise YAML config; 18 a clock set back.

Real processes, the replica over HTTP on 127.0.0.1 where a crawl is involved."""

from __future__ import annotations

import re

import pytest

from npi_crawler.constants import SETTING_RANGES
from tests.conftest import ROOT, run_cli
from tests.site import ReplicaServer, generate_site


def one_line(result, code: int) -> str:
    assert result.returncode == code, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


# -- 11: "never send a request", spelt in other ways ------------------------------------------------

NEVER = [
    (["-s", "CONCURRENT_REQUESTS_PER_DOMAIN=0"], None, "CONCURRENT_REQUESTS_PER_DOMAIN takes a number from 1 to 64"),
    ([], "[scrapy]\nCONCURRENT_REQUESTS_PER_DOMAIN = 0\n", "CONCURRENT_REQUESTS_PER_DOMAIN takes a number from 1 to 64"),
    (["-s", "REACTOR_THREADPOOL_MAXSIZE=0"], None, "REACTOR_THREADPOOL_MAXSIZE takes a number from 1 to 100"),
    (["--delay", "1e308"], None, "'1e308' is more than 600 seconds"),
    ([], "delay = 1e308\n", "is more than 600 seconds"),
    (["-s", "DOWNLOAD_DELAY=1e12"], None, "DOWNLOAD_DELAY takes a number from 0 to 600"),
    (["-s", "AUTOTHROTTLE_START_DELAY=1e12"], None, "AUTOTHROTTLE_START_DELAY takes a number from 0 to 600"),
    (["-s", "DOWNLOAD_TIMEOUT=1e300"], None, "DOWNLOAD_TIMEOUT takes a number from 1 to 3600"),
    (["-s", "NPI_RETRY_AFTER_MAX=1e300"], None, "NPI_RETRY_AFTER_MAX takes a number from 0 to 3600"),
    (["-s", "DOWNLOAD_MAXSIZE=1e300"], None, "DOWNLOAD_MAXSIZE takes a number, 0 or more (default 20971520), at most"),
    (["-s", "CLOSESPIDER_PAGECOUNT=" + "9" * 400], None, "out of range; CLOSESPIDER_PAGECOUNT takes a number, 0 or more"),
]


@pytest.mark.parametrize("args,settings,fragment", NEVER, ids=[" ".join(a) or s.split("\n")[-2] for a, s, _ in NEVER])
def test_a_setting_that_would_never_send_a_request_is_refused_before_anything_opens(tmp_path, args, settings, fragment):
    site = generate_site(seed=1, n_articles=12)
    db = tmp_path / "npi.db"
    extra = []
    if settings is not None:
        (tmp_path / "s.toml").write_text(settings)
        extra = ["--settings", str(tmp_path / "s.toml")]
    with ReplicaServer(site) as replica:
        result = run_cli(*extra, "crawl", "--db", str(db), "--base-url", replica.url, *args, timeout=60)
        line = one_line(result, 2)
        assert fragment in line, line
        assert replica.log == []
    assert sorted(p.name for p in tmp_path.iterdir()) == (["s.toml"] if settings else [])  # no archive, no lock


def test_the_ranges_are_documented():
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    for name, (low, high) in SETTING_RANGES.items():
        assert re.search(rf"`{name}`\s*\|\s*{low:g} to {high:g}\b", text), name
