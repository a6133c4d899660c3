"""The site profile: selectors as data, checked when loaded, used by the pure parser; the notes
name the key whose selectors matched nothing; the last-resort body extractor."""

from __future__ import annotations

import pytest

from npi_crawler.errors import SettingsError
from npi_crawler.site.articles import extract_body, last_resort_body, parse_article, read_article
from npi_crawler.site.lists import parse_list_page
from npi_crawler.site.profile import DEFAULT_PROFILE, DEFAULT_SELECTORS, KEYS, load_profile, profile_setting
from tests.site import generate_site
from tests.site.render import REDESIGN_SELECTORS, render

BASE = "http://replica"
REDESIGNED = load_profile(REDESIGN_SELECTORS)


def redesigned_site(seed: int = 1, layout: str = "redesign"):
    site = generate_site(seed=seed, n_articles=40)
    site.layout = layout
    return site


def page(site, path: str) -> str:
    return render(site, path).body.decode()


def fields(parsed) -> dict:
    return {
        "title": parsed.title,
        "published": parsed.published,
        "body": parsed.body,
        "pdfs": list(parsed.pdfs),
        "authors": [name for name, _ in parsed.authors],
    }


# -- loading: every key documented, every selector compiled, one line per mistake -----------------


def test_the_default_profile_has_every_key_and_nothing_else():
    assert set(DEFAULT_SELECTORS) == set(KEYS) == set(DEFAULT_PROFILE.selectors)
    assert DEFAULT_PROFILE.overridden == frozenset()
    profile = load_profile({"title": "h1.x"})
    assert profile.texts("title") == ["h1.x"] and profile.texts("date") == list(DEFAULT_SELECTORS["date"])
    assert profile.overridden == {"title"}


@pytest.mark.parametrize(
    "overrides,fragment",
    [
        ({"titel": ["h1"]}, "unknown key 'titel'; the keys are list_entry, pagination, article"),
        ({"title": ["h1["]}, "'title': 'h1[' is not a valid CSS selector"),
        ({"title": ["//h1"]}, "XPath needs the prefix 'xpath:'"),
        ({"date": ["xpath://time[@datetime"]}, "'date': 'xpath://time[@datetime' is not a valid XPath"),
        ({"date": ["xpath://time[nosuch()]"]}, "is not a valid XPath (unknown function nosuch())"),
        ({"date": ["xpath://time[contains(., 'x(')][starts-with(@a, \"y(\")]"]}, None),
        ({"date": ["xpath://x:time"]}, "is not a valid XPath"),
        ({"body": ["ns|div"]}, "'body': 'ns|div' is not a valid CSS selector"),
        ({"body": []}, "'body': must list at least one selector"),
        ({"body": [""]}, "'body': an empty selector"),
        ({"body": [1]}, "'body': must be a list of selectors"),
        ({"body": {"a": "b"}}, "'body': must be a list of selectors"),
    ],
)
def test_a_bad_profile_is_one_line_naming_the_key(overrides, fragment):
    if fragment is None:  # a valid one, for contrast
        assert load_profile(overrides).selectors
        return
    with pytest.raises(SettingsError) as caught:
        load_profile(overrides, where="s.toml: [selectors]")
    message = str(caught.value)
    assert message.startswith("s.toml: [selectors]") and fragment in message and "\n" not in message, message


def test_drop_may_be_empty_and_a_string_is_one_selector():
    profile = load_profile({"drop": [], "title": "h1.post-title"})
    assert profile.texts("drop") == [] and profile.texts("title") == ["h1.post-title"]


def test_the_scrapy_setting_takes_a_dict_or_its_json():
    assert profile_setting({"title": ["h1"]}).texts("title") == ["h1"]
    assert profile_setting('{"title": ["h2"]}').texts("title") == ["h2"]
    assert profile_setting("").texts("title") == list(DEFAULT_SELECTORS["title"])
    assert profile_setting(None).texts("title") == list(DEFAULT_SELECTORS["title"])
    with pytest.raises(SettingsError, match="NPI_SELECTORS is not a JSON object"):
        profile_setting("{title: h1}")
    with pytest.raises(SettingsError, match="NPI_SELECTORS must be a dict"):
        profile_setting(["h1"])
    with pytest.raises(SettingsError, match="NPI_SELECTORS: unknown key 'x'"):
        profile_setting({"x": ["h1"]})


# -- the default profile on the site's markup ------------------------------------------------------


def test_sources_name_the_selector_that_found_each_field():
    site = generate_site(seed=1)
    article = next(a for a in site.live() if a.authors and a.pdfs and a.show_date)
    parsed = read_article(page(site, article.path), BASE + article.path)
    assert parsed.record.notes == ()
    assert parsed.sources == {
        "article": "#main",
        "title": "h3.ttl_second",
        "date": "h3.ttl_second .date",
        "body": "#main > div.detail_area",
        "author_link": 'a.btn_bluecorner[href*="/experts/"]',
        "author_name": ".name",
        "pdf_link": "a.btn_pdf[href]",
    }
    listing = parse_list_page(page(site, "/research/policy/index.html"), BASE + "/research/policy/index.html")
    assert listing.sources == {"list_entry": DEFAULT_SELECTORS["list_entry"][0], "pagination": "a.link_page[href]"}


def test_a_title_selector_that_misses_is_noted_by_key_and_the_fallback_still_reads():
    site = generate_site(seed=1)
    article = site.live()[0]
    html = page(site, article.path).replace("ttl_second", "heading")
    parsed = read_article(html, BASE + article.path)
    assert parsed.record.title == " ".join(article.title.split())  # from og:title
    assert parsed.record.notes[:2] == ("nomatch/title", "fallback/title_og")
    assert "nomatch/date" in parsed.record.notes  # its selector named the heading too
    assert parsed.sources["title"] == "fallback/title_og"
    # the same page with a profile that names the new markup: no note at all
    fixed = parse_article(html, BASE + article.path, load_profile({"title": ["h3.heading"], "date": ["h3.heading .date"]}))
    assert fixed.notes == () and fields(fixed) == fields(parse_article(page(site, article.path), BASE + article.path))


# -- a redesigned site: the defaults miss, the override reads every field as the oracle says -------


@pytest.mark.parametrize("seed", [1, 2])
def test_redesigned_articles_parse_to_the_model_with_the_override(seed):
    site = redesigned_site(seed)
    expected = {row["url"]: row for row in site.expected_export(BASE)}
    for article in site.live():
        parsed = parse_article(page(site, article.path), BASE + article.path, REDESIGNED)
        want = expected[BASE + article.path]
        assert fields(parsed) == {k: want[k] for k in fields(parsed)}, article.path
        assert parsed.notes == (() if article.show_date else ("nomatch/date", "fallback/date_url")), article.path


def test_redesigned_articles_under_the_defaults_name_every_key_that_missed():
    site = redesigned_site()
    article = next(a for a in site.live() if a.authors)
    parsed = parse_article(page(site, article.path), BASE + article.path)
    for key in ("article", "title", "date", "body", "author_link"):
        assert f"nomatch/{key}" in parsed.notes or key == "author_link", parsed.notes
    assert {"fallback/no_main", "fallback/title_tag", "fallback/date_url", "fallback/body_extractor"} <= set(parsed.notes)
    assert parsed.authors == ()  # the defaults find no author: nothing invented


@pytest.mark.parametrize("layout", ["redesign", "redesign_lists"])
def test_redesigned_list_pages_need_the_override(layout):
    site = redesigned_site(layout=layout)
    url = BASE + "/en/research/policy/index.html"
    html = page(site, "/en/research/policy/index.html")
    plain = parse_list_page(html, url)
    assert plain.entries == [] and plain.notes == ["nomatch/list_entry", "miss/list_entries"]
    fixed = parse_list_page(html, url, REDESIGNED)
    assert fixed.entries == [BASE + a.path for a in site.list_pages("en", "policy")[0]]
    assert [label for label, _ in fixed.pages] == [str(n) for n in range(2, len(site.list_pages("en", "policy")) + 1)]
    assert fixed.notes == []


def test_xpath_selectors_may_select_attributes():
    site = redesigned_site()
    article = next(a for a in site.live() if a.show_date)
    profile = load_profile({**REDESIGN_SELECTORS, "date": ["xpath://time/@datetime"], "title": ["xpath:string(//h1)"]})
    parsed = parse_article(page(site, article.path), BASE + article.path, profile)
    assert parsed.published == article.published and parsed.title == " ".join(article.title.split())
    hrefs = load_profile({"list_entry": ["xpath://a[@class='card__link']/@href"]})
    listing = parse_list_page(page(site, "/research/policy/index.html"), BASE + "/research/policy/index.html", hrefs)
    assert listing.entries == [BASE + a.path for a in site.list_pages("ja", "policy")[0]]


def test_drop_selectors_leave_boilerplate_out_of_the_body():
    import lxml.html

    box = lxml.html.fromstring('<div><p>Text.</p><div class="ad">Buy now</div><p>More.</p></div>')
    assert extract_body(box) == "Text.\n\nBuy now\n\nMore."
    assert extract_body(box, load_profile({"drop": [".ad"]})) == "Text.\n\nMore."


# -- the last-resort extractor ---------------------------------------------------------------------


def test_the_extractor_reads_redesigned_bodies_and_is_flagged():
    site = redesigned_site()
    equal = 0
    for article in site.live():
        parsed = parse_article(page(site, article.path), BASE + article.path)
        assert "fallback/body_extractor" in parsed.notes and "fallback/body_main" not in parsed.notes
        equal += parsed.body == article.expected_body()
    # measured: 119 of 120 over three sites (benchmarks/body_extractors.py); one page loses a paragraph
    assert equal >= len(site.live()) - 2


def test_the_extractor_gives_up_on_pages_without_prose_and_on_huge_pages():
    assert last_resort_body("<html><body><p>Hi</p></body></html>") in ("", "Hi")
    assert last_resort_body("") == ""
    assert last_resort_body("<p>" + "word " * 500_000 + "</p>") == ""  # past EXTRACTOR_MAX_CHARS
    # when it finds nothing, the old fallback (the container as text) still gives the body
    parsed = parse_article("<html><body><div><p>Short.</p></div></body></html>", BASE + "/a.html")
    assert parsed.body == "Short." and "nomatch/body" in parsed.notes


# -- plain Scrapy: the profile comes from the NPI_SELECTORS setting --------------------------------


def test_the_spider_reads_npi_selectors_as_scrapy_crawl_npi_s_gives_it(db_path):
    import json

    import scrapy
    from scrapy.http import HtmlResponse
    from scrapy.utils.test import get_crawler

    from npi_crawler.spiders.npi import NpiSpider

    def spider(selectors):
        crawler = get_crawler(NpiSpider, settings_dict={"NPI_DB_PATH": db_path, "NPI_PDFS": False, "NPI_SELECTORS": selectors})
        npi = NpiSpider.from_crawler(crawler, base_url=BASE)
        crawler.stats.open_spider()
        return npi

    site = redesigned_site()
    url = BASE + "/research/policy/index.html"
    response = HtmlResponse(url, body=render(site, "/research/policy/index.html").body, encoding="utf-8")
    as_json = json.dumps({k: REDESIGN_SELECTORS[k] for k in ("list_entry", "pagination")})  # -s NPI_SELECTORS=...
    fixed = spider(as_json)
    requests = [r for r in fixed.parse_list(response, lang="ja", section="policy", page=1) if isinstance(r, scrapy.Request)]
    articles = [r.url for r in requests if r.callback == fixed.parse_article]
    assert articles == [BASE + a.path for a in site.list_pages("ja", "policy")[0]]
    assert fixed.crawler.stats.get_value("npi/parse/nomatch/list_entry") is None
    plain = spider({})
    assert [r for r in plain.parse_list(response, lang="ja", section="policy", page=1) if isinstance(r, scrapy.Request)] == []
    assert plain.crawler.stats.get_value("npi/parse/nomatch/list_entry") == 1
    with pytest.raises(SettingsError, match="NPI_SELECTORS 'title': 'h1\\[' is not a valid CSS selector"):
        spider({"title": ["h1["]})


def test_a_bad_npi_selectors_on_the_command_line_stops_the_crawl_before_any_request(replica, db_path):
    from tests.conftest import run_cli

    result = run_cli("crawl", "--db", db_path, "--base-url", replica.url, "-s", 'NPI_SELECTORS={"date": ["xpath://time["]}')
    assert result.returncode == 2 and result.stderr.strip().startswith("Error: NPI_SELECTORS 'date':"), result.stderr
    assert replica.log == []
