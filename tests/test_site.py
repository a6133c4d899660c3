"""The site package's facts written once: the list-page URL, links on a replica's host, the named
character classes and the parse notes."""

from __future__ import annotations

import re

import pytest

from npi_crawler.site import LANGS, SECTIONS, notes
from npi_crawler.site.articles import parse_article
from npi_crawler.site.experts import parse_expert_page
from npi_crawler.site.lists import parse_list_page
from npi_crawler.site.profile import KEYS
from npi_crawler.site.text import CJK_SYMBOLS, HANGUL, JAPANESE
from npi_crawler.site.urls import is_list_url, list_url, site_url
from tests.site import generate_site
from tests.site.render import list_page_url, render


@pytest.mark.parametrize("base", ["https://npi.or.jp/", "https://npi.or.jp", "http://127.0.0.1:8000/"])
def test_list_url_is_the_replicas_list_page_url(base):
    """The replica writes its list URLs on its own (tests/site/render.py): they agree."""
    for lang in LANGS:
        for section in SECTIONS:
            for page in (1, 2, 7):
                url = list_url(base, lang, section, page)
                assert url == base.rstrip("/") + list_page_url(lang, section, page)
                assert is_list_url(url)


def test_site_url_moves_only_npi_links_and_only_onto_another_host():
    replica = "http://127.0.0.1:8000/"
    assert site_url("https://www.npi.or.jp/a.html#x", replica) == "http://127.0.0.1:8000/a.html"
    assert site_url("https://other.example/a.html", replica) == "https://other.example/a.html"
    assert site_url("http://WWW.npi.or.jp/a.html", "https://npi.or.jp/") == "https://npi.or.jp/a.html"


def test_the_named_character_classes():
    japanese, search_script = re.compile(f"[{JAPANESE}]"), re.compile(f"[{CJK_SYMBOLS}{JAPANESE}{HANGUL}]")
    for text in ("半導体", "ひらがな", "カタカナー", "ｶﾀｶﾅ", "々", "𠮟"):  # 𠮟: Han extension B
        assert japanese.search(text), text
    for text in ("Economic security", "한국", "、。", "Ｆｕｌｌ"):
        assert not japanese.search(text), text
    assert search_script.search("한국") and search_script.search("、")


def _notes_of_many_pages() -> set[str]:
    """Every note the page readers write over the replica in both layouts, and over broken pages."""
    seen: set[str] = set()
    for layout in ("normal", "redesign"):
        site = generate_site(seed=2, n_articles=30)
        site.layout = layout
        for article in site.live():
            page = render(site, article.path).body.decode()
            seen.update(parse_article(page, "https://npi.or.jp" + article.path).notes)
            for _name, path in article.authors:
                seen.update(parse_expert_page(render(site, path).body.decode(), "https://npi.or.jp" + path).notes)
        for lang in LANGS:
            path = list_page_url(lang, "policy", 1)
            seen.update(parse_list_page(render(site, path).body.decode(), "https://npi.or.jp" + path).notes)
    for html in ("", "<p>x</p>", '<div id="main"><a class="btn_pdf" href="http://[x/a.pdf">p</a></div>'):
        seen.update(parse_article(html, "https://npi.or.jp/a.html").notes)
        seen.update(parse_expert_page(html, "https://npi.or.jp/experts/a.html").notes)
        seen.update(parse_list_page(html, "https://npi.or.jp/research/policy/index.html").notes)
    return seen


def test_every_note_the_page_readers_write_is_named_in_site_notes():
    seen = _notes_of_many_pages()
    assert {n for n in seen if not n.startswith(notes.NOMATCH)} <= notes.FIXED
    assert {n.removeprefix(notes.NOMATCH) for n in seen if n.startswith(notes.NOMATCH)} <= set(KEYS)
    assert len(seen) > 12  # the pages above do reach most of them


def test_the_note_groups():
    assert notes.DEGRADED <= notes.FIXED
    for group in (notes.TITLE_NOTES, notes.DATE_NOTES, notes.BODY_NOTES):
        assert set(group) <= notes.DOCUMENTED_FALLBACKS | notes.MISSES
    assert not notes.DOCUMENTED_FALLBACKS & notes.MISSES and not notes.MISSES & notes.DAMAGE
    assert all(n.startswith(notes.FALLBACK) for n in notes.DOCUMENTED_FALLBACKS - {notes.nomatch("author_name")})
    assert all(n.startswith(notes.MISS) for n in notes.MISSES)
