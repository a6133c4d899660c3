"""Datasette over a real archive file with npi-crawler's plugin, queried in-process with
Datasette's own client: the Search page is `npi-crawler search` (English stemmed, Japanese terms
of two characters too, the total), the articles table's search box stays Datasette's own, and the
delivery bookkeeping is never shown."""

from __future__ import annotations

import asyncio
import re
from urllib.parse import urlencode

import pytest

pytest.importorskip("datasette")

from datasette.app import Datasette  # noqa: E402

from npi_crawler.archive import Archive  # noqa: E402
from npi_crawler.archive.records import ArticleRecord  # noqa: E402
from npi_crawler.research.datasette import metadata  # noqa: E402

ARTICLES = [
    ("en", 1, "Economic sanctions on Russia", "The G7 imposed sanctions."),
    ("en", 2, "Trade policy", "Japan is sanctioning exports; its allies followed."),
    ("en", 3, "The ministry finally acted", "Nothing about the measures here."),
    ("en", 4, "Café diplomacy", "A sanction of last resort."),
    ("ja", 5, "半導体と経済安全保障", "NATOの拡大とAIを論じた。"),
    ("ja", 6, "憲法改正の論点", "経済安全保障には触れない。"),
    ("en", 7, "Removed page on sanctions", "Gone from the site."),
    # Others, so that the words above are in a minority of the articles: bm25 gives a word found
    # in most of them no weight at all.
    *(("en", n, f"Report {n}", "Quantum technology and space.") for n in range(8, 16)),
    *(("ja", n, f"報告 {n}", "量子技術と宇宙。") for n in range(16, 24)),
]


def url(lang: str, n: int) -> str:
    return f"https://npi.or.jp{'/en' if lang == 'en' else ''}/research/2024/01/{n:08d}.html"


@pytest.fixture(scope="module")
def datasette(tmp_path_factory):
    db_path = str(tmp_path_factory.mktemp("datasette") / "npi.db")
    with Archive.open(db_path) as archive:
        for lang, n, title, body in ARTICLES:
            article = {"url": url(lang, n), "lang": lang, "title": title, "published": f"2024-01-{n:02d}"}
            archive.store_article(ArticleRecord(**article, body=body), run_id=None)
        archive.mark_removed(url("en", 7), 404)
    return Datasette([db_path], metadata=metadata(db_path))


def get(ds: Datasette, path: str, **params: str) -> list[dict]:
    """Rows of a table page, or the hits of the Search page."""
    response = asyncio.run(ds.client.get(f"/npi/{path}.json?" + urlencode({**params, "_shape": "array"})))
    assert response.status_code == 200, response.text
    return response.json()["hits"] if path == "search" else response.json()


def numbers(rows: list[dict]) -> list[int]:
    return [int(r["url"].rsplit("/", 1)[1][:8]) for r in rows]


def test_english_goes_to_the_word_index_stemmed_best_first(datasette):
    rows = get(datasette, "search", q="sanction")
    assert numbers(rows)[0] == 1 and set(numbers(rows)) == {1, 2, 4}  # title match first; not removed
    assert [r["score"] for r in rows] == sorted((r["score"] for r in rows), reverse=True)
    assert "[sanctioning]" in next(r["snippet"] for r in rows if r["url"] == url("en", 2))
    assert numbers(get(datasette, "search", q="ally")) == [2]  # allies, never finally
    assert numbers(get(datasette, "search", q="cafe  DIPLOMACY")) == [4]  # folded, every word
    assert numbers(get(datasette, "search", q="AI")) == [5]  # a word of its own beside kana


def test_japanese_goes_to_the_trigram_index_and_two_characters_to_the_bigram_index(datasette):
    rows = get(datasette, "search", q="経済安全保障")
    assert numbers(rows) == [5, 6]  # the title match first
    assert "[経済安全保障]" in rows[1]["snippet"]
    assert numbers(get(datasette, "search", q="経済　半導体")) == [5]  # a full-width space separates
    assert numbers(get(datasette, "search", q="憲法")) == [6]  # two characters
    assert numbers(get(datasette, "search", q="ｎａｔｏ")) == [5]  # full-width, folded as in rules


def test_the_search_page_says_the_total_and_shows_no_sql(datasette):
    response = asyncio.run(datasette.client.get("/npi/search.json?" + urlencode({"q": "sanction", "limit": 2})))
    body = response.json()
    assert (body["total"], len(body["hits"])) == (3, 2)
    page = asyncio.run(datasette.client.get("/npi/search?" + urlencode({"q": "sanction", "limit": 2}))).text
    assert "2 of 3 articles match sanction" in page and "limit=52" in page  # how to see more
    assert not re.search(r"\bselect\b[^<>]*\bfrom\b", page, re.I) and "articles_words" not in page


def test_the_search_page_says_more_than_the_bound_it_counted_to(datasette, monkeypatch):
    from npi_crawler.research import search as searching

    monkeypatch.setattr(searching, "COUNT_CAP", 2)
    body = asyncio.run(datasette.client.get("/npi/search.json?" + urlencode({"q": "sanction", "limit": 1}))).json()
    assert (body["total"], body["total_exact"], len(body["hits"])) == (2, False, 1)
    page = asyncio.run(datasette.client.get("/npi/search?" + urlencode({"q": "sanction", "limit": 1}))).text
    assert "1 of more than 2 articles match sanction" in page and "limit=51" in page


@pytest.mark.parametrize("q", ["", "NOT (", "a*b:c", "   ", "x" * 1001, '"'])
def test_any_input_is_searched_as_text_or_said_to_be_not_valid(datasette, q):
    response = asyncio.run(datasette.client.get("/npi/search.json?" + urlencode({"q": q})))
    body = response.json()
    assert body["hits"] == []
    if response.status_code != 200:  # too long, or nothing left to search for
        assert response.status_code == 400 and body["error"].startswith("the query is not valid: ")


def test_a_bad_filter_is_one_line_on_the_page(datasette):
    response = asyncio.run(datasette.client.get("/npi/search.json?" + urlencode({"q": "x", "since": "2021-13-99"})))
    assert response.status_code == 400 and "since is a date like" in response.json()["error"]


def test_the_table_search_box_keeps_the_trigram_index(datasette):
    titles = {r["title"] for r in get(datasette, "articles", _search="ally")}
    assert titles == {"The ministry finally acted"}  # a substring, as the description says
    assert {r["title"] for r in get(datasette, "articles", _search="半導体")} == {"半導体と経済安全保障"}
