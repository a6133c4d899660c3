"""Full-text queries over ``articles_fts`` and ``pdf_texts_fts`` (FTS5, trigram tokenizer).

research/search.py turns what the user typed into an FTS5 expression over the terms of three or
more characters and a list of shorter terms; the queries here run them, with the reader filters
of ``article_filters``. A short term cannot use a trigram index: it is matched with LIKE (a
substring, for Japanese such as 憲法) or GLOB (a whole word, for Latin such as AI).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from npi_crawler.archive.articles import article_filters
from npi_crawler.archive.db import ArchiveBase

TITLE_WEIGHT = 10.0  # bm25 weight of the title column against the body's 1.0
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
