"""The full-text indexes (the English word index of 005_word_index, fed the folded text since
009_folded_search) and how ``search`` routes each term to an index, on real SQLite archive files."""

from __future__ import annotations

import pytest

from npi_crawler.archive import MIGRATIONS, Archive
from npi_crawler.archive.migrations import migrate_archive
from npi_crawler.archive.records import ArticleRecord
from npi_crawler.archive.searchindex import INDEXES
from npi_crawler.errors import SearchError
from npi_crawler.research.search import kind_of, parse_query, plan_for, search

NOW = "2026-11-25T00:00:00Z"
PDF = "https://npi.or.jp/en/research/data/q.pdf"


def article(n: int, title: str, body: str, *, lang: str = "en", published: str = "2024-01-01", pdfs=()):
    prefix = "/en" if lang == "en" else ""
    return {
        "url": f"https://npi.or.jp{prefix}/research/2024/01/{n:08d}.html",
        "lang": lang,
        "title": title,
        "published": published,
        "body": body,
        "authors": [],
        "pdfs": list(pdfs),
    }


EARLY = [  # stored before the step: indexed by its backfill
    article(1, "Economic sanctions on Russia", "The G7 imposed sanctions."),
    article(2, "Trade policy", "Japan is sanctioning exports; its allies followed.", published="2023-05-01"),
    article(3, "The ministry finally acted", "Nothing about the measures here."),
]
LATE = [  # stored after the step: indexed by its triggers
    article(4, "半導体と経済安全保障", "NATOの拡大とAIを論じた。2024年の報告。", lang="ja"),
    article(5, "Café diplomacy", "Naïve policies and a sanction of last resort."),
    article(6, "Quantum", "See the report.", pdfs=[PDF]),
]


@pytest.fixture
def archive(db_path):
    """An archive made before the word index (steps up to 004), upgraded by opening it."""
    with Archive.connect(db_path) as old:
        migrate_archive(old, [step for step in MIGRATIONS if step[0] < "005"])
        for a in EARLY:
            old.store_article(ArticleRecord(**a), run_id=None, now=NOW)
        assert "articles_words" not in old.db.table_names()
    archive = Archive.open(db_path)
    assert "005_word_index" in archive.applied_migrations()
    for a in LATE:
        archive.store_article(ArticleRecord(**a), run_id=None, now=NOW)
    archive.store_pdf(PDF, status="ok", run_id=None, text="Export controls on quantum sensors and sanctions.")
    yield archive
    archive.close()


def numbers(hits) -> list[int]:
    return [int(h.url.rsplit("/", 1)[1][:8]) for h in hits]


def test_stemming_finds_inflected_forms_and_never_a_word_inside_another(archive):
    assert sorted(archive.matched_forms("sanction")) == ["sanction", "sanctioning", "sanctions"]
    assert archive.matched_forms("ally") == {"allies": 1}  # not "finally"
    assert archive.count_matches("articles_fts", '"ally"') == 1  # the trigram's "finally"
    assert archive.count_matches("articles_words", '"policy"') == 2  # policy and policies
    assert archive.count_matches("articles_words", '"cafe" "naive"') == 1  # diacritics folded
    # Latin words written against kana are words of their own in Japanese text.
    assert archive.count_matches("articles_words", '"nato"') == 1
    assert archive.count_matches("articles_words", '"ai"') == 1
    assert archive.count_matches("pdf_texts_words", '"sanction"') == 1


def test_triggers_follow_inserts_edits_and_deletes_and_skip_untouched_text(archive):
    archive.store_article(ArticleRecord(**LATE[1] | {"body": "Cafe owners were sanctioned."}), run_id=None, now=NOW)
    assert archive.count_matches("articles_words", '"naive"') == 0
    assert archive.count_matches("articles_words", '"owner"') == 1
    assert archive.count_matches("articles_words", '"sanction"') == 3
    with archive.atomic() as conn:
        conn.execute("DELETE FROM articles WHERE url = ?", [EARLY[0]["url"]])
        conn.execute("UPDATE pdf_texts SET text = 'Nothing left.'")
    assert archive.count_matches("articles_words", '"russia"') == 0
    assert archive.count_matches("pdf_texts_words", '"sanction"') == 0
    for index in INDEXES:
        # FTS5 checks each index's own structure (contentless: no content table to compare).
        archive.conn.execute(f"INSERT INTO {index} ({index}) VALUES ('integrity-check')")


def test_a_touch_reindexes_nothing(archive):
    """last_seen/last_fetched updates (every listing, every 304) leave all four indexes alone."""

    def index_writes() -> int:
        return archive.one("SELECT total_changes()")

    before = index_writes()
    archive.touch_article(LATE[1]["url"])
    archive.touch_pdf(PDF, run_id=None)
    assert index_writes() - before == 2  # the two rows themselves, no index row
    archive.store_article(ArticleRecord(**LATE[1] | {"body": "Edited."}), run_id=None, now=NOW)
    assert index_writes() - before > 10  # an edit re-indexes: both indexes, delete and insert


def test_the_indexes_hold_no_copy_of_the_text(archive):
    """Contentless: the archive keeps each text once, in its table."""
    for index in INDEXES:
        sql = archive.one("SELECT sql FROM sqlite_master WHERE name = ?", [index])
        assert "content=''" in sql, sql
    assert archive.one("SELECT count(*) FROM articles_fts WHERE articles_fts MATCH '\"NATOの\"'") == 1


@pytest.mark.parametrize(
    ("term", "kind"),
    [
        ("sanction", "words"),
        ("supply chains", "words"),
        ("AI", "words"),
        ("Café", "words"),
        ("2024", "words"),
        ("半導体", "fts"),
        ("AI半導体", "fts"),
        ("憲法", "bigrams"),
        ("米", "scan"),
        ("A党", "scan"),
    ],
)
def test_each_term_goes_to_the_index_that_finds_it(term, kind):
    assert kind_of(term) == kind


def test_a_plan_ranks_by_the_trigram_then_the_bigram_then_the_word_index():
    assert plan_for(parse_query("AI 憲法 半導体")).ranked == "fts"
    assert plan_for(parse_query("AI 憲法")).ranked == "bigrams"
    assert plan_for(parse_query('"supply chains" AI')).ranked == "words"
    assert plan_for(parse_query("米")).ranked is None and plan_for(parse_query("米")).scan == ("米",)
    fallback = plan_for(parse_query("semicon AI"), substrings=True)
    assert fallback.phrases == {"fts": ('"semicon"',), "words": ('"AI"',)}
    assert plan_for(parse_query("semiconductor* OR sanction", raw=True)).expression == "semiconductor* OR sanction"
    with pytest.raises(SearchError, match="the query is not valid: it is empty"):
        parse_query("   ")


def test_search_puts_title_matches_first_then_body_then_pdfs(archive):
    hits = search(archive, "sanction")
    assert numbers(hits) == [1, 2, 5, 6]  # title, then body matches (bm25), then the PDF-only one
    assert [h.match for h in hits] == ["text", "text", "text", "pdf"]
    assert hits[3].pdf_url == PDF and "[sanctions]" in hits[3].snippet
    assert "[sanctioning]" in hits[1].snippet  # the stemmed form is the one marked
    scores = [h.score for h in hits[:3]]  # a word in most of 5 articles has an IDF near 0
    assert scores == sorted(scores, reverse=True) and scores[0] > scores[1] >= 0
    assert numbers(search(archive, "sanction", since="2024")) == [1, 5, 6]
    assert numbers(search(archive, "sanction", limit=2)) == [1, 2]
    assert numbers(search(archive, "AI", langs=["ja"])) == [4]


def test_a_fragment_falls_back_to_substrings_and_japanese_stays_on_trigrams(archive):
    assert set(numbers(search(archive, "sanctio"))) == {1, 2, 5, 6}
    assert numbers(search(archive, "経済安全保障")) == [4]
    assert search(archive, "nowhere") == []
