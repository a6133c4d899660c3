"""Parsing: pure functions over saved pages and over every page the replica renders."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import scrapy
from hypothesis import given
from hypothesis import strategies as st

from npi_crawler.site.articles import TITLE_MAX_CHARS, _strip_site_name, parse_article
from npi_crawler.site.decoding import guess_japanese_encoding
from npi_crawler.site.lists import next_page, page_number, parse_list_page
from npi_crawler.site.text import normalize_space, parse_date
from npi_crawler.site.urls import BadLink, canonical_url, date_from_url, lang_from_url, resolve_link
from tests.site import generate_site
from tests.site.render import render

PAGES = Path(__file__).parent / "pages"


def saved(name: str) -> str:
    return (PAGES / name).read_text(encoding="utf-8")


# -- saved pages ------------------------------------------------------------------------------------


def test_english_article_fields_and_clean_body():
    url = "https://npi.or.jp/en/research/2022/03/31120000.html"
    article = parse_article(saved("en_article_report.html"), url)
    assert article.title == 'Economic Security Study Group released "2021 Fiscal Year End Report"'
    assert article.published == "2022-03-31"
    assert article.lang == "en"
    assert article.body == (
        "The Economic Security Study Group of the Nakasone Peace Institute has released its "
        "2021 Fiscal Year End Report.\n\n"
        "The report examines supply chains, critical technologies and the protection of "
        "sensitive information.\n\n"
        "Members\n\nChair: Professor A\n\nMembers: B, C and D\n\nAppendix (PDF)"
    )
    assert article.pdfs == (
        "https://npi.or.jp/en/research/data/0123456789abcdef0123456789abcdef01234567.pdf",
        "https://npi.or.jp/en/research/2022/03/data/appendix.PDF",
    )
    assert article.notes == ()


@pytest.mark.parametrize(
    "boilerplate",
    [
        "Facebook",
        "Twitter",
        "LINE",
        "Back to previous page",
        "Latest Articles",
        "Go to Article List",
        "Other research activities",
        "Copyright",
        "Nakasone Peace Institute (NPI)",
        "dataLayer",
    ],
)
def test_english_article_body_has_no_boilerplate(boilerplate):
    article = parse_article(
        saved("en_article_report.html"), "https://npi.or.jp/en/research/2022/03/31120000.html"
    )
    assert boilerplate not in article.body


def test_japanese_article_markup_authors_and_full_width():
    url = "https://www.npi.or.jp/research/2018/12/12174550.html"
    article = parse_article(saved("ja_article_ronshu.html"), url)
    assert article.url == "https://npi.or.jp/research/2018/12/12174550.html"
    assert article.title == "設立30周年記念 政策論集"
    assert article.published == "2018-12-12"  # full-width digits in the page
    assert article.lang == "ja"
    assert article.body == (
        "当研究所は設立30周年を記念し、政策論集を刊行しました。\n各分野の研究員が執筆しています。\n\n"
        "目次\n\n外交・安全保障\n\n経済・社会\n\n章\n\n執筆者"
    )
    assert article.pdfs == ("https://npi.or.jp/research/data/ronshu30.pdf",)
    assert article.authors == (
        ("中曽根 康弘", "https://npi.or.jp/experts/nakasone.html"),
        ("山田 花子", "https://npi.or.jp/experts/yamada.html"),
    )
    assert "戻る" not in article.body and "シェア" not in article.body and "別記事" not in article.body


def test_list_page_entries_pagination_and_no_side_links():
    url = "https://npi.or.jp/research/policy/index_2.html"
    listing = parse_list_page(saved("ja_list_policy.html"), url)
    assert listing.entries == [
        "https://npi.or.jp/research/2025/06/30150000.html",
        "https://npi.or.jp/research/2018/12/12174550.html",
    ]
    assert listing.notes == []
    assert next_page(listing, url, 2) == "https://npi.or.jp/research/policy/index_3.html"
    assert ("1", "https://npi.or.jp/research/policy/index.html") in listing.pages


def test_line_break_inside_inline_markup_is_kept():
    html = '<div id="main"><div class="detail_area"><p><span>one<br>two</span>\nthree</p></div></div>'
    assert parse_article(html, "https://npi.or.jp/a.html").body == "one\ntwo three"


def test_next_page_falls_back_to_a_next_label():
    listing = parse_list_page(
        '<div class="pager"><a class="link_page" href="p9.html">Next &gt;</a></div>',
        "https://npi.or.jp/x/index.html",
    )
    assert next_page(listing, "https://npi.or.jp/x/index.html", 1) == "https://npi.or.jp/x/p9.html"


# -- degraded pages: loud, not silent --------------------------------------------------------------


def test_title_falls_back_to_og_title_then_title_tag():
    og = parse_article(
        '<html><head><meta property="og:title" content="Only OG | Nakasone Peace Institute"></head>'
        '<body><div id="main"><div class="detail_area"><p>x</p></div></div></body></html>',
        "https://npi.or.jp/en/research/2024/01/02030405.html",
    )
    assert og.title == "Only OG"
    assert "fallback/title_og" in og.notes
    assert og.published == "2024-01-02" and "fallback/date_url" in og.notes
    tag = parse_article(
        "<html><head><title>Tag title | 中曽根康弘世界平和研究所</title></head></html>",
        "https://npi.or.jp/a.html",
    )
    assert tag.title == "Tag title"
    assert {"fallback/title_tag", "miss/date", "fallback/body_main", "fallback/no_main", "miss/body"} <= set(
        tag.notes
    )


@pytest.mark.parametrize(
    "html", ["", "   ", "<html", "\x00\x01garbage", "<?xml version='1.0' encoding='utf-8'?><html/>"]
)
def test_broken_html_never_raises(html):
    article = parse_article(html, "https://npi.or.jp/research/2020/01/01000000.html")
    assert article.title is None and "miss/title" in article.notes
    listing = parse_list_page(html, "https://npi.or.jp/research/policy/index.html")
    assert listing.entries == [] and "miss/list_entries" in listing.notes


def test_changed_layout_is_reported_as_misses():
    site = generate_site(seed=3)
    site.layout = "redesign"
    page = render(site, "/research/policy/index.html").body.decode()
    assert "miss/list_entries" in parse_list_page(page, "http://x/research/policy/index.html").notes


# -- every page of generated sites matches the model -----------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_replica_article_parses_to_the_model(seed):
    site = generate_site(seed=seed, n_articles=40)
    expected = {row["url"]: row for row in site.expected_export("http://replica")}
    for article in site.live():
        parsed = parse_article(render(site, article.path).body.decode(), "http://replica" + article.path)
        want = expected["http://replica" + article.path]
        got = {
            "title": parsed.title,
            "published": parsed.published,
            "lang": parsed.lang,
            "body": parsed.body,
            "pdfs": list(parsed.pdfs),
            "authors": [name for name, _ in parsed.authors],
        }
        assert got == {k: want[k] for k in got}, article.path


# -- normalizers: properties ------------------------------------------------------------------------


@given(st.text())
def test_normalize_space_is_idempotent_and_trimmed(text):
    once = normalize_space(text)
    assert normalize_space(once) == once
    assert once == once.strip()
    assert "  " not in once and "\u3000" not in once and "\n" not in once


@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Z", "C")), min_size=1), min_size=1))
def test_normalize_space_keeps_every_visible_character(words):
    joined = "\u3000 \t".join(words)
    assert normalize_space(joined).replace(" ", "") == "".join(words).replace(" ", "")


@given(st.dates())
def test_parse_date_reads_every_format_of_any_date(day):
    if not 1900 <= day.year <= 2200:  # outside the plausible range: rejected, not misread
        assert parse_date(f"{day.year:04d}/{day.month:02d}/{day.day:02d}") is None
        return
    iso = day.isoformat()
    full_width = f"{day.year}/{day.month:02d}/{day.day:02d}".translate(
        str.maketrans("0123456789/", "０１２３４５６７８９／")
    )
    for text in (
        f"{day.year}/{day.month:02d}/{day.day:02d}",
        f"{day.year}.{day.month}.{day.day}",
        f"{day.year}年{day.month}月{day.day}日",
        day.strftime("%B %d, %Y"),
        day.strftime("%d %b %Y"),
        full_width,
    ):
        assert parse_date(text) == iso, text


@pytest.mark.parametrize("text", ["", "2025/13/01", "2025/02/30", "no date here", "12/31"])
def test_parse_date_rejects_non_dates(text):
    assert parse_date(text) is None


def test_parse_date_japanese_era():
    assert parse_date("令和7年6月30日") == "2025-06-30"
    assert parse_date("平成元年1月8日") == "1989-01-08"


@given(
    st.sampled_from(["http", "https"]),
    st.sampled_from(["npi.or.jp", "www.npi.or.jp", "WWW.NPI.OR.JP"]),
    st.from_regex(r"/[a-z0-9/_]{0,20}(\.html)?", fullmatch=True),
    st.sampled_from(["", "#top"]),
)
def test_canonical_url_folds_npi_hosts(scheme, host, path, fragment):
    url = canonical_url(f"{scheme}://{host}{path}{fragment}")
    assert url.startswith("https://npi.or.jp/")
    assert "#" not in url
    assert canonical_url(url) == url


def test_url_helpers():
    assert date_from_url("https://npi.or.jp/en/research/2025/06/30150000.html") == "2025-06-30"
    assert date_from_url("https://npi.or.jp/research/policy/index.html") is None
    assert lang_from_url("https://npi.or.jp/en/research/2025/06/30150000.html") == "en"
    assert lang_from_url("https://npi.or.jp/research/2018/12/12174550.html") == "ja"
    assert canonical_url("http://127.0.0.1:8080/a.html#x") == "http://127.0.0.1:8080/a.html"


@pytest.mark.parametrize(
    "label,number",
    [("2", 2), ("[3]", 3), ("Page 4", 4), ("２", 2), ("次へ", None), ("Next >", None), ("", None)],
)
def test_page_number_reads_pager_labels(label, number):
    assert page_number(label) == number


def test_author_name_beside_the_profile_link_and_entry_links_to_experts_ignored():
    html = """<div id="main"><h3 class="ttl_second"><div class="date">2024/01/02</div><div>T</div></h3>
    <div class="detail_area"><p>Body.</p>
      <div class="expert"><div class="name b05">Hanako Yamada</div>
        <a class="btn_bluecorner" href="/en/experts/yamada.html">Profile</a></div>
      <div class="expert"><div class="name b05">Ichiro Suzuki</div>
        <a class="btn_bluecorner" href="/en/experts/suzuki.html">Profile</a></div>
    </div></div>"""
    article = parse_article(html, "https://npi.or.jp/en/research/2024/01/02000000.html")
    assert [name for name, _ in article.authors] == ["Hanako Yamada", "Ichiro Suzuki"]
    assert article.body == "Body."
    listing = parse_list_page(
        '<div id="main"><div class="entry_list_area"><div><div class="box">'
        '<p><a href="/research/2024/01/02000000.html">T</a> <a href="/experts/yamada.html">Y</a></p>'
        "</div></div></div></div>",
        "https://npi.or.jp/research/policy/index.html",
    )
    assert listing.entries == ["https://npi.or.jp/research/2024/01/02000000.html"]


@pytest.mark.parametrize(
    "boilerplate",
    ["＜ 前のページに戻る", "Back to Previous Page >", "記事一覧を見る ＞", "PAGE TOP", "© 2025 NPI"],
)
def test_boilerplate_variants_are_dropped(boilerplate):
    html = f'<div id="main"><div class="detail_area"><p>Kept.</p><p>{boilerplate}</p></div></div>'
    assert parse_article(html, "https://npi.or.jp/a.html").body == "Kept."


@pytest.mark.parametrize("heading", ["新着記事", "政策提言の最新記事", "Latest Articles in Policy Proposals"])
def test_side_block_inside_the_body_area_is_cut(heading):
    html = (
        f'<div id="main"><div class="detail_area"><p>Kept.</p><h4>{heading}</h4>'
        '<ul><li><a href="/research/2020/01/01000000.html">Other article</a></li></ul></div></div>'
    )
    assert parse_article(html, "https://npi.or.jp/a.html").body == "Kept."


@pytest.mark.parametrize(
    "text", ["「半導体と宇宙」研究会報告", "憲法改正", "日米同盟と<b>台湾海峡</b>", "English only"]
)
@pytest.mark.parametrize("encoding", ["shift_jis", "euc_jp", "utf-8"])
def test_guess_japanese_encoding_reads_undeclared_pages_exactly(text, encoding):
    body = text.encode(encoding)
    guessed = guess_japanese_encoding(body)
    assert body.decode(guessed) == text


def test_guess_japanese_encoding_leaves_other_bytes_to_the_general_detector():
    assert guess_japanese_encoding("Café crème".encode("cp1252")) is None


# -- hostile pages: one bad link costs that link, never the page -----------------------------------

LIST_URL = "https://npi.or.jp/research/policy/index.html"
BAD_HREFS = [
    "http://npi.or.jp:99999/research/2024/01/01000000.html",  # port out of range
    "http://npi.or.jp:abc/research/2024/01/01000000.html",  # port not a number
    "http://npi.or.jp:-1/research/2024/01/01000000.html",
    "http://[::1/research/2024/01/01000000.html",  # unbalanced IPv6 bracket
    "//[bad/x.html",
]


def list_html(hrefs: list[str], pager: list[str] = ()) -> str:
    entries = "".join(f'<div class="box"><p><a href="{h}">t</a></p></div>' for h in hrefs)
    pages = "".join(f'<a class="link_page" href="{h}">{n}</a>' for n, h in enumerate(pager, 2))
    return (
        f'<div id="main"><div class="entry_list_area"><div>{entries}</div></div>'
        f'<div class="pagination">{pages}</div></div>'
    )


@pytest.mark.parametrize("bad", BAD_HREFS)
def test_a_malformed_first_entry_is_skipped_and_reported_and_the_rest_of_the_page_is_read(bad):
    good = ["/research/2024/01/02000000.html", "http://[::1]:8080/research/2024/01/03000000.html"]
    listing = parse_list_page(list_html([bad, *good], pager=[bad, "index_2.html"]), LIST_URL)
    assert listing.entries == [
        "https://npi.or.jp/research/2024/01/02000000.html",
        "http://[::1]:8080/research/2024/01/03000000.html",
    ]
    assert listing.pages == [("3", "https://npi.or.jp/research/policy/index_2.html")]
    assert listing.bad_links == [bad, bad]
    with pytest.raises(BadLink):
        resolve_link(bad, LIST_URL)


@pytest.mark.parametrize(
    "url,canonical",
    [
        ("http://[::1]/x.html", "http://[::1]/x.html"),
        ("http://[::1]:8080/x.html#top", "http://[::1]:8080/x.html"),
        ("HTTP://[FE80::1]:80/x.html", "http://[fe80::1]/x.html"),
        ("http://user:secret@WWW.NPI.OR.JP:8443/x.html", "https://npi.or.jp/x.html"),
        ("http://npi.or.jp:99999/x.html#f", "http://npi.or.jp:99999/x.html"),  # unreadable: as given
        (" http://[::1/x.html ", "http://[::1/x.html"),
    ],
)
def test_canonical_url_keeps_ipv6_brackets_and_returns_unreadable_urls_as_given(url, canonical):
    assert canonical_url(url) == canonical


# Hrefs built from the pieces that break URL parsers: brackets, colons, ports, schemes, percent
# signs, backslashes, whitespace and non-ASCII.
URLISH = st.lists(
    st.sampled_from(
        [
            "http://",
            "https://",
            "//",
            "[",
            "]",
            ":",
            "::1",
            "99999",
            "-1",
            "npi.or.jp",
            "@",
            "%",
            "%2F",
            "\\",
            "/",
            "..",
            "?",
            "#",
            " ",
            "\t",
            "javascript:",
            "file:",
            "é",
            "中",
            "0",
            "x.html",
            "x.pdf",
        ]
    ),
    max_size=12,
).map("".join)


@given(st.one_of(st.text(), URLISH))
def test_canonical_url_never_raises(url):
    assert isinstance(canonical_url(url), str)


@given(st.lists(st.one_of(st.text(), URLISH), max_size=6), st.lists(st.one_of(st.text(), URLISH), max_size=3))
def test_parse_list_page_never_raises_and_every_entry_is_a_requestable_web_url(hrefs, pager):
    import html

    page = list_html([html.escape(h) for h in hrefs], [html.escape(h) for h in pager])
    listing = parse_list_page(page, LIST_URL)
    for url in listing.entries + [target for _label, target in listing.pages]:
        scrapy.Request(url)  # what the spider does with it: must not raise
    for url in listing.entries:
        assert url.startswith(("http://", "https://"))


@given(st.lists(st.one_of(st.text(), URLISH), max_size=6))
def test_parse_article_never_raises_on_any_pdf_or_author_link(hrefs):
    import html

    links = "".join(
        f'<a class="btn_pdf" href="{html.escape(h)}">PDF</a>'
        f'<a href="{html.escape(h)}.pdf"></a>'
        f'<a class="btn_bluecorner" href="/experts/{html.escape(h)}"><div class="name">N{i}</div></a>'
        for i, h in enumerate(hrefs)
    )
    page = f'<div id="main"><h3 class="ttl_second"><div>T</div></h3><div class="detail_area"><p>B</p>{links}</div></div>'
    article = parse_article(page, "https://npi.or.jp/research/2024/01/02000000.html")
    assert article.title == "T" and article.body == "B"
    for url in article.pdfs:
        assert url.startswith(("http://", "https://"))
        scrapy.Request(url)


def test_unreadable_pdf_and_author_links_are_noted_and_the_rest_kept():
    page = """<div id="main"><h3 class="ttl_second"><div>T</div></h3><div class="detail_area"><p>B</p>
    <a class="btn_pdf" href="http://npi.or.jp:99999/a.pdf">PDF</a><a class="btn_pdf" href="/b.pdf">PDF</a>
    <a href="file:///etc/c.pdf">c</a><a href="javascript:open('d.pdf')">d</a>
    <a class="btn_bluecorner" href="http://[::1/experts/x.html"><div class="name">Hanako Yamada</div></a>
    </div></div>"""
    article = parse_article(page, "https://npi.or.jp/research/2024/01/02000000.html")
    assert article.pdfs == ("https://npi.or.jp/b.pdf",)  # no file:, no javascript:
    assert article.authors == (("Hanako Yamada", None),)
    assert article.notes.count("bad_link/pdf") == 1 and "bad_link/author" in article.notes


# -- hostile pages: sizes and depths ------------------------------------------------------------

# The regex the title fallback used before (quadratic in the title): the reference on short titles.
OLD_SITE_SUFFIX = re.compile(r"\s*[|｜\-–—]\s*(?:[^|｜]*(?:研究所|Institute|NPI)[^|｜]*)$")


@given(
    st.lists(
        st.sampled_from(["|", "｜", "-", "–", "—", " ", "\n", "研究所", "Institute", "NPI", "a", "政策"]),
        max_size=14,
    )
)
def test_strip_site_name_cuts_exactly_what_the_old_regex_cut(pieces):
    title = "".join(pieces)
    assert _strip_site_name(title) == normalize_space(OLD_SITE_SUFFIX.sub("", title))


def test_a_1_mb_title_of_separators_is_read_and_stored_cut():
    """The fallback title of a page with an empty heading: 1 MB of "- " took hours with the old
    regex; it is read in linear time and stored cut to TITLE_MAX_CHARS, with a note."""
    html = (
        f"<html><head><title>{'- ' * 512 * 1024}</title></head><body><div id='main'>"
        "<h3 class='ttl_second'><div class='date'>2024/01/02</div><div></div></h3>"
        "<div class='detail_area'><p>Body.</p></div></div></body></html>"
    )
    article = parse_article(html, "https://npi.or.jp/research/2024/01/02000000.html")
    assert article.title == ("- " * TITLE_MAX_CHARS)[: TITLE_MAX_CHARS - 1] + "…"
    assert {"fallback/title_tag", "cap/title"} <= set(article.notes)
    assert article.body == "Body." and article.published == "2024-01-02"


def test_a_long_heading_title_is_cut_and_a_normal_one_is_not():
    long = "長" * (TITLE_MAX_CHARS + 500)
    page = f'<div id="main"><h3 class="ttl_second"><div>{long}</div></h3><div class="detail_area"><p>B</p></div></div>'
    article = parse_article(page, "https://npi.or.jp/research/2024/01/02000000.html")
    assert article.title == long[: TITLE_MAX_CHARS - 1] + "…" and "cap/title" in article.notes
    exact = "長" * TITLE_MAX_CHARS
    article = parse_article(page.replace(long, exact), "https://npi.or.jp/research/2024/01/02000000.html")
    assert article.title == exact and "cap/title" not in article.notes


def test_100k_nested_divs_parse_without_crashing_and_the_cut_is_noted():
    """libxml2 stops at 256 levels and drops the rest of the page: never a crash, and noted."""
    deep = "<div>" * 100_000 + "Deep text." + "</div>" * 100_000
    page = f'<div id="main"><h3 class="ttl_second"><div>T</div></h3><div class="detail_area"><p>Kept.</p>{deep}</div></div>'
    article = parse_article(page, "https://npi.or.jp/research/2024/01/02000000.html")
    assert article.title == "T" and article.body.startswith("Kept.")
    assert "truncated/parser_limit" in article.notes
    entry = '<div class="box"><p><a href="/research/2024/01/02000000.html">t</a></p></div>'
    listing = parse_list_page(
        f'<div id="main"><div class="entry_list_area"><div>{entry}{deep}</div></div></div>', LIST_URL
    )
    assert listing.entries == ["https://npi.or.jp/research/2024/01/02000000.html"]
    assert "truncated/parser_limit" in listing.notes
    assert "truncated/parser_limit" not in parse_list_page(f'<div id="main">{entry}</div>', LIST_URL).notes
