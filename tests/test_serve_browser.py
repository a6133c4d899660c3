"""`npi-crawler serve` in a real headless browser: Debian's Chromium driven by Playwright.

No browser is downloaded: Playwright launches /usr/bin/chromium (``scripts/install-system-deps``
installs it; ``make test`` runs that first). Without Chromium the test fails in CI (``CI`` set)
and skips only on a developer machine.

Screenshots are kept in tests/artifacts/serve/ (ignored by git): a Japanese and an English article
page, the Search page, a table page and a canned query, for a person to look at.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from npi_crawler.archive import Archive
from npi_crawler.research.citations import highwire_tags, with_authors
from tests.conftest import ROOT, run_cli
from tests.site import ReplicaServer, generate_site

ARTIFACTS = ROOT / "tests" / "artifacts" / "serve"

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
        result = run_cli("crawl", "--db", db_path, "--base-url", replica.url)
        assert result.returncode == 0, result.stderr
        base = replica.url.rstrip("/")
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
        yield {"url": match[0], "site": site, "db": db_path, "base": base}
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000


def expected_tags(db: str, url: str) -> list[tuple[str, str]]:
    """The meta tags an article's page must carry, from the archive's own record of it."""
    with Archive.open(db, readonly=True) as archive:
        return highwire_tags(next(with_authors(archive, archive.iter_articles(url=url))))


def check_article_page(page, served, article, name: str) -> None:
    """Open an article from the articles table and read it as a page: title, body column, meta."""
    url = served["base"] + article.path
    page.goto(f"{served['url']}/articles?url={url}", wait_until="load")
    page.locator("table.rows-and-columns tbody td.col-url a").first.click()
    page.wait_for_load_state("load")
    assert " ".join(page.locator("article.npi-page h1").inner_text().split()) == " ".join(article.title.split())
    first = page.locator(".npi-body p").first
    box = first.bounding_box()
    assert box and 300 < box["width"] <= 800  # a readable column, not a table cell
    assert first.inner_text().strip()[:10] in " ".join(article.expected_body().split())
    tags = page.eval_on_selector_all(
        "meta[name^=citation_]", "els => els.map(e => [e.getAttribute('name'), e.getAttribute('content')])"
    )
    assert [tuple(t) for t in tags] == expected_tags(served["db"], url)
    assert page.locator("details.npi-stored").count() == 1  # internal columns folded away
    shot(page, name)


def test_serve_in_a_real_browser(chromium, served):
    from playwright.sync_api import sync_playwright

    site = served["site"]
    live = site.live()
    ja = next(a for a in live if a.lang == "ja" and a.authors and a.pdf_texts)
    en = next(a for a in live if a.lang == "en" and a.authors)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            check_article_page(page, served, ja, "article-ja")
            check_article_page(page, served, en, "article-en")

            # The Search page: a two-character Japanese term, the total, no SQL.
            page.goto(served["url"].rsplit("/", 1)[0] + "/", wait_until="load")
            page.locator("a", has_text="Search").first.click()
            page.fill("input[name=q]", "憲法")
            page.press("input[name=q]", "Enter")
            page.wait_for_url(re.compile(r"q="))
            expected = {a.title for a in live if "憲法" in " ".join(a.title.split()) + a.expected_body()}
            pdf_only = {a.title for a in live if "憲法" in " ".join(a.pdf_texts.values())} - expected
            titles = {" ".join(t.split()) for t in page.locator(".npi-hit-title").all_inner_texts()}
            assert expected and titles == {" ".join(t.split()) for t in expected | pdf_only}
            assert f"{len(titles)} articles match 憲法" in page.locator(".npi-total").inner_text()
            assert "select " not in page.content().lower().replace("<select", "")
            shot(page, "search-ja")

            # Datasette's own pages still work: the table's search box, a canned query.
            page.goto(served["url"] + "/articles", wait_until="load")
            assert "FTS5 trigram" in page.content()  # the table's description from our metadata
            page.fill("input#_search", "semiconductors")
            page.press("input#_search", "Enter")
            page.wait_for_url(re.compile(r"_search=semiconductors"))
            term = "semiconductors"
            titles = set(page.locator("table.rows-and-columns tbody td.col-title").all_inner_texts())
            assert titles == {a.title for a in live if term in (a.title + " " + a.expected_body()).lower()}
            assert page.locator("th.col-content_hash").count() == 0  # internal columns left out
            shot(page, "table")
            page.goto(served["url"] + "/latest_policy_proposals", wait_until="load")
            assert page.locator("h1").inner_text().strip() == "Latest policy proposals"
            policy = [a for a in live if "policy" in a.sections]
            assert page.locator("table.rows-and-columns tbody tr").count() == min(50, len(policy))
            shot(page, "canned")
        finally:
            browser.close()
