"""Schema migrations: an archive made by the first release (only ``001_initial``) opens with the
current code and is upgraded in place, every row kept. Written against ``MIGRATIONS`` as it is, so
it keeps testing the real steps as later ones are appended."""

from __future__ import annotations

import sqlite3

import pytest

from npi_crawler.archive import MIGRATIONS, Archive, ArchiveError
from npi_crawler.archive.migrations import migrate_archive
from npi_crawler.archive.records import ArticleRecord

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
        archive.store_article(ArticleRecord(**ARTICLE), run_id=run_id)
        archive.add_listing(ARTICLE["url"], "policy", run_id=run_id)
        archive.add_listing(ARTICLE["url"], "industry", run_id=run_id)
        archive.store_article(ArticleRecord(**ARTICLE | {"body": ARTICLE["body"] + "\n\nAn added line."}), run_id=run_id)
        archive.record_error(run_id, "https://npi.or.jp/x.html", "article:http_503", "503")
        archive.finish_run(run_id, status="ok", counts={"articles_new": 1}, stats={"npi/run_id": run_id})
    return snapshot(path)


def snapshot(path: str, like: dict | None = None) -> dict:
    """Every row of the first release's tables, as plain tuples; with ``like`` (an earlier
    snapshot), only its columns (a later step may add a column, e.g. 012's runs.retry_after)."""
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
        columns = like[table][0] if like else [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
        picked = ", ".join(f'"{c}"' for c in columns)
        out[table] = (columns, sorted(conn.execute(f"SELECT {picked} FROM {table}").fetchall(), key=repr))
    conn.close()
    return out


def assert_kept(before: dict, after: dict) -> None:
    """Every row and column of ``before`` is in ``after``: later steps may add columns, never
    drop or reorder the ones there were."""
    for table, (columns, rows) in before.items():
        new_columns, new_rows = after[table]
        assert new_columns[: len(columns)] == columns, table
        assert [row[: len(columns)] for row in new_rows] == rows, table


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
    assert_kept(before, snapshot(db_path))
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


FOLDED = [  # what the indexes of raw text (before 009) could not find
    {**ARTICLE, "url": ARTICLE["url"].replace("30150000", "30150001"), "lang": "ja",
     "title": "ＡＩ政策と半導\n体", "body": "ＥＵの規則。憲法の議論。", "pdfs": [], "authors": []},
    {**ARTICLE, "url": ARTICLE["url"].replace("30150000", "30150002"), "title": "Sanctions",
     "body": "NATO加盟国のsanction。", "pdfs": [], "authors": []},
]  # fmt: skip


def test_009_reindexes_the_folded_text_and_keeps_every_row(db_path):
    """An archive made before 009 (raw-text indexes) is upgraded in place: every row kept, the
    old indexes and triggers replaced, and the terms only folding finds are found."""
    first_release_archive(db_path)
    with Archive.connect(db_path) as old:
        migrate_archive(old, [s for s in MIGRATIONS if s[0] < "009"])
        for article in FOLDED:
            old.store_article(ArticleRecord(**article), run_id=None)
        old.store_pdf(ARTICLE["pdfs"][0], status="ok", run_id=None, text="ＧＸ投資の報告")
        assert "articles_bigrams" not in old.db.table_names()
    with pytest.raises(ArchiveError, match="older npi-crawler .*009_folded_search.*npi-crawler migrate"):
        Archive.open(db_path, readonly=True)  # a reader never migrates; it says what to run
    before = snapshot(db_path)

    from npi_crawler.research.search import search

    with Archive.open(db_path) as archive:
        assert "009_folded_search" in archive.applied_migrations()
        triggers = {r[0] for r in archive.conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
        assert {"articles_ai", "articles_words_ai", "pdf_texts_au"}.isdisjoint(triggers)
        found = {q: [h.url[-13:-5] for h in search(archive, q)] for q in ("AI", "半導体", "EU", "憲法", "ai政策", "nato")}
        assert found == {
            "AI": ["30150001"], "半導体": ["30150001"], "EU": ["30150001"], "憲法": ["30150001"],
            "ai政策": ["30150001"], "nato": ["30150002"],
        }  # fmt: skip
        pdf = search(archive, "gx")
        assert [(h.url, h.match) for h in pdf] == [(ARTICLE["url"], "pdf")] and "[GX]" in pdf[0].snippet
    assert_kept(before, snapshot(db_path))  # the texts themselves untouched
    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()
