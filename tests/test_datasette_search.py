"""Datasette over a real archive file, queried in-process with Datasette's own client: the
`search` canned query routes like `npi-crawler search` (English to the stemmed word index,
Japanese to the trigram index); the articles table's search box stays on the trigram index."""

from __future__ import annotations

import asyncio
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
    response = asyncio.run(ds.client.get(f"/npi/{path}.json?" + urlencode({**params, "_shape": "array"})))
    assert response.status_code == 200, response.text
    return response.json()


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


def test_japanese_goes_to_the_trigram_index(datasette):
    rows = get(datasette, "search", q="経済安全保障")
    assert numbers(rows) == [5, 6]  # the title match first
    assert "[経済安全保障]" in rows[1]["snippet"]
    assert numbers(get(datasette, "search", q="経済　半導体")) == [5]  # a full-width space separates


@pytest.mark.parametrize("q", ["", '"', "NOT (", "a*b:c", "   "])
def test_any_input_is_searched_as_text_never_an_error(datasette, q):
    assert get(datasette, "search", q=q) == []


def test_the_table_search_box_keeps_the_trigram_index(datasette):
    titles = {r["title"] for r in get(datasette, "articles", _search="ally")}
    assert titles == {"The ministry finally acted"}  # a substring, as the description says
    assert {r["title"] for r in get(datasette, "articles", _search="半導体")} == {"半導体と経済安全保障"}
