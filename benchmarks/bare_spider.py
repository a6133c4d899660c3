"""The ceiling for the crawl benchmark: a bare Scrapy spider that downloads the same pages as the
project's spider (every list page, every article, every PDF an article links) with the same
settings, and does nothing else (no parsing beyond link extraction, no items, no pipelines, no
project middlewares or extensions).

python -m benchmarks.bare_spider BASE_URL [-s NAME=VALUE ...]   -> prints one JSON line of figures
"""

from __future__ import annotations

import argparse
import json
import time

import scrapy
from scrapy.crawler import CrawlerProcess

from npi_crawler.runner import build_settings
from npi_crawler.site import SECTIONS


class BareSpider(scrapy.Spider):
    name = "bare"

    def __init__(self, base_url: str, **kwargs):
        super().__init__(**kwargs)
        self.base_url = base_url

    async def start(self):
        for prefix in ("", "en/"):
            for section in SECTIONS:
                yield scrapy.Request(f"{self.base_url}{prefix}research/{section}/index.html", self.parse_list)

    def parse_list(self, response):
        for href in response.css("div.entry_list_area a::attr(href)").getall():
            yield response.follow(href, self.parse_article)
        for href in response.css("a.link_page::attr(href)").getall():
            yield response.follow(href, self.parse_list)

    def parse_article(self, response):
        for href in response.css("a.btn_pdf::attr(href)").getall():
            yield response.follow(href, self.parse_pdf)

    def parse_pdf(self, response):
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description="a bare Scrapy crawl of the site at BASE_URL")
    parser.add_argument("base_url")
    parser.add_argument("-s", dest="overrides", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args()
    overrides = dict(pair.split("=", 1) for pair in args.overrides)
    settings = build_settings(
        db_path=":memory:", base_url=args.base_url, overrides=overrides, log_level="ERROR"
    )
    settings.set("ITEM_PIPELINES", {}, priority="cmdline")
    settings.set("DOWNLOADER_MIDDLEWARES", {}, priority="cmdline")
    settings.set("EXTENSIONS", {}, priority="cmdline")
    process = CrawlerProcess(settings)
    crawler = process.create_crawler(BareSpider)
    started = time.monotonic()
    process.crawl(crawler, base_url=args.base_url)
    process.start()
    stats = crawler.stats.get_stats()
    print(
        json.dumps(
            {
                "responses": stats.get("downloader/response_count", 0),
                "seconds": stats.get("elapsed_time_seconds") or time.monotonic() - started,
            }
        )
    )


if __name__ == "__main__":
    main()
