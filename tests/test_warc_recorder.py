"""The WARC recorder as Scrapy builds it (from_crawler), fed responses directly: what it writes
for each kind of page and answer, where the pointer goes, and what a failing disk does."""

from __future__ import annotations

import os

import pytest
from scrapy.exceptions import NotConfigured
from scrapy.http import HtmlResponse, Request, Response
from scrapy.utils.test import get_crawler
from warcio.archiveiterator import ArchiveIterator

from npi_crawler.archive import Archive
from npi_crawler.archive.records import ArticleRecord, WarcPointer
from npi_crawler.archive.warc import IDENTICAL_PAYLOAD, OPEN_SUFFIX, SERVER_NOT_MODIFIED, WarcWriter
from npi_crawler.items import PageRecordItem
from npi_crawler.pipelines import ArchivePipeline, WarcPagePipeline
from npi_crawler.runstate import RunState
from npi_crawler.spiders.common import WARC_META
from npi_crawler.spiders.npi import NpiSpider
from npi_crawler.warc_recorder import WarcRecorderMiddleware

ARTICLE = "https://npi.or.jp/en/research/2025/06/30150000.html"
LIST = "https://npi.or.jp/en/research/policy/index.html"
PAGE = b"<html><head><title>T</title></head><body><div id='main'>Text</div></body></html>"


class Run:
    """A crawler with its run opened, the recorder and the pipelines that store pointers."""

    def __init__(self, db_path: str, warc_dir, **settings):
        crawler = get_crawler(
            NpiSpider,
            settings_dict={"NPI_DB_PATH": db_path, "NPI_WARC_DIR": str(warc_dir), "EXTENSIONS": {RunState: 100}, **settings},
        )
        crawler.spider = NpiSpider.from_crawler(crawler)
        crawler.stats.open_spider()
        self.state = RunState.of(crawler)
        self.state.spider_opened(crawler.spider)
        self.crawler, self.stats = crawler, crawler.stats
        self.recorder = WarcRecorderMiddleware.from_crawler(crawler)
        self.recorder.spider_opened(crawler.spider)
        self.articles, self.pages = ArchivePipeline.from_crawler(crawler), WarcPagePipeline.from_crawler(crawler)

    def fetch(self, url: str, kind: str | None, status: int = 200, body: bytes = PAGE, **headers) -> WarcPointer | None:
        """One answer through the recorder, its pointer stored as the pipelines would."""
        request = Request(url, meta={"npi_kind": kind} if kind else {}, headers=headers)
        cls = HtmlResponse if status == 200 else Response
        response = cls(url, status=status, body=body, headers={"Content-Type": "text/html", "ETag": '"v1"'})
        response.request = request
        assert self.recorder.process_response(request, response) is response
        warc = request.meta.get(WARC_META)
        if warc and kind == "list":
            self.pages.process_item(PageRecordItem(url=url, kind="list", warc=warc))
        elif warc and kind == "article" and status == 200:
            self.articles.process_item(
                ArticleRecord(url=url, lang="en", title="T", published=None, body="Text", warc=warc)
            )
        return warc

    def close(self) -> None:
        self.recorder.spider_closed(self.crawler.spider)
        self.articles.close_spider()
        self.pages.close_spider()
        self.state.close()


def records(warc_dir) -> list:
    out = []
    for path in sorted(warc_dir.iterdir()):
        with open(path, "rb") as fh:
            out += [(r.rec_type, r.rec_headers, r.http_headers) for r in ArchiveIterator(fh)]
    return out


def test_what_is_written_for_each_page_and_answer(db_path, tmp_path):
    run = Run(db_path, tmp_path / "w")
    first = run.fetch(ARTICLE, "article", Authorization="Basic c2VjcmV0", **{"Proxy-Authorization": "Basic eA=="})
    assert (first.record_type, first.status, first.run_id) == ("response", 200, 1)
    again = run.fetch(ARTICLE, "article")  # a 200 with the same payload: headers only
    assert (again.record_type, again.refers_to) == ("revisit", first.record_id)
    not_modified = run.fetch(ARTICLE, "article", status=304, body=b"")
    assert (not_modified.record_type, not_modified.status, not_modified.refers_to) == (
        "revisit",
        304,
        first.record_id,
    )
    assert run.fetch(ARTICLE.replace("30150000", "01000000"), "article", status=304, body=b"") is None
    gone = run.fetch(ARTICLE, "article", status=404, body=b"<html>Not found</html>")
    assert (gone.record_type, gone.status) == ("response", 404)
    assert run.fetch(LIST, "list").record_type == "response"
    assert run.fetch(LIST, "list") is None  # an unchanged list page is not written again
    assert run.fetch(LIST, "list", body=PAGE + b"<!-- new entry -->").record_type == "response"
    assert run.fetch(LIST, "list", status=404) is None
    assert run.fetch(ARTICLE, "article", status=503) is None
    assert run.fetch("https://npi.or.jp/robots.txt", None) is None
    run.close()
    stats = run.stats.get_stats()
    assert (stats["npi/warc/responses"], stats["npi/warc/revisits"]) == (4, 2)
    assert (stats["npi/warc/lists_unchanged"], stats["npi/warc/unreferenced_304"]) == (1, 1)

    written = records(tmp_path / "w")
    revisits = [(h.get_header("WARC-Profile"), http.get_statuscode()) for kind, h, http in written if kind == "revisit"]
    assert revisits == [(IDENTICAL_PAYLOAD, "200"), (SERVER_NOT_MODIFIED, "304")]
    requests = [http for kind, _h, http in written if kind == "request"]
    assert len(requests) == 6 and all(http.get_header("Authorization") is None for http in requests)
    assert all(http.get_header("Proxy-Authorization") is None for http in requests)
    with Archive.open(db_path) as archive:
        # An article's records name the version they hold; the list page's name none.
        rows = archive.rows("SELECT kind, record_type, status, content_hash IS NOT NULL AS v FROM warc_records ORDER BY id")
    assert [tuple(r.values()) for r in rows] == [
        ("article", "response", 200, 1),
        ("article", "revisit", 200, 1),
        ("list", "response", 200, 0),
        ("list", "response", 200, 0),
    ]


def test_a_disk_that_refuses_writes_is_one_error_of_the_run_and_the_crawl_goes_on(db_path, tmp_path):
    run = Run(db_path, tmp_path / "w")
    assert run.fetch(ARTICLE, "article") is not None
    writer = run.recorder.writer
    live = tmp_path / "w" / (writer.files[0] + OPEN_SUFFIX)
    os.close(writer._fd)
    writer._fd = os.open(live, os.O_RDONLY)  # every write now fails, as on a failing disk
    assert run.fetch(LIST, "list") is None
    assert run.fetch(LIST.replace("policy", "economy"), "list") is None  # no second error
    run.close()
    assert run.stats.get_value("npi/errors/warc:error") == 1
    with Archive.open(db_path) as archive:
        [error] = archive.run_errors(1)
    assert error["kind"] == "warc:error" and error["message"].startswith("WARC writing stopped for this run:")


def test_the_files_of_a_killed_run_are_finished_when_the_next_opens(db_path, tmp_path):
    warc_dir = tmp_path / "w"
    with WarcWriter(warc_dir) as writer:
        pointer = writer.write_response(ARTICLE, status=200, headers={}, body=PAGE)
    whole = (warc_dir / writer.files[0]).read_bytes()
    torn = warc_dir / (writer.files[0] + OPEN_SUFFIX)
    torn.write_bytes(whole + b"\x1f\x8b\x08\x00 half a record")  # as a kill mid-write leaves it
    (warc_dir / writer.files[0]).unlink()
    run = Run(db_path, warc_dir)
    assert run.stats.get_value("npi/warc/recovered_files") == 1
    assert not torn.exists() and (warc_dir / writer.files[0]).read_bytes() == whole
    assert pointer.offset + pointer.length < len(whole)
    run.close()


def test_no_warc_switches_the_recorder_and_its_pipeline_off(db_path, tmp_path):
    crawler = get_crawler(NpiSpider, settings_dict={"NPI_DB_PATH": db_path, "NPI_WARC": False})
    with pytest.raises(NotConfigured):
        WarcRecorderMiddleware.from_crawler(crawler)
    with pytest.raises(NotConfigured):
        WarcPagePipeline.from_crawler(crawler)
