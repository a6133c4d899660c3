"""Citations (CSL-JSON, BibTeX, RIS) read back by the parsers reference managers rely on."""

from __future__ import annotations

import io
import json

import bibtexparser
import bibtexparser.middlewares as bib_mw
import pytest
import rispy
from citeproc import Citation, CitationItem, CitationStylesBibliography, CitationStylesStyle, formatter
from citeproc.source.json import CiteProcJSON
from hypothesis import given
from hypothesis import strategies as st
from rispy.config import LIST_TYPE_TAGS

from npi_crawler.research.citations import (
    citation_key,
    citation_type,
    citations_text,
    csl_item,
    split_name,
    write_citations,
)
from tests.site import generate_site

PROPOSAL = {
    "url": "https://npi.or.jp/en/research/2025/06/30150000.html",
    "lang": "en",
    "title": "Japan's Economic Security in the New Era: R&D, 50% more {and} under_score",
    "published": "2025-06-30",
    "sections": ["industry", "policy"],
    "authors": [
        "Taro Nakasone",
        {"name": "NAKASONE Yasuhiro", "profile_url": "https://npi.or.jp/en/experts/n.html", "affiliation": "President"},
    ],
    "pdfs": ["https://npi.or.jp/en/research/data/aa.pdf", "https://npi.or.jp/en/research/data/bb.pdf"],
    "last_seen": "2026-11-24T23:30:10Z",
}
JA_PAGE = {
    "url": "https://npi.or.jp/research/2018/12/12174550.html",
    "lang": "ja",
    "title": "「設立30周年記念政策論集」 経済安全保障と半導体",
    "published": "2018-12-12",
    "sections": ["diplomacy"],
    "authors": ["中曽根 康弘", "山田 花子"],
    "pdfs": [],
    "last_seen": "2026-01-02T03:04:05Z",
}
UNDATED = {
    "url": "https://npi.or.jp/research/2019/01/01000000.html",
    "lang": "ja",
    "title": "日付のない記事",
    "published": None,
    "sections": ["policy"],  # a proposal without a PDF: a web page
    "authors": [],
    "pdfs": [],
    "last_seen": None,
}
ARTICLES = [PROPOSAL, JA_PAGE, UNDATED]


def _bibliography(items: list[dict]) -> list[str]:
    style = CitationStylesStyle("harvard-cite-them-right", validate=False)
    bibliography = CitationStylesBibliography(style, CiteProcJSON(items), formatter.plain)
    for item in items:
        bibliography.register(Citation([CitationItem(item["id"])]))
    return [str(entry) for entry in bibliography.bibliography()]


def test_csl_json_renders_in_harvard_with_japanese_names_whole():
    items = json.loads(citations_text(ARTICLES, "csl-json"))
    assert [i["URL"] for i in items] == [a["url"] for a in ARTICLES]
    rendered = "\n".join(_bibliography(items))
    # Latin names are family + given, so the style can abbreviate them; Japanese ones are literal.
    assert "Nakasone, T. and NAKASONE, Y. (2025)" in rendered
    assert "中曽根 康弘 and 山田 花子 (2018) 「設立30周年記念政策論集」 経済安全保障と半導体" in rendered
    assert "中曽根," not in rendered and "康." not in rendered
    assert "Policy proposal. Tokyo: Nakasone Peace Institute." in rendered
    assert (
        ", 中曽根康弘世界平和研究所. Available at: https://npi.or.jp/research/2018/12/12174550.html"
        in rendered
    )
    assert "(Accessed: November 24, 2026)" in rendered
    # No author: the institute is the author, and the title is printed once.
    undated = next(line for line in rendered.splitlines() if UNDATED["url"] in line)
    assert undated.startswith("中曽根康弘世界平和研究所 (no date) 日付のない記事")
    assert undated.count("日付のない記事") == 1


def test_csl_items_carry_type_dates_language_and_pdfs():
    report, page, undated = (csl_item(a) for a in ARTICLES)
    assert report["type"] == "report" and page["type"] == "webpage" and undated["type"] == "webpage"
    assert report["issued"] == {"date-parts": [[2025, 6, 30]]}
    assert report["accessed"] == {"date-parts": [[2026, 11, 24]]}
    assert report["publisher"] == "Nakasone Peace Institute" and report["language"] == "en"
    assert report["note"].splitlines() == [
        "Affiliation: NAKASONE Yasuhiro: President",
        *(f"PDF: {p}" for p in PROPOSAL["pdfs"]),
    ]
    assert page["container-title"] == "中曽根康弘世界平和研究所" and page["language"] == "ja"
    assert page["author"] == [{"literal": "中曽根 康弘"}, {"literal": "山田 花子"}]
    assert "issued" not in undated and "accessed" not in undated
    assert undated["author"] == [{"literal": "中曽根康弘世界平和研究所"}]  # the institute, when no author


def test_bibtex_parsed_by_bibtexparser_round_trips_titles_and_names():
    text = citations_text(ARTICLES, "bibtex")
    library = bibtexparser.parse_string(
        text,
        append_middleware=[
            bib_mw.SeparateCoAuthors(),
            bib_mw.SplitNameParts(),
            bib_mw.LatexDecodingMiddleware(),
        ],
    )
    assert not library.failed_blocks
    entries = {e.key: e for e in library.entries}
    assert list(entries) == [citation_key(a["url"]) for a in ARTICLES]
    report = entries["npi-en-2025-06-30150000"]
    assert report.entry_type == "techreport"
    assert report["title"] == PROPOSAL["title"]  # &, %, {, }, _ escaped and decoded back
    assert [(n.last, n.first) for n in report["author"]] == [
        (["Nakasone"], ["Taro"]),
        (["NAKASONE"], ["Yasuhiro"]),
    ]
    assert report["institution"] == "Nakasone Peace Institute" and report["type"] == "Policy proposal"
    assert (report["date"], report["year"], report["urldate"]) == ("2025-06-30", "2025", "2026-11-24")
    assert report["url"] == PROPOSAL["url"]
    assert report["note"] == "; ".join(f"PDF: {p}" for p in PROPOSAL["pdfs"])
    assert report["affiliation"] == "NAKASONE Yasuhiro: President"
    assert "affiliation" not in entries["npi-ja-2018-12-12174550"].fields_dict  # no position known
    page = entries["npi-ja-2018-12-12174550"]
    assert page.entry_type == "online" and page["title"] == JA_PAGE["title"]
    assert page["organization"] == "中曽根康弘世界平和研究所" and page["language"] == "japanese"
    # One unsplittable name each: BibTeX sees a single last name, no first name to abbreviate.
    assert [(n.last, n.first) for n in page["author"]] == [(["{中曽根 康弘}"], []), (["{山田 花子}"], [])]
    assert "date" not in entries["npi-ja-2019-01-01000000"].fields_dict
    assert [n.last for n in entries["npi-ja-2019-01-01000000"]["author"]] == [["{中曽根康弘世界平和研究所}"]]


def test_ris_read_by_rispy():
    records = rispy.loads(citations_text(ARTICLES, "ris"), list_tags=[*LIST_TYPE_TAGS, "L1"])
    assert [r["type_of_reference"] for r in records] == ["RPRT", "ELEC", "ELEC"]
    report, page, undated = records
    assert report["title"] == PROPOSAL["title"]
    assert report["authors"] == ["Nakasone, Taro", "NAKASONE, Yasuhiro"]
    assert (report["year"], report["date"], report["access_date"]) == ("2025", "2025/06/30", "2026/11/24")
    assert (report["publisher"], report["place_published"]) == ("Nakasone Peace Institute", "Tokyo")
    assert report["urls"] == [PROPOSAL["url"]] and report["file_attachments1"] == PROPOSAL["pdfs"]
    assert report["author_address"] == "NAKASONE Yasuhiro: President" and "author_address" not in page
    assert page["title"] == JA_PAGE["title"] and page["authors"] == ["中曽根 康弘", "山田 花子"]
    assert (page["publisher"], page["language"]) == ("中曽根康弘世界平和研究所", "ja")
    assert "year" not in undated and undated["authors"] == ["中曽根康弘世界平和研究所"]


def test_every_replica_article_is_one_citation_in_each_format():
    site = generate_site(seed=3, n_articles=40)
    articles = site.expected_export("https://npi.or.jp/")
    assert any(citation_type(a) == "report" for a in articles)
    items = json.loads(citations_text(articles, "csl-json"))
    assert len(items) == len(articles) and len({i["id"] for i in items}) == len(items)
    assert all(
        i["title"] == a["title"] and i["URL"] == a["url"] for i, a in zip(items, articles, strict=True)
    )
    assert len(_bibliography(items)) == len(articles)
    library = bibtexparser.parse_string(citations_text(articles, "bibtex"))
    assert len(library.entries) == len(articles) and not library.failed_blocks
    records = rispy.loads(citations_text(articles, "ris"))
    assert [r["urls"] for r in records] == [[a["url"]] for a in articles]


def test_keys_stay_unique_and_counts_are_returned():
    twice = [JA_PAGE, {**JA_PAGE, "url": JA_PAGE["url"].replace("https:", "http:")}]
    out = io.StringIO()
    assert write_citations(twice, "bibtex", out) == 2
    assert "@online{npi-ja-2018-12-12174550,\n" in out.getvalue()
    assert "@online{npi-ja-2018-12-12174550-2,\n" in out.getvalue()
    assert json.loads(citations_text([], "csl-json")) == []
    with pytest.raises(ValueError, match="choose one of csl-json, bibtex, ris"):
        citations_text(ARTICLES, "endnote")


def test_citation_type_and_key():
    assert citation_type(PROPOSAL) == "report"
    assert citation_type({**PROPOSAL, "sections": ["industry"]}) == "webpage"
    assert citation_type({**PROPOSAL, "pdfs": []}) == "webpage"
    assert citation_key("https://npi.or.jp/event/2024/01/02030405.html") == "npi-ja-event-2024-01-02030405"
    assert (
        citation_key("http://127.0.0.1:8000/en/research/2020/01/01000000.html") == "npi-en-2020-01-01000000"
    )


@pytest.mark.parametrize(
    ("name", "parts"),
    [
        ("中曽根 康弘", {"literal": "中曽根 康弘"}),
        ("中曽根康弘", {"literal": "中曽根康弘"}),
        ("ヤマダ　ハナコ", {"literal": "ヤマダ ハナコ"}),
        ("Taro Nakasone", {"family": "Nakasone", "given": "Taro"}),
        ("NAKASONE Yasuhiro", {"family": "NAKASONE", "given": "Yasuhiro"}),
        ("Nakasone, Yasuhiro", {"family": "Nakasone", "given": "Yasuhiro"}),
        ("Mary Ann O'Neil", {"family": "O'Neil", "given": "Mary Ann"}),
        ("NPI", {"literal": "NPI"}),
    ],
)
def test_split_name(name, parts):
    assert split_name(name) == parts


_KANJI = st.text(st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF), min_size=1, max_size=4)
_LATIN = st.text(st.characters(min_codepoint=ord("a"), max_codepoint=ord("z")), min_size=1, max_size=8)


@given(st.lists(_KANJI, min_size=1, max_size=3), st.sampled_from([" ", "\u3000", "  "]))
def test_japanese_names_are_never_split(words, space):
    name = space.join(words)
    assert split_name(name) == {"literal": " ".join(name.split())}


@given(st.lists(_LATIN.map(str.capitalize), min_size=2, max_size=4))
def test_latin_names_keep_every_token(words):
    parts = split_name(" ".join(words))
    assert f"{parts['given']} {parts['family']}".split() == words
