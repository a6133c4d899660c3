"""Pipelines as Scrapy builds them (from_crawler), fed items directly."""

from __future__ import annotations

import pytest
from scrapy.exceptions import DropItem
from scrapy.utils.test import get_crawler

from npi_crawler.archive import Archive
from npi_crawler.archive.records import ArticleRecord
from npi_crawler.items import FetchErrorItem, GoneItem, ListingItem
from npi_crawler.pipelines import ArchivePipeline, ValidateArticlePipeline
from npi_crawler.runstate import RunState
from npi_crawler.spiders.npi import NpiSpider


def item(**changes) -> ArticleRecord:
    fields = dict(
        url="https://npi.or.jp/en/research/2025/06/30150000.html",
        lang="en",
        title="  Japan's\u3000Economic Security  ",
        published="2025-06-30",
        body="Text.",
        authors=[("A", None), (" ", None)],
        pdfs=["https://npi.or.jp/a.pdf"] * 2,
        notes=["fallback/title_og"],
    )
    fields.update(changes)
    return ArticleRecord(**fields)


def validator(**settings):
    crawler = get_crawler(NpiSpider, settings_dict=settings)
    crawler.stats.open_spider()
    return ValidateArticlePipeline.from_crawler(crawler), crawler.stats


def test_the_record_is_built_clean_and_the_validator_passes_it_on_as_it_is():
    record = item()
    assert record.title == "Japan's Economic Security"
    assert record.pdfs == ("https://npi.or.jp/a.pdf",)
    assert record.authors == (("A", None),)
    pipeline, stats = validator()
    assert pipeline.process_item(record) is record  # validated, not cleaned again
    assert stats.get_value("npi/parse/fallback/title_og") == 1


@pytest.mark.parametrize(
    "changes,reason",
    [
        ({"title": None}, "no_title"),
        ({"title": " \u3000 "}, "no_title"),
        ({"lang": "fr"}, "bad_lang"),
        ({"url": ""}, "no_url"),
    ],
)
def test_validator_drops_what_cannot_be_archived(changes, reason):
    pipeline, stats = validator()
    with pytest.raises(DropItem, match=reason):
        pipeline.process_item(item(**changes))
    assert stats.get_value(f"npi/items/dropped/{reason}") == 1


def test_require_date_setting_makes_the_validator_strict():
    lenient, _ = validator()
    assert lenient.process_item(item(published=None)).published is None
    strict, stats = validator(NPI_REQUIRE_DATE=True)
    with pytest.raises(DropItem):
        strict.process_item(item(published=None))
    assert stats.get_value("npi/items/dropped/no_date") == 1


def test_archive_pipeline_records_items_and_the_lifecycle_the_run(db_path):
    crawler = get_crawler(NpiSpider, settings_dict={"NPI_DB_PATH": db_path, "EXTENSIONS": {RunState: 100}})
    crawler.spider = NpiSpider.from_crawler(crawler)
    crawler.stats.open_spider()
    lifecycle = RunState.of(crawler)  # the extension: what the pipeline finds through the crawler
    pipeline = ArchivePipeline.from_crawler(crawler)
    lifecycle.spider_opened(crawler.spider)
    pipeline.process_item(item(title="T"))
    pipeline.process_item(ListingItem(urls=[item().url], section="policy", lang="en", page=1))
    pipeline.process_item(
        FetchErrorItem(url="https://npi.or.jp/x.html", kind="article:http_500", message="HTTP 500")
    )
    pipeline.process_item(GoneItem(url=item().url, status=404))
    crawler.stats.set_value("npi/list/pages", 1)
    pipeline.close_spider()
    lifecycle.spider_closed(crawler.spider, reason="finished")
    archive = Archive.open(db_path)
    run = archive.last_run()
    assert (run["status"], run["articles_new"], run["errors"], run["articles_removed"]) == ("ok", 1, 1, 1)
    assert archive.known_memberships() == {(item().url, "policy")}
    assert archive.db["run_errors"].count == 1
    archive.close()


@pytest.mark.parametrize("keep", [True, False])
def test_a_page_that_degrades_to_fallbacks_does_not_overwrite_a_clean_version(db_path, keep):
    crawler = get_crawler(NpiSpider, settings_dict={"NPI_DB_PATH": db_path, "NPI_KEEP_CLEAN_VERSION": keep})
    crawler.spider = NpiSpider.from_crawler(crawler)
    crawler.stats.open_spider()
    pipeline = ArchivePipeline.from_crawler(crawler)
    pipeline.process_item(item(title="Clean title", notes=[]))
    # the site changed its layout: the title now comes from <title>, the body from all of <body>
    pipeline.process_item(
        item(
            title="Nakasone Peace Institute",
            body="Menu Home Footer",
            notes=["fallback/title_tag", "fallback/body_main"],
        )
    )
    # a page that always needed a fallback is stored as usual
    other = "https://npi.or.jp/en/research/2025/07/01000000.html"
    pipeline.process_item(item(url=other, title="Old", notes=["fallback/title_og"]))
    pipeline.process_item(item(url=other, title="Edited", notes=["fallback/title_og"]))
    archive = Archive.open(db_path)
    titles = dict(archive.db.execute("SELECT url, title FROM articles").fetchall())
    archive.close()
    assert titles[item().url] == ("Clean title" if keep else "Nakasone Peace Institute")
    assert titles[other] == "Edited"
    assert crawler.stats.get_value("npi/articles/degraded_kept") == (1 if keep else None)
