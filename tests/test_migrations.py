"""Schema migrations: an archive made by the first release (only ``001_initial``) opens with the
current code and is upgraded in place, every row kept. Written against ``MIGRATIONS`` as it is, so
it keeps testing the real steps as later ones are appended."""

from __future__ import annotations

import sqlite3

import pytest

from npi_crawler.archive import MIGRATIONS, Archive
from npi_crawler.archive.migrations import migrate_archive

ARTICLE = {
    "url": "https://npi.or.jp/en/research/2025/06/30150000.html",
    "lang": "en",
    "title": "Japan's Economic Security in the New Era",
    "published": "2025-06-30",
    "body": "First paragraph.\n\n経済安全保障 second paragraph.",
    "authors": [("Taro Yamada", "https://npi.or.jp/en/experts/yamada.html")],
    "pdfs": ["https://npi.or.jp/en/research/data/" + "a" * 40 + ".pdf"],
    "notes": [],
}


def first_release_archive(path: str) -> dict:
    """Build an archive with only the first step, as version 0.1.0 did, holding a run, an article
    with a revision, sections, authors, PDFs and an error; return what it holds."""
    with Archive.connect(path) as archive:
        migrate_archive(archive, MIGRATIONS[:1])
        assert archive.applied_migrations() == ["001_initial"]
        run_id = archive.start_run(
            mode="incremental", base_url="https://npi.or.jp/", langs=["en"], sections=[]
        )
        archive.store_article(ARTICLE, run_id=run_id)
        archive.add_listing(ARTICLE["url"], "policy", run_id=run_id)
        archive.add_listing(ARTICLE["url"], "industry", run_id=run_id)
        archive.store_article({**ARTICLE, "body": ARTICLE["body"] + "\n\nAn added line."}, run_id=run_id)
        archive.record_error(run_id, "https://npi.or.jp/x.html", "article:http_503", "503")
        archive.finish_run(run_id, status="ok", counts={"articles_new": 1}, stats={"npi/run_id": run_id})
    return snapshot(path)


def snapshot(path: str) -> dict:
    """Every row of the first release's tables, as plain tuples (columns of the first release)."""
    conn = sqlite3.connect(path)
    tables = [
        "articles",
        "sections",
        "article_sections",
        "authors",
        "pdfs",
        "revisions",
        "runs",
        "run_errors",
    ]
    out = {}
    for table in tables:
        columns = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
        out[table] = (columns, sorted(conn.execute(f"SELECT * FROM {table}").fetchall(), key=repr))
    conn.close()
    return out


def test_first_release_archive_upgrades_in_place_with_its_data(db_path):
    before = first_release_archive(db_path)
    archive = Archive.open(db_path)
    assert archive.applied_migrations() == sorted(name for name, _ in MIGRATIONS)
    rows = list(archive.iter_articles())
    assert [(r["url"], r["sections"], r["authors"], r["pdfs"]) for r in rows] == [
        (ARTICLE["url"], ["industry", "policy"], ["Taro Yamada"], ARTICLE["pdfs"])
    ]
    assert list(archive.db.query("SELECT body FROM revisions"))[0]["body"] == ARTICLE["body"]
    assert (
        archive.db.execute(
            "SELECT count(*) FROM articles_fts WHERE articles_fts MATCH '経済安全'"
        ).fetchone()[0]
        == 1
    )
    archive.close()
    after = snapshot(db_path)
    for table, (columns, rows) in before.items():
        new_columns, new_rows = after[table]
        # later steps may add columns, never drop or reorder the first release's
        assert new_columns[: len(columns)] == columns, table
        assert [row[: len(columns)] for row in new_rows] == rows, table
    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()


def test_a_new_step_is_applied_once_in_its_own_transaction(db_path):
    first_release_archive(db_path)

    def step_add_column(db):
        db["articles"].add_column("summary", str)
        db.execute("UPDATE articles SET summary = substr(body, 1, 5)")

    steps = [*MIGRATIONS, ("900_test_summary", step_add_column)]
    archive = Archive.connect(db_path)
    migrate_archive(archive, steps)
    assert archive.applied_migrations()[-1] == "900_test_summary"
    assert archive.db.execute("SELECT summary FROM articles").fetchone()[0] == "First"
    assert migrate_archive(archive, steps) == []  # applied once
    archive.close()

    def broken_step(db):
        db["articles"].add_column("half_done", str)
        raise RuntimeError("the step fails half way")

    with pytest.raises(RuntimeError), Archive.connect(db_path) as broken:
        migrate_archive(broken, [*steps, ("901_broken", broken_step)])
    archive = Archive.open(db_path)
    # the failed step left nothing behind: no column, no record, data intact
    assert "half_done" not in {c.name for c in archive.db["articles"].columns}
    assert "901_broken" not in archive.applied_migrations()
    assert archive.db.execute("SELECT count(*) FROM articles").fetchone()[0] == 1
    archive.close()


def test_the_full_text_indexes_merge_sixteen_segments_at_a_time(db_path):
    with Archive.open(db_path) as archive:
        for index in ("articles_fts", "pdf_texts_fts", "articles_words", "pdf_texts_words"):
            assert archive.one(f"SELECT v FROM {index}_config WHERE k = 'automerge'") == 16, index


def test_runs_from_before_the_parse_health_step_get_theirs_from_their_stats(db_path):
    before = [name for name, _ in MIGRATIONS].index("008b_parse_health")
    with Archive.connect(db_path) as old:
        migrate_archive(old, MIGRATIONS[:before])
        run_id = old.start_run(mode="incremental", base_url="https://npi.or.jp/", langs=["en"], sections=[])
        stats = {"npi/article/pages": 6, "npi/list/pages": 12, "npi/parse/fallback/title_tag": 4, "npi/parse/miss/date": 0}
        old.finish_run(run_id, status="ok", counts={"list_pages": 12}, stats=stats)
        old.start_run(mode="incremental", base_url="x", langs=[], sections=[])  # killed: no stats at all
    with Archive.open(db_path) as archive:
        health = archive.parse_health(run_id)
        assert (health.article_pages, health.list_pages, dict(health.notes)) == (6, 12, {"fallback/title_tag": 4})
        assert archive.parse_health(run_id + 1).notes == {}
