"""`npi-crawler serve` in a real headless browser: Debian's Chromium driven by Playwright.

No browser is downloaded: Playwright launches /usr/bin/chromium (``scripts/install-system-deps``
installs it; ``make test`` runs that first). Without Chromium the test fails in CI (``CI`` set)
and skips only on a developer machine.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, crawl
from tests.site import ReplicaServer, generate_site

CHROMIUM = os.environ.get("NPI_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def chromium() -> str:
    if Path(CHROMIUM).exists():
        return CHROMIUM
    message = f"{CHROMIUM} is missing: run scripts/install-system-deps (as root) or apt-get install chromium"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def served(tmp_path):
    """An archive crawled from a replica (seed 5), served by `npi-crawler serve --port 0`."""
    db_path = str(tmp_path / "npi.db")
    site = generate_site(seed=5, n_articles=30, per_page=5)
    with ReplicaServer(site) as replica:
        crawl(replica, db_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "npi_crawler", "serve", "--db", db_path, "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        line = ""
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if "Serving" in line or not line:
                break
        match = re.search(r"http://\S+", line)
        assert match, f"serve did not announce its URL: {line!r}"
        yield {"url": match[0], "site": site, "db": db_path}
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_serve_search_in_a_real_browser(chromium, served, tmp_path):
    from playwright.sync_api import sync_playwright

    term = "semiconductors"
    expected = {a.title for a in served["site"].live() if term in (a.title + " " + a.expected_body()).lower()}
    assert expected
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(served["url"] + "/articles", wait_until="load")
            assert "articles" in page.title()
            assert "FTS5 trigram" in page.content()  # the table's description from our metadata
            page.fill("input#_search", term)
            page.press("input#_search", "Enter")
            page.wait_for_url(re.compile(r"_search=semiconductors"))
            rows = page.locator("table.rows-and-columns tbody tr")
            assert rows.count() == len(expected)
            titles = set(page.locator("table.rows-and-columns tbody td.col-title").all_inner_texts())
            assert titles == expected
            page.screenshot(path=str(tmp_path / "search.png"), full_page=True)
            assert (tmp_path / "search.png").stat().st_size > 10_000

            # Japanese through the same trigram index, typed into the search box
            page.goto(served["url"] + "/articles", wait_until="load")
            page.fill("input#_search", "半導体")
            page.press("input#_search", "Enter")
            page.wait_for_url(re.compile(r"_search="))
            ja = {a.title for a in served["site"].live() if "半導体" in a.title + a.expected_body()}
            ja_titles = page.locator("table.rows-and-columns tbody td.col-title").all_inner_texts()
            assert ja and {" ".join(t.split()) for t in ja_titles} == {" ".join(t.split()) for t in ja}
            page.screenshot(path=str(tmp_path / "search-ja.png"), full_page=True)

            page.goto(served["url"] + "/latest_policy_proposals", wait_until="load")
            assert page.locator("h1").inner_text().strip() == "Latest policy proposals"
            policy = [a for a in served["site"].live() if "policy" in a.sections]
            assert page.locator("table.rows-and-columns tbody tr").count() == min(50, len(policy))
            page.screenshot(path=str(tmp_path / "canned.png"), full_page=True)
        finally:
            browser.close()
