"""The reading room's pages in Datasette, in-process on a real archive file: an article's row page
(its fields, authors linked to their expert rows, versions, citation links and Highwire meta
tags), the citation and page-as-served routes, the home page, internal columns left out, and the
delivery bookkeeping never shown (issue 22, and issue 23's channel ids)."""

from __future__ import annotations

import asyncio
import html
import re
from urllib.parse import urlencode

import pytest

pytest.importorskip("datasette")

from datasette.app import Datasette  # noqa: E402
from datasette.utils import tilde_encode  # noqa: E402

from npi_crawler.archive import Archive  # noqa: E402
from npi_crawler.archive.records import ArticleRecord  # noqa: E402
from npi_crawler.research.datasette import metadata  # noqa: E402

EXPERT = "https://npi.or.jp/experts/yamada.html"
REPORT = {
    "url": "https://npi.or.jp/research/2024/05/01000000.html",
    "lang": "ja",
    "title": "経済安全保障と半導体\ufffe",  # a noncharacter: no meta tag may carry it
    "published": "2024-05-01",
    "body": "第一段落。\n\n第二段落には<script>alert(1)</script>と書く。",
    "authors": [("山田 花子", EXPERT), ("佐藤 次郎", None)],
    "pdfs": ["https://npi.or.jp/research/data/" + "a" * 40 + ".pdf"],
}
UNSIGNED = {
    "url": "https://npi.or.jp/en/research/2024/06/02000000.html",
    "lang": "en",
    "title": "Commentary",
    "published": None,
    "body": "No author signs this one.",
    "authors": [],
    "pdfs": [],
}
SECRET = "0123456789abcdef"  # what deliveries.channel holds: a hash of a channel's URL


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    db_path = str(tmp_path_factory.mktemp("pages") / "npi.db")
    with Archive.open(db_path) as archive:
        archive.store_article(ArticleRecord(**{**REPORT, "body": "初版の本文。"}), run_id=None, now="2024-05-02T00:00:00Z")
        archive.store_article(ArticleRecord(**REPORT), run_id=None, now="2024-05-09T00:00:00Z")  # an edit: version 2
        archive.add_listing(REPORT["url"], "policy", run_id=None)
        archive.store_article(ArticleRecord(**UNSIGNED), run_id=None)
        archive.store_pdf(REPORT["pdfs"][0], status="ok", run_id=None, text="報告書", pages=3)
        archive.store_expert(EXPERT, status="ok", run_id=None, lang="ja", name="山田 花子", title="上席研究員")
        with archive.atomic():
            message = {"url": REPORT["url"], "title": "t", "body": "b", "tags": []}
            alert = archive.enqueue_alert("2024-05-09T00:00:00Z", None, None, "new", message)["id"]
        with archive.atomic() as conn:
            conn.execute(
                "INSERT INTO deliveries (alert_id, channel, label, status, attempts, last_error) "
                "VALUES (?, ?, 'json://127.0.0.1', 'failed', 1, 'json://127.0.0.1 refused')",
                [alert, SECRET],
            )
            conn.execute("UPDATE alerts SET last_error = 'json://127.0.0.1 refused'")
    return {"db": db_path, "ds": Datasette([db_path], metadata=metadata(db_path))}


def get(served, path: str):
    return asyncio.run(served["ds"].client.get(path))


def row_page(served, url: str) -> str:
    response = get(served, "/npi/articles/" + tilde_encode(url))
    assert response.status_code == 200, response.text
    return response.text


def meta_tags(page: str) -> list[tuple[str, str]]:
    return [(n, html.unescape(c)) for n, c in re.findall(r'<meta name="(citation_[a-z_]+)" content="([^"]*)">', page)]


def test_an_article_reads_as_a_page_with_its_versions_and_citations(served):
    page = row_page(served, REPORT["url"])
    assert "<title>経済安全保障と半導体" in page and "<h1>経済安全保障と半導体" in page
    assert "<p>第一段落。</p>" in page and "&lt;script&gt;" in page and "<script>alert" not in page
    expert_link = "/npi/experts/" + tilde_encode(EXPERT)
    assert f'<a href="{expert_link}">山田 花子</a> (上席研究員)' in page and "佐藤 次郎" in page
    assert "政策提言" in page and "a" * 40 + ".pdf</a> (ok, 3 pages)" in page
    assert "changed text" in page and "+ 第二段落には" in html.unescape(page)  # version 2's diff (monitor/changes.py)
    for fmt in ("bibtex", "ris", "csl-json"):
        assert f"/npi/-/cite?{urlencode({'url': REPORT['url']})}&amp;format={fmt}" in page
    assert "The row as stored" in page and "content_hash" in page  # every column, folded away


def test_highwire_meta_tags_state_the_article_and_its_institute(served):
    assert meta_tags(row_page(served, REPORT["url"])) == [
        ("citation_title", "経済安全保障と半導体"),
        ("citation_author", "山田 花子"),
        ("citation_author", "佐藤 次郎"),
        ("citation_publication_date", "2024/05/01"),
        ("citation_pdf_url", REPORT["pdfs"][0]),
        ("citation_language", "ja"),
        ("citation_publisher", "中曽根康弘世界平和研究所"),
        ("citation_technical_report_institution", "中曽根康弘世界平和研究所"),
        ("citation_abstract_html_url", REPORT["url"]),
    ]
    unsigned = dict(meta_tags(row_page(served, UNSIGNED["url"])))
    assert unsigned["citation_author"] == "Nakasone Peace Institute" and "citation_publication_date" not in unsigned


def test_citations_are_served_in_each_format(served):
    query = urlencode({"url": UNSIGNED["url"]})
    bibtex = get(served, f"/npi/-/cite?{query}&format=bibtex")
    assert bibtex.status_code == 200 and bibtex.headers["content-type"].startswith("application/x-bibtex")
    assert "@online{npi-en-2024-06-02000000," in bibtex.text and "{Nakasone Peace Institute}" in bibtex.text
    assert get(served, f"/npi/-/cite?{query}&format=ris").text.startswith("TY  - ELEC")
    assert get(served, f"/npi/-/cite?{query}&format=docx").status_code == 400
    assert get(served, "/npi/-/cite?url=https%3A%2F%2Fnowhere.example%2F&format=ris").status_code == 404
    assert get(served, f"/npi/-/snapshot?{query}").status_code == 404  # no WARC record of it here


def test_home_page_lists_articles_first_and_tables_leave_internal_columns_out(served):
    home = get(served, "/").text
    assert home.index("/npi/articles") < home.index("/npi/search") < home.index("/npi/experts")
    assert "warc_records" not in home
    columns = re.findall(r'data-column="([^"]+)"', get(served, "/npi/articles").text)
    assert "title" in columns and "body" in columns
    assert not {"content_hash", "etag", "last_modified", "parse_notes"} & set(columns)
    everything = re.findall(r'data-column="([^"]+)"', get(served, "/npi/articles?_internal=1").text)
    assert {"content_hash", "etag"} <= set(everything)
    assert "content_hash" in get(served, "/npi/articles.json?_shape=array").text  # data stays whole


def test_the_delivery_bookkeeping_is_never_shown(served):
    assert get(served, "/npi/deliveries").status_code == 403
    assert "deliveries" not in get(served, "/npi").text.split("hidden")[0]
    for sql in ("select * from deliveries", "select channel || label from deliveries", "select last_error from alerts"):
        response = get(served, "/npi.json?" + urlencode({"sql": sql, "_shape": "array"}))
        assert response.status_code == 200 and SECRET not in response.text and "refused" not in response.text
    counted = get(served, "/npi.json?" + urlencode({"sql": "select count(*) as n from deliveries", "_shape": "array"}))
    assert counted.json() == [{"n": 1}]
    shown = Datasette([served["db"]], metadata=metadata(served["db"], show_deliveries=True))
    opened = asyncio.run(shown.client.get("/npi/deliveries.json?_shape=array"))
    assert opened.status_code == 200 and SECRET in opened.text  # serve --show-deliveries
