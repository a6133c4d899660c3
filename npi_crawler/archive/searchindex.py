"""What the full-text indexes are fed: the text as watcher rules see it (``matching.fold``).

Search and rules read one text (issue 22): every index holds ``fold(text)`` (NFKC, so ＡＩ is AI;
white space folded; a space next to a Japanese character removed, so the PDF line break in 半導 体
is gone), and a query's terms are folded the same way. A rule that matches an article is then a
search hit for the same term (``tests/test_search_folding.py`` checks it over generated texts).

Three kinds of index, each over articles (title, body) and over the text of linked PDFs (text):

- ``articles_fts``/``pdf_texts_fts``: FTS5 ``trigram`` over ``fold(text)``: any substring of three
  or more characters (Japanese terms, --fts expressions, English fragments).
- ``articles_words``/``pdf_texts_words``: the rules' word tokenizer over ``word_view(fold(text))``
  (Japanese characters are word boundaries): English words, stemmed, whole.
- ``articles_bigrams``/``pdf_texts_bigrams``: every pair of adjacent Japanese characters as one
  token: a two-character term (憲法, 外交) is one token to look up, which the trigram index cannot
  do (it needs three characters); ranked by bm25 like the others.

All six are contentless FTS5 tables (``content=''``): they keep no copy of the text (the archive
keeps it once, in ``articles`` and ``pdf_texts``), and no content table disagrees with them
(an external-content index over ``articles`` would hold the folded text of a raw column, which
SQLite's integrity checks report as corruption). Triggers feed them through the SQL functions
below, so every connection that writes articles or PDF texts must have them: ``archive.db``
registers them on each connection it opens, the Datasette plugin on Datasette's. A contentless
index removes a row from the values it was given, recomputed by the same functions: folding must
stay what it is for as long as the index exists (Unicode's normalization stability policy keeps
NFKC of assigned characters fixed); a change to it is a new migration that calls ``reindex``.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable

from npi_crawler.site.text import CJK_RUN, WORD_TOKENIZER, fold, word_view

# Every character of a bigram is a token character (the bigrams view holds nothing else but the
# spaces between them), none changed: a bigram is exactly one token.
BIGRAM_TOKENIZER = "unicode61 remove_diacritics 0 categories 'L* M* N* P* S* Co'"
TITLE_WEIGHT = 10.0  # bm25 weight of an article's title against its body's 1.0

# index name -> (table, its columns, tokenizer, SQL function feeding it)
# Segments FTS5 merges at a time (its automerge; 4 by default): fewer rewrites of a run's postings
# (migration 008, issue 19; docs/performance.md).
AUTOMERGE = 16
INDEXES: dict[str, tuple[str, tuple[str, ...], str, str]] = {
    "articles_fts": ("articles", ("title", "body"), "trigram", "npi_fold"),
    "articles_words": ("articles", ("title", "body"), WORD_TOKENIZER, "npi_words"),
    "articles_bigrams": ("articles", ("title", "body"), BIGRAM_TOKENIZER, "npi_bigrams"),
    "pdf_texts_fts": ("pdf_texts", ("text",), "trigram", "npi_fold"),
    "pdf_texts_words": ("pdf_texts", ("text",), WORD_TOKENIZER, "npi_words"),
    "pdf_texts_bigrams": ("pdf_texts", ("text",), BIGRAM_TOKENIZER, "npi_bigrams"),
}


@functools.lru_cache(maxsize=8)
def _folded(text: str) -> str:
    # The triggers fold one column for three indexes in a row: fold it once.
    return fold(text)


def bigrams(folded: str) -> str:
    """The bigrams view: each pair of adjacent Japanese characters, separated by spaces
    (半導体と外交 gives 半導 導体 体と と外 外交)."""
    return " ".join(
        run[i : i + 2] for m in CJK_RUN.finditer(folded) if len(run := m.group()) > 1 for i in range(len(run) - 1)
    )


def occurrences(text: str | None, folded_term: str) -> int:
    """How often a folded term occurs in ``fold(text)``, as rules match a Japanese term: a
    substring, letters compared lower-cased."""
    if not text or not folded_term:
        return 0
    folded = _folded(text)
    if folded_term.lower() != folded_term.upper():
        return folded.lower().count(folded_term.lower())
    return folded.count(folded_term)


def _nullable(fn: Callable[[str], str]) -> Callable[[str | None], str | None]:
    return lambda text: None if text is None else fn(text)


FUNCTIONS: dict[str, tuple[int, Callable]] = {
    "npi_fold": (1, _nullable(_folded)),
    "npi_words": (1, _nullable(lambda text: word_view(_folded(text)))),
    "npi_bigrams": (1, _nullable(lambda text: bigrams(_folded(text)))),
    "npi_occurrences": (2, occurrences),
}


def is_archive(conn: sqlite3.Connection) -> bool:
    """Whether ``conn`` is open on an npi-crawler archive with the folded indexes (for a reader
    that opens any database, such as Datasette)."""
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    return {"articles", "migrations", "articles_bigrams"} <= names


def register_functions(conn: sqlite3.Connection) -> None:
    """The SQL functions the indexes' triggers and the searches call, on one connection."""
    for name, (arity, fn) in FUNCTIONS.items():
        conn.create_function(name, arity, fn, deterministic=True)


# -- the schema: migration 009 ---------------------------------------------------------------------

_OLD_TRIGGERS = (
    "articles_ai", "articles_ad", "articles_au", "pdf_texts_ai", "pdf_texts_ad", "pdf_texts_au",
    "articles_words_ai", "articles_words_ad", "articles_words_au",
    "pdf_texts_words_ai", "pdf_texts_words_ad", "pdf_texts_words_au",
)  # fmt: skip


def _values(table: str, row: str) -> list[tuple[str, str]]:
    """(index, the VALUES list of one row of ``table`` for it), ``row`` being new or old."""
    out = []
    for index, (source, columns, _, function) in INDEXES.items():
        if source == table:
            out.append((index, ", ".join([f"{row}.rowid", *(f"{function}({row}.{c})" for c in columns)])))
    return out


def _triggers(conn: sqlite3.Connection, table: str, columns: tuple[str, ...]) -> None:
    """Insert, delete and update triggers feeding every index of ``table``. An update re-indexes
    only when the text changes (a listing or a 304 updates last_seen of thousands of rows)."""
    cols = ", ".join(columns)
    insert = " ".join(f"INSERT INTO {i} (rowid, {cols}) VALUES ({v});" for i, v in _values(table, "new"))
    delete = " ".join(f"INSERT INTO {i} ({i}, rowid, {cols}) VALUES ('delete', {v});" for i, v in _values(table, "old"))
    changed = " OR ".join(f"old.{c} IS NOT new.{c}" for c in columns)
    conn.execute(f"CREATE TRIGGER {table}_search_ai AFTER INSERT ON {table} BEGIN {insert} END")
    conn.execute(f"CREATE TRIGGER {table}_search_ad AFTER DELETE ON {table} BEGIN {delete} END")
    conn.execute(
        f"CREATE TRIGGER {table}_search_au AFTER UPDATE OF {cols} ON {table} WHEN {changed} "
        f"BEGIN {delete} {insert} END"
    )


def reindex(conn: sqlite3.Connection) -> None:
    """Fill every index from its table (after creating them, or after a change of folding)."""
    for index, (table, columns, _, function) in INDEXES.items():
        cols = ", ".join(columns)
        conn.execute(f"INSERT INTO {index} ({index}) VALUES ('delete-all')")
        conn.execute(
            f"INSERT INTO {index} (rowid, {cols}) "
            f"SELECT rowid, {', '.join(f'{function}({c})' for c in columns)} FROM {table}"
        )


def create_folded_indexes(conn: sqlite3.Connection) -> None:
    """Migration 009: replace the trigram and word indexes of raw text (001, 003, 005) by the six
    indexes of folded text, and re-index every article and PDF text. Only derived data is
    dropped; the texts themselves are untouched."""
    for trigger in _OLD_TRIGGERS:
        conn.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    for index, (table, columns, tokenizer, _) in INDEXES.items():
        conn.execute(f"DROP TABLE IF EXISTS {index}")
        quoted = tokenizer.replace('"', '""')
        conn.execute(f'CREATE VIRTUAL TABLE {index} USING fts5({", ".join(columns)}, content=\'\', tokenize="{quoted}")')
        conn.execute(f"INSERT INTO {index} ({index}, rank) VALUES ('automerge', {AUTOMERGE})")  # as 008 set it
        if table == "articles":  # ORDER BY rank: bm25 with the title weighing ten times the body
            conn.execute(f"INSERT INTO {index} ({index}, rank) VALUES ('rank', 'bm25({TITLE_WEIGHT}, 1.0)')")
    _triggers(conn, "articles", ("title", "body"))
    _triggers(conn, "pdf_texts", ("text",))
    # Search counts its hits in the indexes alone: less the removed articles (listed by the first
    # index), or among the live articles of a language and dates (the second covers those).
    conn.execute("CREATE INDEX IF NOT EXISTS articles_removed ON articles (removed_at) WHERE removed_at IS NOT NULL")
    conn.execute("CREATE INDEX IF NOT EXISTS articles_live ON articles (published, lang) WHERE removed_at IS NULL")
    reindex(conn)
