"""Unit tests of the researcher surface's pure parts: PDF text extraction, the PDF request rules,
query parsing and snippets. (The end-to-end tests crawl a replica: test_research.py.)"""

from __future__ import annotations

import io
import re

import pytest
from pypdf import PdfWriter

from npi_crawler.errors import SearchError
from npi_crawler.research.search import parse_query, plan_for, snippet
from npi_crawler.site.pdftext import extract_text
from npi_crawler.spiders.pdfs import PdfFetcher
from tests.site.render import minimal_pdf


def encrypted_pdf(password: str) -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    writer.encrypt(user_password=password, owner_password="owner", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def blank_pdf() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_extract_text_reads_a_valid_pdf():
    result = extract_text(minimal_pdf("Economic security pdfonlyterm42"))
    assert (result.status, result.text, result.pages) == ("ok", "Economic security pdfonlyterm42", 1)


@pytest.mark.parametrize(
    "data,status",
    [
        (b"", "broken"),
        (b"<html>not a pdf</html>", "broken"),
        (minimal_pdf("cut short")[:80], "broken"),
        (encrypted_pdf("secret"), "encrypted"),
        (blank_pdf(), "no_text"),
    ],
)
def test_extract_text_never_raises_and_says_what_is_wrong(data, status):
    result = extract_text(data)
    assert result.status == status and result.text is None
    assert result.error


def test_a_pdf_encrypted_without_a_user_password_is_read():
    assert extract_text(encrypted_pdf("")).status == "no_text"  # opened; the page is blank


def fetcher(**kwargs) -> PdfFetcher:
    return PdfFetcher(enabled=True, maxsize=1000, allowed_domains=["npi.or.jp", "127.0.0.1"], **kwargs)


def test_pdf_requests_stay_on_the_site_and_carry_the_size_cap():
    f = fetcher()
    urls = [
        "https://npi.or.jp/a.pdf",
        "https://www.npi.or.jp/b.pdf",
        "https://evil.example.com/c.pdf",
        "https://npi.or.jp.example.com/d.pdf",
        "https://npi.or.jp/a.pdf",  # twice on a page: once
    ]
    requests = list(f.requests(urls))
    assert [r.url for r in requests] == ["https://npi.or.jp/a.pdf", "https://www.npi.or.jp/b.pdf"]
    assert all(r.meta["download_maxsize"] == 1000 and r.meta["npi_kind"] == "pdf" for r in requests)


def test_archived_pdfs_are_skipped_unless_rechecked_and_failed_ones_retried():
    known = {
        "https://npi.or.jp/ok.pdf": ("ok", '"e1"', "Mon, 01 Jan 2024 00:00:00 GMT"),
        "https://npi.or.jp/broken.pdf": ("broken", None, None),
        "https://npi.or.jp/failed.pdf": ("error", None, None),
        "https://npi.or.jp/503.pdf": ("http_503", None, None),
        "https://npi.or.jp/404.pdf": ("http_404", None, None),
    }
    urls = list(known) + ["https://npi.or.jp/new.pdf"]
    assert [r.url for r in fetcher(known=known).requests(urls)] == [
        "https://npi.or.jp/failed.pdf",
        "https://npi.or.jp/503.pdf",
        "https://npi.or.jp/new.pdf",
    ]
    recheck = {r.url: r for r in fetcher(known=known).requests(urls, recheck=True)}
    assert recheck["https://npi.or.jp/ok.pdf"].headers[b"If-None-Match"] == b'"e1"'
    assert b"If-None-Match" not in recheck["https://npi.or.jp/new.pdf"].headers
    off = PdfFetcher(enabled=False, maxsize=1, allowed_domains=["npi.or.jp"])
    assert list(off.requests(urls)) == [] and list(off.backlog(full=True, langs=["ja"])) == []


def test_backlog_fetches_unfetched_pdfs_of_archived_articles_in_scope():
    linked = [
        ("https://npi.or.jp/x.pdf", "https://npi.or.jp/research/2020/01/01000000.html"),
        ("https://npi.or.jp/y.pdf", "https://npi.or.jp/en/research/2020/01/01000000.html"),
        ("https://npi.or.jp/z.pdf", "https://npi.or.jp/research/2020/01/02000000.html"),
    ]
    known = {"https://npi.or.jp/z.pdf": ("ok", None, None)}
    f = fetcher(known=known, linked=linked)
    assert [r.url for r in f.backlog(full=False, langs=["ja"])] == ["https://npi.or.jp/x.pdf"]
    f = fetcher(known=known, linked=linked)
    assert [r.url for r in f.backlog(full=True, langs=["ja", "en"])] == [u for u, _ in linked]


@pytest.mark.parametrize(
    "text,phrases,scan",
    [
        ("半導体", {"fts": ('"半導体"',)}, ()),
        ("憲法", {"bigrams": ('"憲法"',)}, ()),
        ("憲法 半導体", {"bigrams": ('"憲法"',), "fts": ('"半導体"',)}, ()),
        ('"supply chains" energy', {"words": ('"supply chains"', '"energy"')}, ()),
        ('say "hi', {"words": ('"say"', '"hi"')}, ()),
        ('a"b"c NOT', {"words": ('"a""b""c"', '"NOT"')}, ()),
        ("x:y* -z 米", {"words": ('"x:y*"', '"-z"')}, ("米",)),
        ("ＡＩ　半導 体", {"words": ('"AI"',), "bigrams": ('"半導"',)}, ("体",)),  # folded, split at spaces
        ('"半導 体"', {"fts": ('"半導体"',)}, ()),  # a phrase is folded whole: the space goes
    ],
)
def test_every_term_is_folded_and_quoted_for_fts5(text, phrases, scan):
    plan = plan_for(parse_query(text))
    assert plan.phrases == phrases
    assert plan.scan == scan


def test_empty_queries_are_refused():
    for text in ("", "   ", '""'):
        with pytest.raises(SearchError):
            parse_query(text)


def test_snippet_marks_every_term_around_the_first_match():
    text = "Alpha beta. " * 20 + "The Taiwan Strait and semiconductors matter. " + "Gamma. " * 30
    spans = [(m.start(), m.end()) for m in re.finditer("semiconductors|Taiwan", text)]
    out = snippet(text, spans)
    assert "[Taiwan]" in out and "[semiconductors]" in out
    assert out.startswith("…") and out.endswith("…") and len(out) < 200
    assert snippet("no match here", []) == "no match here"


def test_short_terms_latin_whole_words_japanese_substrings_literal_wildcards(tmp_path):
    from npi_crawler.archive import Archive
    from npi_crawler.archive.records import ArticleRecord
    from npi_crawler.research.search import search

    archive = Archive.open(tmp_path / "npi.db")
    bodies = {
        "a": ("AI and the Taiwan Strait", "Generative AI, 50% of it."),
        "b": ("The Taiwan Strait", "Maintain the status quo."),
        "c": ("憲法改正の論点", "AIの規制と憲法。"),
        "d": ("外交", "100_percent 半導体"),
    }
    for key, (title, body) in bodies.items():
        article = {
            "url": f"https://npi.or.jp/research/2024/01/0{ord(key) - 96}000000.html",
            "lang": "ja" if key in "cd" else "en",
            "title": title,
            "published": f"2024-01-0{ord(key) - 96}",
            "body": body,
            "authors": [],
            "pdfs": [],
        }
        archive.store_article(ArticleRecord(**article), run_id=None)

    def titles(query: str) -> list[str]:
        return [h.title for h in search(archive, query)]

    assert titles("AI") == ["AI and the Taiwan Strait", "憲法改正の論点"]  # title match first
    assert titles("ai taiwan") == ["AI and the Taiwan Strait"]
    assert titles("憲法") == ["憲法改正の論点"]
    # % and _ are characters, never wildcards: 50% is the word 50, 0_ no word of these texts
    assert titles("50%") == ["AI and the Taiwan Strait"] and titles("0_") == titles("0%") == []
    assert "[AI]" in search(archive, "AI")[0].snippet and "T[ai]wan" not in search(archive, "AI")[0].snippet
    archive.close()
