"""Full-text queries over the trigram indexes (``articles_fts``, ``pdf_texts_fts``) and the
English word indexes (``articles_words``, ``pdf_texts_words``: porter stemming, migration 005).

research/search.py decides which index a query goes to and turns what the user typed into FTS5
expressions; the queries here run them, with the reader filters of ``article_filters``. A term
shorter than three characters cannot use a trigram index: it is matched with LIKE (a substring,
for Japanese such as 憲法) or GLOB (a whole word, for Latin such as AI).

The word index ranks inside FTS5 (``ORDER BY rank``, the title weight stored as the table's rank
setting), so the join to ``articles`` and the filters meet only the best rows until ``limit`` of
them pass: ranking costs about 3 us per matching row (31,000 rows for "semiconductors" on the
benchmark's 100,000 articles).

``DATASETTE_SEARCH`` is the canned query behind Datasette's Search page (``npi-crawler serve``),
which routes a query the same way in SQL.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable
from typing import Any

from npi_crawler.archive.articles import article_filters
from npi_crawler.archive.db import ArchiveBase

TITLE_WEIGHT = 10.0  # bm25 weight of the title column against the body's 1.0
WORD_INDEXES = ("articles_words", "pdf_texts_words")
SNIPPET_TOKENS = 16  # words of context in a word-index snippet (FTS5's snippet(), stems marked)
_ASCII_WORD = re.compile(r"[A-Za-z0-9]+")


def _like(term: str) -> str:
    return "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def short_match(column: str, term: str, key: str) -> tuple[str, dict[str, str]]:
    """SQL matching a 1-2 character term in ``column``: a substring for Japanese (憲法), a whole
    word for Latin letters and digits (AI must not match inside "Taiwan")."""
    if _ASCII_WORD.fullmatch(term):
        return f"(' ' || lower({column}) || ' ') GLOB :{key}", {key: f"*[^a-z0-9]{term.lower()}[^a-z0-9]*"}
    return f"{column} LIKE :{key} ESCAPE '\\'", {key: _like(term)}


def _count(column: str, key: str) -> str:
    """SQL: how many times :key occurs in ``column`` (case as stored)."""
    return f"((length({column}) - length(replace({column}, :{key}, ''))) / max(length(:{key}), 1))"


def _short_conditions(columns: list[str], short: list[str]) -> tuple[list[str], dict[str, Any]]:
    """Every short term must match in one of ``columns``."""
    sql, params = [], {}
    for i, term in enumerate(short):
        parts = []
        for j, column in enumerate(columns):
            part, part_params = short_match(column, term, f"short{i}_{j}")
            parts.append(part)
            params.update(part_params)
        sql.append("(" + " OR ".join(parts) + ")")
    return sql, params


class FullText(ArchiveBase):
    def text_hits(
        self, fts: str | None, short: list[str], filters: dict[str, Any], limit: int
    ) -> list[tuple[str, float]]:
        """(article URL, score) matching in the article itself, best first (lower is better)."""
        where, params = article_filters(**filters)
        like_sql, like_params = _short_conditions(["a.title", "a.body"], short)
        conditions = " AND ".join(where + like_sql) or "1"
        params = {**params, **like_params, "limit": limit}
        if fts:
            sql = (
                f"SELECT a.url, bm25(articles_fts, {TITLE_WEIGHT}, 1.0) AS score FROM articles_fts "
                "JOIN articles a ON a.rowid = articles_fts.rowid "
                f"WHERE articles_fts MATCH :fts AND {conditions} ORDER BY score, a.published DESC LIMIT :limit"
            )
            params["fts"] = fts
        else:  # only short terms: a scan, ranked by title matches, then occurrences, then newest
            scores = []
            for i, term in enumerate(short):
                params[f"count{i}"] = term
                scores.append(f"{TITLE_WEIGHT} * {_count('a.title', f'count{i}')} + {_count('a.body', f'count{i}')}")
            sql = (
                f"SELECT a.url, -({' + '.join(scores)}) AS score FROM articles a "
                f"WHERE {conditions} ORDER BY score, a.published DESC LIMIT :limit"
            )
        return [(url, score) for url, score in self.conn.execute(sql, params)]

    def pdf_hits(
        self, fts: str | None, short: list[str], filters: dict[str, Any], limit: int
    ) -> list[tuple[str, str, float]]:
        """(article URL, PDF URL, score) matching in the text of a linked PDF."""
        where, params = article_filters(**filters)
        like_sql, like_params = _short_conditions(["t.text"], short)
        conditions = " AND ".join(where + like_sql) or "1"
        params = {**params, **like_params, "limit": limit}
        joins = "JOIN pdfs p ON p.url = t.url JOIN articles a ON a.url = p.article_url"
        if fts:
            sql = (
                "SELECT a.url, t.url, bm25(pdf_texts_fts) AS score FROM pdf_texts_fts "
                f"JOIN pdf_texts t ON t.rowid = pdf_texts_fts.rowid {joins} "
                f"WHERE pdf_texts_fts MATCH :fts AND {conditions} ORDER BY score, a.published DESC LIMIT :limit"
            )
            params["fts"] = fts
        else:
            sql = (
                f"SELECT a.url, t.url, 0 AS score FROM pdf_texts t {joins} "
                f"WHERE t.text IS NOT NULL AND {conditions} ORDER BY a.published DESC LIMIT :limit"
            )
        return list(self.conn.execute(sql, params))

    def hit_rows(self, urls: Iterable[str]) -> dict[str, dict[str, Any]]:
        """What a search result shows of each article, by URL."""
        out = {}
        for url in urls:
            rows = self.rows(
                "SELECT url, lang, title, published, body, (SELECT group_concat(section) FROM (SELECT section "
                "FROM article_sections WHERE article_url = a.url ORDER BY section)) AS sections "
                "FROM articles a WHERE url = :url",
                {"url": url},
            )
            if rows:
                out[url] = rows[0]
        return out

    def pdf_text(self, url: str) -> str | None:
        return self.one("SELECT text FROM pdf_texts WHERE url = :url", {"url": url})

    # -- the English word index -------------------------------------------------------------
    def word_hits(
        self, phrases: list[str], filters: dict[str, Any], limit: int, *, in_title: bool
    ) -> list[tuple[str, int, float]]:
        """(article URL, rowid, rank) of the articles holding every phrase (FTS5 strings, quoted),
        best first (lower rank is better). ``in_title``: only those whose title holds one of
        the phrases, else only the others."""
        where, params = article_filters(**filters)
        conditions = " AND ".join(where) or "1"
        title = "{title} : (" + " OR ".join(phrases) + ")"
        match = f"({' AND '.join(phrases)}) {'AND' if in_title else 'NOT'} {title}"
        sql = (
            "SELECT a.url, a.rowid, articles_words.rank FROM articles_words "
            "JOIN articles a ON a.rowid = articles_words.rowid "
            f"WHERE articles_words MATCH :match AND {conditions} ORDER BY articles_words.rank LIMIT :limit"
        )
        params = {**params, "match": match, "limit": limit}
        return [(url, rowid, rank) for url, rowid, rank in self.conn.execute(sql, params)]

    def pdf_word_hits(
        self, phrases: list[str], filters: dict[str, Any], limit: int
    ) -> list[tuple[str, str, int, float]]:
        """(article URL, PDF URL, the PDF's rowid, rank) of linked PDFs whose text holds every
        phrase, best first."""
        where, params = article_filters(**filters)
        conditions = " AND ".join(where) or "1"
        sql = (
            "SELECT a.url, t.url, t.rowid, pdf_texts_words.rank FROM pdf_texts_words "
            "JOIN pdf_texts t ON t.rowid = pdf_texts_words.rowid "
            "JOIN pdfs p ON p.url = t.url JOIN articles a ON a.url = p.article_url "
            f"WHERE pdf_texts_words MATCH :match AND {conditions} ORDER BY pdf_texts_words.rank LIMIT :limit"
        )
        params = {**params, "match": " AND ".join(phrases), "limit": limit}
        return list(self.conn.execute(sql, params))

    def word_snippets(self, index: str, phrases: list[str], rowids: list[int]) -> dict[int, str]:
        """FTS5's snippet of each row of ``index`` (a word index) around the phrases, the matched
        forms marked [like this]. Asked for the rows found, apart from the ranking: in the ranked
        query with filters, SQLite made snippets of rows the filters then dropped (12 ms more)."""
        if index not in WORD_INDEXES:
            raise ValueError(f"not a word index: {index}")
        marks = ", ".join("?" * len(rowids))
        sql = (
            f"SELECT rowid, snippet({index}, -1, '[', ']', '…', {SNIPPET_TOKENS}) FROM {index} "
            f"WHERE {index} MATCH ? AND rowid IN ({marks})"
        )
        return dict(self.conn.execute(sql, [" AND ".join(phrases), *rowids])) if rowids else {}

    # -- what the indexes hold (benchmarks/search_bench.py, docs/research.md) ----------------
    def count_matches(self, index: str, match: str) -> int:
        """Rows of ``index`` (one of the four full-text indexes) matching ``match``."""
        if index not in ("articles_fts", "pdf_texts_fts", *WORD_INDEXES):
            raise ValueError(f"not a full-text index: {index}")
        return self.one(f"SELECT count(*) FROM {index} WHERE {index} MATCH :match", {"match": match})

    def matched_forms(self, term: str, sample: int = 2000) -> dict[str, int]:
        """The words the word index matched for ``term`` in the first ``sample`` matching
        articles, with how many of them hold each, most first: which forms stemming brings in."""
        rows = self.conn.execute(
            "SELECT highlight(articles_words, 1, char(1), char(2)) || highlight(articles_words, 0, char(1), "
            "char(2)) FROM articles_words WHERE articles_words MATCH :match LIMIT :sample",
            {"match": '"' + term.replace('"', '""') + '"', "sample": sample},
        )
        forms: dict[str, int] = {}
        for (text,) in rows:
            for form in {m.lower() for m in re.findall("\x01([^\x02]*)\x02", text or "")}:
                forms[form] = forms.get(form, 0) + 1
        return dict(sorted(forms.items(), key=lambda kv: (-kv[1], kv[0])))

    def index_sizes(self) -> dict[str, int]:
        """Bytes of each full-text index (its shadow tables), by name; empty when this SQLite has
        no dbstat table."""
        names = ("articles_fts", "pdf_texts_fts", *WORD_INDEXES)
        try:
            rows = self.conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall()
        except sqlite3.OperationalError:  # SQLite built without SQLITE_ENABLE_DBSTAT_VTAB
            return {}
        sizes = dict.fromkeys(names, 0)
        for table, size in rows:
            for name in names:
                if table.startswith(name + "_"):
                    sizes[name] += size
        return sizes


# -- Datasette (npi-crawler serve): a search box that routes like search() --------------------
# The user's words as FTS5 phrases, every one required: double quotes dropped, spaces (full-width
# too) between words; runs of spaces folded, so no empty phrase appears.
_PHRASES = (
    "'\"' || replace(replace(replace(replace(trim(replace(replace(:q, '\"', ''), '\u3000', ' ')), "
    "'    ', ' '), '  ', ' '), '  ', ' '), ' ', '\" \"') || '\"'"
)
# Kana, CJK ideographs (and their extension A and compatibility forms), half-width katakana, Hangul.
_CJK_GLOB = "'*[ぁ-ヿ㐀-䶿一-鿿豈-﫿ｦ-ﾟ가-힯]*'"
_LATIN_QUERY = f"(:q GLOB '*[A-Za-z]*' AND :q NOT GLOB {_CJK_GLOB})"

# The search box that routes like `npi-crawler search`: English to the word index (stemmed, whole
# words), anything with Japanese script to the trigram index; best match first (bm25, the title
# weighing ten times the body). Only the branch that fits runs (its condition is constant), and
# each ranks inside FTS5 and stops at 100 rows, so snippets are made for those rows only.
_DATASETTE_SEARCH_SQL = f"""select * from (
  select a.published, a.lang, a.title, a.url,
    snippet(articles_words, -1, '[', ']', '…', 16) as snippet, round(-articles_words.rank, 2) as score
  from articles_words join articles a on a.rowid = articles_words.rowid
  where {_LATIN_QUERY} and articles_words match {_PHRASES} and a.removed_at is null
  order by articles_words.rank limit 100)
union all
select * from (
  select a.published, a.lang, a.title, a.url,
    snippet(articles_fts, -1, '[', ']', '…', 24) as snippet, round(-articles_fts.rank, 2) as score
  from articles_fts join articles a on a.rowid = articles_fts.rowid
  where not {_LATIN_QUERY} and articles_fts match {_PHRASES} and articles_fts.rank match 'bm25(10.0, 1.0)'
    and a.removed_at is null
  order by articles_fts.rank limit 100)
order by score desc, published desc"""

DATASETTE_SEARCH = {
    "title": "Search",
    "description": "Articles holding every word, best match first, as npi-crawler search ranks "
    "them. English words go to the word index: stemmed (sanction finds sanctions, sanctioned) "
    "and whole (ally never matches inside finally). Anything with Japanese goes to the trigram "
    "index: any substring of 3 or more characters (a 2-character term such as 憲法 finds "
    "nothing here: use npi-crawler search, or the articles table's filters).",
    "sql": _DATASETTE_SEARCH_SQL,
}
