"""The spider's callbacks, called directly on saved pages (city-scrapers' habit): milliseconds per
test, beside the end-to-end crawls over the replica. Each branch of ``parse_list`` and
``parse_article`` is here: entries and pagination, incremental stop, full re-check, 304, 404/410
of a known and of an unknown article, a non-HTML answer, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import scrapy
from scrapy.http import HtmlResponse, Request, Response
from scrapy.spidermiddlewares.httperror import HttpError
from scrapy.utils.test import get_crawler
from twisted.python.failure import Failure

from npi_crawler.archive import Archive
from npi_crawler.archive.records import ArticleRecord
from npi_crawler.items import FetchErrorItem, GoneItem, ListingItem, NotModifiedItem
from npi_crawler.spiders.npi import NpiSpider

PAGES = Path(__file__).parent / "pages"
LIST_URL = "https://npi.or.jp/research/policy/index.html"
ARTICLE_URL = "https://npi.or.jp/en/research/2022/03/31150000.html"


def saved(name: str, url: str, status: int = 200) -> HtmlResponse:
    return HtmlResponse(url=url, body=(PAGES / name).read_bytes(), status=status, request=Request(url))


def spider(db_path: str, **kwargs) -> NpiSpider:
    crawler = get_crawler(NpiSpider, settings_dict={"NPI_DB_PATH": db_path, "NPI_PDFS": False})
    spider = NpiSpider.from_crawler(crawler, **kwargs)
    crawler.spider = spider
    crawler.stats.open_spider()
    return spider


def split(results) -> tuple[list, list[scrapy.Request]]:
    results = list(results)
    return [r for r in results if not isinstance(r, scrapy.Request)], [r for r in results if isinstance(r, scrapy.Request)]


def test_a_list_page_yields_its_listings_article_requests_and_next_page(db_path):
    npi = spider(db_path)
    items, requests = split(npi.parse_list(saved("ja_list_policy.html", LIST_URL), lang="ja", section="policy", page=1))
    (listing,) = [i for i in items if isinstance(i, ListingItem)]  # one item per list page
    assert (listing.section, listing.lang, listing.page) == ("policy", "ja", 1)
    assert len(listing.urls) >= 2 and len(set(listing.urls)) == len(listing.urls)
    articles = [r for r in requests if r.callback == npi.parse_article]
    assert [r.url for r in articles] == listing.urls  # every new entry is fetched once, in page order
    pages = [r for r in requests if r.callback == npi.parse_list]
    assert pages and all(r.cb_kwargs["section"] == "policy" for r in pages)
    assert npi.crawler.stats.get_value("npi/list/pages") == 1


def test_an_incremental_run_stops_at_a_page_with_nothing_new(db_path):
    first = spider(db_path)
    items, _ = split(first.parse_list(saved("ja_list_policy.html", LIST_URL), lang="ja", section="policy", page=1))
    with Archive.open(db_path) as archive:
        run = archive.start_run(mode="incremental", base_url="https://npi.or.jp/", langs=["ja"], sections=["policy"])
        (listing,) = [i for i in items if isinstance(i, ListingItem)]
        for url in listing.urls:
            archive.store_article(
                ArticleRecord(url=url, lang="ja", title="t", published=None, body="", pdfs=[], authors=[]),
                run_id=run,
            )
        archive.add_listings(listing.urls, "policy", run_id=run)
        archive.finish_run(run, status="ok", counts={}, stats={})
    again = spider(db_path)
    _, requests = split(again.parse_list(saved("ja_list_policy.html", LIST_URL), lang="ja", section="policy", page=1))
    assert requests == []
    assert again.crawler.stats.get_value("npi/list/stopped_early") == 1
    # --full walks on and re-checks every known article with a conditional GET
    full = spider(db_path, full="1")
    _, requests = split(full.parse_list(saved("ja_list_policy.html", LIST_URL), lang="ja", section="policy", page=1))
    assert {r.callback for r in requests} == {full.parse_article, full.parse_list}


def test_an_article_page_yields_the_parsed_article(db_path):
    npi = spider(db_path)
    items, requests = split(npi.parse_article(saved("en_article_report.html", ARTICLE_URL)))
    (article,) = items
    assert isinstance(article, ArticleRecord) and article.url == ARTICLE_URL and article.lang == "en"
    assert article.title and article.published == "2022-03-31" and article.body
    assert requests == []  # PDFs off in this spider


def test_304_is_not_modified_and_404_is_a_removal_only_for_a_known_article(db_path):
    with Archive.open(db_path) as archive:
        archive.store_article(
            ArticleRecord(url=ARTICLE_URL, lang="en", title="t", published=None, body="", pdfs=[], authors=[]),
            run_id=None,
        )
    npi = spider(db_path, full="1")
    (item,) = npi.parse_article(Response(ARTICLE_URL, status=304, request=Request(ARTICLE_URL)))
    assert item == NotModifiedItem(url=ARTICLE_URL)
    (item,) = npi.parse_article(Response(ARTICLE_URL, status=410, request=Request(ARTICLE_URL)))
    assert item == GoneItem(url=ARTICLE_URL, status=410)
    unknown = "https://npi.or.jp/en/research/2022/04/01000000.html"
    (item,) = npi.parse_article(Response(unknown, status=404, request=Request(unknown)))
    assert isinstance(item, FetchErrorItem) and item.kind == "article:http_404"


def test_a_non_html_answer_is_an_error_not_an_article(db_path):
    npi = spider(db_path)
    response = Response(ARTICLE_URL, status=200, body=b"%PDF-1.4", headers={"Content-Type": "application/pdf"})
    (item,) = npi.parse_article(response)
    assert isinstance(item, FetchErrorItem) and item.kind == "not_html"


@pytest.mark.parametrize("kind", ["list", "article"])
def test_a_failed_request_is_an_error_item_of_its_kind(db_path, kind):
    npi = spider(db_path)
    request = Request(LIST_URL, meta={"npi_kind": kind})
    response = Response(LIST_URL, status=503, request=request)
    failure = Failure(HttpError(response))
    failure.request = request
    (item,) = npi.failed(failure)
    assert item == FetchErrorItem(url=LIST_URL, kind=f"{kind}:http_503", message="HTTP 503")
    assert npi.crawler.stats.get_value(f"npi/{kind}/errors") == 1
