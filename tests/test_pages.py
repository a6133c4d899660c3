"""One saved full page per page kind, every field asserted exactly; then checks over all of them.

The pages are the replica's (tests/site renders the markup documented for npi.or.jp, with the
share links, side blocks and footer around the content), saved byte for byte by
``python -m tests.pages.save``. The expected values below are written out by hand from the page,
not computed from the replica's model: a change of the parser that moves any field shows here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from npi_crawler.archive.records import Author
from npi_crawler.site import SECTION_NAMES
from npi_crawler.site.articles import parse_article
from npi_crawler.site.experts import parse_expert_page
from npi_crawler.site.lists import next_page, parse_list_page
from npi_crawler.site.urls import canonical_url, date_from_url, is_list_url, lang_from_url
from tests.pages.save import PAGES, SEED
from tests.site import generate_site
from tests.site.render import render

HERE = Path(__file__).parent / "pages"
SITE = "https://npi.or.jp"


def saved(name: str) -> str:
    return (HERE / name).read_text(encoding="utf-8")


def url_of(name: str) -> str:
    return SITE + PAGES[name]


def test_the_saved_pages_are_what_the_replica_serves():
    site = generate_site(seed=SEED)
    stale = [name for name, path in PAGES.items() if (HERE / name).read_bytes() != render(site, path).body]
    assert stale == [], "the replica's markup changed: run python -m tests.pages.save and review"


# -- one page of each kind ----------------------------------------------------------------------


def test_japanese_list_page():
    name = "replica_ja_list.html"
    listing = parse_list_page(saved(name), url_of(name))
    assert listing.entries == [
        f"{SITE}/research/2025/02/17121447.html",
        f"{SITE}/research/2024/11/15061223.html",
        f"{SITE}/research/2021/06/04015159.html",
    ]
    assert listing.pages == [("2", f"{SITE}/research/policy/index_2.html")]
    assert next_page(listing, url_of(name), 1) == f"{SITE}/research/policy/index_2.html"
    assert (listing.notes, listing.bad_links) == ([], [])


def test_english_list_page_in_the_middle_of_its_list():
    name = "replica_en_list.html"
    listing = parse_list_page(saved(name), url_of(name))
    assert listing.entries == [
        f"{SITE}/en/research/2018/07/26063422.html",
        f"{SITE}/en/research/2018/06/24151154.html",
        f"{SITE}/en/research/2018/02/18104258.html",
    ]
    # a root-relative link to page 1 and a relative one to page 3; page 2 is the current page
    assert listing.pages == [
        ("1", f"{SITE}/en/research/policy/index.html"),
        ("3", f"{SITE}/en/research/policy/index_3.html"),
    ]
    assert next_page(listing, url_of(name), 2) == f"{SITE}/en/research/policy/index_3.html"
    assert (listing.notes, listing.bad_links) == ([], [])


def test_japanese_article_with_two_pdfs_and_two_authors():
    name = "replica_ja_article.html"
    article = parse_article(saved(name), url_of(name))
    assert (article.url, article.lang, article.published) == (url_of(name), "ja", "2021-06-04")
    assert article.title == "「エネルギーと日米同盟」第59回 研究会報告"  # the ideographic space folded
    assert article.body.startswith("中国をめぐる経済安全保障と宇宙の課題について検討した。\n\n人工知能をめぐる")
    assert article.body.endswith("\n\n注\n\n台湾海峡をめぐる中国と日米同盟の課題について検討した。")
    assert len(article.body) == 110 and article.body.count("\n\n") == 4
    assert article.authors == (
        Author("佐藤 健一", f"{SITE}/experts/cae41c.html"),
        Author("高橋 直子", f"{SITE}/experts/cd6412.html"),
    )
    assert article.pdfs == (
        f"{SITE}/research/data/2491c6d654306e00f34a670a3c6fa162bd1b6238.pdf",
        f"{SITE}/research/data/529053a79c1b19c801706b63c92a260fb8c1fd80.pdf",
    )
    assert article.notes == ()
    assert (article.etag, article.last_modified, article.warc) == (None, None, None)  # the spider's to add


def test_english_article_with_two_pdfs_and_two_authors():
    name = "replica_en_article.html"
    article = parse_article(saved(name), url_of(name))
    assert (article.url, article.lang, article.published) == (url_of(name), "en", "2016-06-08")
    assert article.title == "China and climate change: Study Group Report No. 10"
    assert article.body.startswith(
        "This paper examines the Japan-US alliance, constitutional reform and artificial intelligence.\n\n"
        "This paper examines\n\n"
    )
    assert article.body.endswith("\n\nNotes\n\nThis paper examines the international order, semiconductors and supply chains.")
    assert len(article.body) == 594 and article.body.count("\n\n") == 8
    assert article.authors == (
        Author("Kenichi Sato", f"{SITE}/en/experts/ae1ada.html"),
        Author("Hanako Yamada", f"{SITE}/en/experts/721fe3.html"),
    )
    assert article.pdfs == (
        f"{SITE}/en/research/data/ff7a198507e77ad147c19188f961fa0cd7995d9e.pdf",
        f"{SITE}/en/research/data/2016/06/broken.pdf",  # a relative link, resolved against the page
    )
    assert article.notes == ()


def test_expert_page():
    name = "replica_ja_expert.html"
    expert = parse_expert_page(saved(name), url_of(name))
    assert (expert.url, expert.lang) == (url_of(name), "ja")
    assert (expert.name, expert.title) == ("佐藤 健一", "研究顧問")
    assert expert.areas == "憲政、外交・安全保障"
    assert expert.biography == "佐藤 健一は外務省を経て研究顧問に就任。"
    assert expert.notes == []


# -- every saved page ---------------------------------------------------------------------------

LISTS = [name for name in PAGES if "_list" in name]
ARTICLES = [name for name in PAGES if "_article" in name]
# What surrounds the content on every page: navigation, share links, side blocks, the footer.
BOILERPLATE = re.compile(
    r"Copyright|公益財団法人|Nakasone Peace Institute|中曽根康弘世界平和研究所|前のページへ戻る|Back to previous page|"
    r"Facebook|Twitter|LINE|最新記事|Latest Articles|その他の研究活動|Other research activities|記事一覧|"
    r"PDF|上席研究員|Senior Research Fellow|研究員|Experts"
)


def test_the_page_kinds_are_told_apart_by_their_urls():
    assert [name for name in PAGES if is_list_url(url_of(name))] == LISTS


@pytest.mark.parametrize("name", LISTS)
def test_every_list_entry_is_an_article_of_the_lists_language_once(name):
    listing = parse_list_page(saved(name), url_of(name))
    assert listing.entries and len(set(listing.entries)) == len(listing.entries)
    for url in listing.entries:
        assert canonical_url(url) == url and url.startswith(SITE + "/")
        assert lang_from_url(url) == lang_from_url(url_of(name)) and date_from_url(url) is not None
    assert all(is_list_url(target) and target != url_of(name) for _label, target in listing.pages)


@pytest.mark.parametrize("name", ARTICLES)
def test_every_article_is_clean_content_and_its_links_are_canonical(name):
    article = parse_article(saved(name), url_of(name))
    assert article.published == date_from_url(article.url)
    assert BOILERPLATE.search(article.body) is None and BOILERPLATE.search(article.title or "") is None
    # the heading (category label, date, title) is not repeated as the body's first blocks
    section_names = {name for pair in SECTION_NAMES.values() for name in pair}
    blocks = article.body.split("\n\n")
    assert article.title not in blocks and not section_names & set(blocks)
    assert not re.search(r"\d{4}/\d{2}/\d{2}", article.body)
    assert not re.search(r"[\x00-\x1f\x7f]", (article.title or "") + article.body.replace("\n", ""))
    assert article.body == article.body.strip() and "\n\n\n" not in article.body
    links = [article.url, *article.pdfs, *(author.profile_url for author in article.authors)]
    assert all(link and canonical_url(link) == link and link.startswith(SITE + "/") for link in links)
    assert all(pdf.lower().endswith(".pdf") for pdf in article.pdfs)
    assert all(lang_from_url(author.profile_url or "") == article.lang for author in article.authors)


def test_the_expert_page_is_the_one_the_article_names():
    article = parse_article(saved("replica_ja_article.html"), url_of("replica_ja_article.html"))
    expert = parse_expert_page(saved("replica_ja_expert.html"), url_of("replica_ja_expert.html"))
    assert article.authors[0] == Author(expert.name, expert.url)
