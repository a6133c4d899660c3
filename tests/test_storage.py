"""The archive on a real SQLite file: schema, atomic writes, revisions, migrations, bad files."""

from __future__ import annotations

import os
import sqlite3
import stat

import pytest

from npi_crawler.archive import MIGRATIONS, Archive
from npi_crawler.archive.records import ArticleRecord
from npi_crawler.errors import ArchiveError


def article(**changes):
    base = {
        "url": "https://npi.or.jp/research/2025/06/30150000.html",
        "lang": "ja",
        "title": "日本の経済安全保障",
        "published": "2025-06-30",
        "body": "第一段落。\n\n第二段落。",
        "authors": [("山田 花子", "https://npi.or.jp/experts/yamada.html")],
        "pdfs": ["https://npi.or.jp/research/data/a.pdf"],
        "etag": '"v1"',
        "last_modified": None,
        "notes": [],
    }
    return ArticleRecord(**{**base, **changes})


@pytest.fixture
def archive(db_path):
    archive = Archive.open(db_path)
    yield archive
    archive.close()


def test_new_then_unchanged_then_updated_keeps_the_old_version(archive):
    run = archive.start_run(
        mode="incremental", base_url="https://npi.or.jp/", langs=["ja"], sections=["policy"]
    )
    assert archive.store_article(article(), run_id=run).status == "new"
    assert archive.store_article(article(), run_id=run).status == "unchanged"
    assert archive.db["revisions"].count == 0
    result = archive.store_article(article(title="改題", pdfs=[]), run_id=run)
    assert result.status == "updated"
    revision = archive.db["revisions"].get(result.revision_id)
    assert revision["title"] == "日本の経済安全保障"
    assert revision["pdfs"] == '["https://npi.or.jp/research/data/a.pdf"]'
    row = archive.db["articles"].get(article().url)
    assert row["title"] == "改題" and row["first_run_id"] == run
    assert archive.db["pdfs"].count == 0
    assert [r["name"] for r in archive.db["authors"].rows] == ["山田 花子"]


def test_unchanged_store_touches_only_last_seen(archive):
    archive.store_article(article(), run_id=None, now="2026-01-01T00:00:00Z")
    before = archive.db["articles"].get(article().url)
    archive.store_article(article(), run_id=None, now="2026-02-01T00:00:00Z")
    after = archive.db["articles"].get(article().url)
    changed = {k for k in before if before[k] != after[k]}
    assert changed == {"last_seen", "last_fetched"}


def test_a_failed_write_leaves_no_half_article(archive):
    bad = article(authors=[("A", object())])  # fails on the last statement of the transaction
    with pytest.raises(sqlite3.Error):
        archive.store_article(bad, run_id=None)
    assert archive.db["articles"].count == 0
    assert archive.db["pdfs"].count == 0
    assert archive.db["authors"].count == 0


def test_full_text_search_finds_japanese_and_english_substrings(archive):
    archive.store_article(article(), run_id=None)
    archive.store_article(
        article(
            url="https://npi.or.jp/en/x.html",
            lang="en",
            title="Semiconductor supply",
            body="Chips and supply chains.",
        ),
        run_id=None,
    )
    # The trigram index holds the folded text and no copy of it (contentless, 009): matched
    # through its rowid, as any SQLite client can.
    sql = "SELECT a.url FROM articles_fts JOIN articles a ON a.rowid = articles_fts.rowid WHERE articles_fts MATCH ?"
    hits = lambda q: [url for (url,) in archive.conn.execute(sql, [f'"{q}"'])]  # noqa: E731
    assert hits("経済安全") == ["https://npi.or.jp/research/2025/06/30150000.html"]
    assert hits("semiconductor") == ["https://npi.or.jp/en/x.html"]


def test_listing_and_removal_bookkeeping(archive):
    archive.store_article(article(), run_id=None)
    assert archive.add_listing(article().url, "policy", run_id=None) is True
    assert archive.add_listing(article().url, "policy", run_id=None) is False
    assert archive.known_memberships() == {(article().url, "policy")}
    assert archive.mark_removed(article().url, 404) is True
    assert archive.mark_removed(article().url, 404) is False
    assert list(archive.iter_articles()) == []
    assert len(list(archive.iter_articles(include_removed=True))) == 1
    archive.store_article(article(), run_id=None)  # it came back
    assert archive.db["articles"].get(article().url)["removed_at"] is None


def test_export_order_and_filters(archive):
    for i, (lang, date) in enumerate(
        [("ja", "2020-01-01"), ("en", "2024-05-05"), ("ja", None), ("en", "2024-05-05")]
    ):
        archive.store_article(
            article(url=f"https://npi.or.jp/{i}.html", lang=lang, published=date), run_id=None
        )
        archive.add_listing(f"https://npi.or.jp/{i}.html", "policy" if i % 2 else "economy", run_id=None)
    rows = list(archive.iter_articles())
    assert [r["url"][-6:] for r in rows] == ["1.html", "3.html", "0.html", "2.html"]
    assert {r["lang"] for r in archive.iter_articles(langs=["en"])} == {"en"}
    assert [r["url"][-6:] for r in archive.iter_articles(sections=["economy"], since="2019-01-01")] == [
        "0.html"
    ]


def test_archive_file_is_private_and_in_wal_mode(db_path, archive):
    assert stat.S_IMODE(os.stat(db_path).st_mode) == 0o600
    assert archive.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_migrations_are_recorded_and_idempotent(db_path, archive):
    assert archive.applied_migrations() == [name for name, _ in MIGRATIONS]
    assert archive.migrate() == []
    again = Archive.open(db_path)
    assert again.applied_migrations() == [name for name, _ in MIGRATIONS]
    again.close()


def test_not_a_database_is_a_clear_error(tmp_path):
    junk = tmp_path / "notes.txt"
    junk.write_text("this is not sqlite " * 100)
    with pytest.raises(ArchiveError, match="not an npi-crawler archive"):
        Archive.open(junk)
    assert junk.read_text().startswith("this is not sqlite")  # untouched


def test_someone_elses_sqlite_file_is_refused(tmp_path):
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    with pytest.raises(ArchiveError, match="not an npi-crawler archive"):
        Archive.open(other)


def test_missing_folder_and_missing_file(tmp_path):
    with pytest.raises(ArchiveError, match="does not exist"):
        Archive.open(tmp_path / "nope" / "npi.db")
    with pytest.raises(ArchiveError, match="does not exist"):
        Archive.open(tmp_path / "npi.db", create=False)
