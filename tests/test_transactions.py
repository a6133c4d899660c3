"""Transactions of the archive on a real SQLite file (issue 19): ``atomic()`` nests as SAVEPOINTs,
and every writer is atomic on its own, called outside any transaction: a failure injected half-way
through it (a trigger that aborts its last statement) leaves nothing, and a success is committed."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from npi_crawler.archive import Archive
from npi_crawler.archive.records import ArticleRecord, WarcPointer

URL = "https://npi.or.jp/research/2025/06/30150000.html"
OTHER = "https://npi.or.jp/research/2025/06/30160000.html"
PDF = "https://npi.or.jp/research/data/a.pdf"
EXPERT = "https://npi.or.jp/experts/yamada.html"
NOW = "2026-12-01T00:00:00Z"


def article(url: str = URL, **changes) -> ArticleRecord:
    fields = {
        "url": url,
        "lang": "ja",
        "title": "日本の経済安全保障",
        "published": "2025-06-30",
        "body": "第一段落。",
        "authors": [("山田 花子", EXPERT)],
        "pdfs": [PDF],
        **changes,
    }
    return ArticleRecord(**fields)


def warc(record: str, record_type: str = "response") -> WarcPointer:
    return WarcPointer(
        filename="npi-1.warc.gz",
        offset=0,
        length=10,
        payload_digest="sha1:X",
        record_id=f"<urn:uuid:{record}>",
        date=NOW,
        record_type=record_type,
        status=200,
        directory="/tmp/npi-warc",
        run_id=1,
    )


def dump(db_path: str) -> dict[str, list[tuple]]:
    """Every row of every table, read through a connection of its own: what is committed."""
    conn = sqlite3.connect(db_path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {t: sorted(map(repr, conn.execute(f"SELECT * FROM [{t}]"))) for t in tables}
    finally:
        conn.close()


@pytest.fixture
def archive(db_path):
    """An archive with a run, two articles, two events, two alerts with a delivery each."""
    with Archive.open(db_path) as archive:
        run = archive.start_run(mode="incremental", base_url="https://npi.or.jp/", langs=["ja"], sections=[])
        for url in (URL, OTHER):
            archive.store_article(article(url), run_id=run)
            shown = archive.alert_article(url)
            archive.record_event(NOW, "new", run, shown)  # not alerted yet
            alert = archive.enqueue_alert(NOW, run, None, "new", {"url": url, "title": "t", "body": "b", "tags": []})
            archive.claim_deliveries([alert["id"]], "c1", "label", "me", lapse_seconds=60, alive=lambda _: False)
        archive.record_deliveries([1, 2], "c1", ok=None, error=None)
        archive.store_pdf(PDF, status="ok", run_id=run, size=1, text="x")
        archive.store_expert(EXPERT, status="ok", run_id=run, name="Yamada")
        yield archive


@dataclass
class Case:
    write: Callable[[Archive], object]
    table: str  # the table of the writer's last statement, where the failure is injected
    when: str = "1"  # which row of it fails (SQL over ``new``/``old``)
    op: str = "UPDATE"

    def inject(self, conn: sqlite3.Connection) -> None:
        row = "old" if self.op == "UPDATE" else "new"
        conn.execute(
            f"CREATE TEMP TRIGGER injected AFTER {self.op} ON main.{self.table} "
            f"WHEN {self.when.replace('row.', row + '.')} BEGIN SELECT RAISE(ABORT, 'injected'); END"
        )


CASES = {
    # the crawl's writers
    "store_article": Case(lambda a: a.store_article(article(title="改題", authors=[("X", None)]), run_id=1), "authors", op="INSERT"),
    "add_listings": Case(lambda a: a.add_listings([URL, OTHER], "policy", run_id=1), "article_sections", f"row.article_url = '{OTHER}'", "INSERT"),
    "touch_article": Case(lambda a: a.touch_article(URL, warc=warc("t1", "revisit")), "warc_records", op="INSERT"),
    "mark_removed": Case(lambda a: a.mark_removed(URL, 404, warc=warc("r1")), "warc_records", op="INSERT"),
    "store_pdf": Case(lambda a: a.store_pdf(PDF, status="ok", run_id=1, warc=warc("p1"), size=2, text="y"), "pdf_texts"),
    "touch_pdf": Case(lambda a: a.touch_pdf(PDF, run_id=1, warc=warc("p2", "revisit")), "warc_records", op="INSERT"),
    "store_expert": Case(lambda a: a.store_expert(EXPERT, status="ok", run_id=1, name="Y"), "experts"),
    "touch_expert": Case(lambda a: a.touch_expert(EXPERT, run_id=7), "experts"),
    "add_warc_record": Case(lambda a: a.add_warc_record(URL, "list", warc("l1")), "warc_records", op="INSERT"),
    "start_run": Case(lambda a: a.start_run(mode="full", base_url="x", langs=[], sections=[]), "runs", op="INSERT"),
    "finish_run": Case(lambda a: a.finish_run(1, status="ok", counts={}, stats={}), "runs"),
    "mark_killed_runs": Case(lambda a: a.mark_killed_runs(), "runs"),
    "record_error": Case(lambda a: a.record_error(1, URL, "article:http_500", "HTTP 500"), "run_errors", op="INSERT"),
    # the differ's writers
    "record_event": Case(lambda a: a.record_event(NOW, "changed", 1, a.alert_article(URL), revision_id=9), "events", op="INSERT"),
    "enqueue_alert": Case(lambda a: a.enqueue_alert(NOW, 1, 1, "new", {"url": URL, "title": "t", "body": "b", "tags": []}), "events"),
    "mark_alerted": Case(lambda a: a.mark_alerted([1, 2]), "events", "row.id = 2"),
    "add_watched_scope": Case(lambda a: a.add_watched_scope("ja", "policy", NOW, 1), "watch_scopes", op="INSERT"),
    "add_watched_rule": Case(lambda a: a.add_watched_rule("chips", NOW, 1), "watch_rules", op="INSERT"),
    "mark_diffed": Case(lambda a: a.mark_diffed([1], NOW, "ok"), "runs"),
    "hold_events": Case(lambda a: a.hold_events([1, 2], NOW), "events", "row.id = 2"),
    "release_held": Case(lambda a: a.release_held([1, 2], NOW), "events", "row.id = 2"),
    # the outbox's writers
    "claim_deliveries": Case(lambda a: a.claim_deliveries([1, 2], "c2", "l", "me", lapse_seconds=60, alive=bool), "deliveries", "row.alert_id = 2", "INSERT"),
    "record_deliveries": Case(lambda a: a.record_deliveries([1, 2], "c1", ok=True, error=None), "deliveries", "row.alert_id = 2"),
    "settle_alerts": Case(lambda a: a.settle_alerts(unrouted=[1], sent=[2], failed={}), "alerts", "row.id = 2"),
    "reopen_unknown": Case(lambda a: a.reopen_unknown(), "deliveries"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_writer_alone_is_all_or_nothing_and_commits(archive, db_path, name):
    case = CASES[name]
    before = dump(db_path)
    case.inject(archive.conn)
    with pytest.raises(sqlite3.IntegrityError, match="injected"):
        case.write(archive)
    assert not archive.conn.in_transaction, "the writer left a transaction open"
    assert dump(db_path) == before, "a failure half-way kept the writes before it"
    archive.conn.execute("DROP TRIGGER temp.injected")
    case.write(archive)
    assert not archive.conn.in_transaction
    assert dump(db_path) != before, "the write was not committed"


def test_atomic_nests_as_savepoints(archive, db_path):
    titles = "SELECT title FROM articles ORDER BY url"
    with archive.atomic():
        archive.conn.execute("UPDATE articles SET title = 'outer' WHERE url = :u", {"u": URL})
        with pytest.raises(ZeroDivisionError), archive.atomic():
            archive.conn.execute("UPDATE articles SET title = 'inner' WHERE url = :u", {"u": OTHER})
            1 / 0  # noqa: B018 - the inner block fails: only its write is undone
        with archive.atomic():
            archive.store_pdf(PDF, status="failed", run_id=1, error="x")  # a writer nests a third level
        assert dump(db_path)["articles"] == dump(db_path)["articles"]  # nothing committed yet
    assert [r[0] for r in archive.conn.execute(titles)] == ["outer", "日本の経済安全保障"]
    assert archive.one("SELECT status FROM pdf_texts") == "failed"
    with pytest.raises(KeyError), archive.atomic():
        archive.mark_alerted([1, 2])
        raise KeyError("the outer block fails: everything inside it is undone")
    assert archive.one("SELECT count(*) FROM events WHERE alerted = 1") == 0


def test_a_trigger_that_rolls_back_everything_surfaces_its_own_error(archive):
    archive.conn.execute(
        "CREATE TEMP TRIGGER gone AFTER UPDATE ON main.events BEGIN SELECT RAISE(ROLLBACK, 'rolled back'); END"
    )
    with pytest.raises(sqlite3.IntegrityError, match="rolled back"), archive.atomic():
        archive.record_error(1, URL, "x", "kept until the rollback")
        archive.hold_events([1], NOW)  # a savepoint whose transaction SQLite has already ended
    assert not archive.conn.in_transaction
    assert archive.one("SELECT count(*) FROM run_errors") == 0
