"""Full-text queries over the indexes of folded text (archive/searchindex.py): ``fts`` (trigrams),
``words`` (English words, stemmed) and ``bigrams`` (pairs of Japanese characters), each over
articles (``articles_<kind>``: title, body) and over the text of linked PDFs (``pdf_texts_<kind>``).

research/search.py turns what the user typed into a ``Plan``: the FTS5 phrases each index must
match, the one index that ranks, and the few terms no index can find (a one-character Japanese
term), matched by ``npi_occurrences`` over the folded text. The queries here run a plan with the
reader filters of ``article_filters``.

An index ranks inside FTS5 (``ORDER BY rank``: bm25, the title weighing ten times the body, set
as each article index's rank), so the join to ``articles`` and the filters meet only the best
rows until ``limit`` of them pass: ranking costs about 3 us per matching row. The other indexes
of a plan are each listed once (``rowid IN (SELECT rowid ... MATCH)``), then probed per row.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable
from typing import Any

from npi_crawler.archive.hitcount import HitCounts
from npi_crawler.archive.searchindex import INDEXES
from npi_crawler.archive.searchplan import (
    KINDS,
    REMOVED,
    SOURCES,
    Plan,
    Scope,
    kept_probe,
    narrowed,
    probes,
    row_filters,
    scan_score,
    scans,
    title_match,
    where,
)
from npi_crawler.site.text import WORD_TOKENIZER, word_view

__all__ = ["KINDS", "FullText", "Plan", "Scope", "word_spans"]

# A ranked pass reads the best rows of one index (SQLite's top-N sort of its rank, no join), then
# checks the filters on those alone: WINDOW_PER_HIT rows a hit wanted when a filter may drop
# rows, else TIE_ROWS more than wanted (ties are ordered by date, so the rows of the last score
# shown must all be read). FTS5's own ORDER BY rank sorts every match: a third slower.
TIE_ROWS = 20
WINDOW_PER_HIT = 50


def _best(rows: list[tuple], limit: int) -> list[tuple]:
    """The first ``limit`` of ``rows`` (..., score, published), sorted by score, ties newest
    first, then by the rest of the row (URLs)."""
    rows = sorted(rows, key=lambda r: r[:-2])
    rows.sort(key=lambda r: r[-1] or "", reverse=True)  # stable: the URLs' order stays in a tie
    rows.sort(key=lambda r: r[-2])
    return rows[:limit]


def _cut(rows: list[tuple], limit: int, read: list[float], more: bool) -> list[tuple] | None:
    """``rows`` (those passing of the rows whose ``read`` scores were read, best first) cut to
    ``limit``; None when an unread row (``more``) may belong: fewer than wanted passed, or a tie
    with the last row shown may go on among the unread ones."""
    if not more:
        return _best(rows, limit)  # every match was read
    if len(rows) < limit:
        return None
    last = sorted(r[-2] for r in rows)[limit - 1]
    return None if read[-1] == last else _best([r for r in rows if r[-2] <= last], limit)


class FullText(HitCounts):
    def text_hits(
        self, plan: Plan, scope: Scope, limit: int, *, in_title: bool | None = None
    ) -> list[tuple[str, int, float]]:
        """(article URL, rowid, rank) of the articles whose title and body match ``plan``, best
        first (lower is better), ties newest first. ``in_title``: only those whose title holds a
        phrase of the ranked index (True) or only the others (False)."""
        match = title_match(plan, plan.ranked, in_title) if plan.ranked else ""
        return self._ranked_rows("articles", plan, scope, limit, match)

    def pdf_hits(self, plan: Plan, scope: Scope, limit: int) -> list[tuple[str, str, float]]:
        """(article URL, PDF URL, rank) of the linked PDFs whose text matches ``plan``."""
        return self._ranked_rows(
            "pdf_texts", plan, scope, limit, plan.match(plan.ranked) if plan.ranked else ""
        )

    def _ranked_rows(self, table: str, plan: Plan, scope: Scope, limit: int, match: str) -> list[tuple]:
        """Rows of ``table`` (articles, or the PDF texts with the article linking each) matching
        ``plan``, best first, ties newest first: ranked by the index (``match`` its MATCH), or by
        the weighted occurrences of the scan terms when no index can."""
        if plan.ranked is None:
            return self._scanned_rows(table, plan, scope, limit)
        window = limit * WINDOW_PER_HIT if narrowed(plan, scope, table) else limit + TIE_ROWS
        best = self._window(table, plan, scope, match, limit, window)
        wanted = limit + TIE_ROWS
        while best is None:  # filters that keep few rows, or a long tie: rank what passes them
            best = self._filtered_first(table, plan, scope, match, limit, wanted)
            wanted *= 4
        return [row[:-1] for row in best]

    def _window(
        self, table: str, plan: Plan, scope: Scope, match: str, limit: int, window: int
    ) -> list[tuple] | None:
        """The best ``window`` rows of the ranked index, then those of them passing the filters
        (the best first, until enough pass); None when they may not hold the best ``limit``."""
        index = f"{table}_{plan.ranked}"
        conditions, params = probes(plan, table, index, skip=plan.ranked)
        conditions += kept_probe(scope, index)
        if table == "articles":
            conditions.append(f"+{index}.rowid NOT IN ({REMOVED})")
        sql = (
            f"SELECT rowid, rank FROM {index} WHERE {' AND '.join([f'{index} MATCH :match', *conditions])} "
            "ORDER BY rank, rowid LIMIT :window"
        )
        top = self.tuples(sql, {**params, "match": match, "window": window, "kept": scope.kept})
        rows: list[tuple] = []
        read = 0
        for upto in (limit * 4 + TIE_ROWS, len(top)):  # most filters keep a quarter or more
            rows += self._passing(table, plan, scope, top[read:upto])
            read = max(read, upto)
            best = _cut(
                rows, limit, [score for _, score in top[:read]], read < len(top) or len(top) == window
            )
            if best is not None or read >= len(top):
                return best
        return None

    def _passing(self, table: str, plan: Plan, scope: Scope, top: list[tuple[int, float]]) -> list[tuple]:
        """(hit columns..., score, published) of the ``top`` (rowid, score) rows of ``table``
        that pass the filters and scan terms."""
        if not top:
            return []
        alias, columns, first, joins, _ = SOURCES[table]
        conditions, params = row_filters(scope)
        scan_sql, scan_params = scans(plan, table, alias)
        sql = (
            f"SELECT {alias}.rowid, {columns}, a.published FROM json_each(:ids) j "
            f"CROSS JOIN {first} ON {alias}.rowid = j.value {joins} WHERE {' AND '.join(conditions + scan_sql) or '1'}"
        )
        score = dict(top)
        rows = self.tuples(sql, {**params, **scan_params, "ids": json.dumps(list(score))})
        return [(*hit, score[rowid], published) for rowid, *hit, published in rows]

    def _filtered_first(
        self, table: str, plan: Plan, scope: Scope, match: str, limit: int, wanted: int
    ) -> list[tuple] | None:
        """The best ``wanted`` rows among those passing the filters (ranked after them), cut as
        ``_cut`` does."""
        alias, columns, first, joins, _ = SOURCES[table]
        index = f"{table}_{plan.ranked}"
        conditions, params = where(plan, scope, table, alias, plan.ranked)
        sql = (
            f"SELECT {columns}, {index}.rank, a.published FROM {index} CROSS JOIN {first} ON {alias}.rowid = "
            f"{index}.rowid {joins} WHERE {index} MATCH :match AND {conditions} ORDER BY {index}.rank, {index}.rowid "
            "LIMIT :wanted"
        )
        rows = self.tuples(sql, {**params, "match": match, "wanted": wanted})
        return _cut(rows, limit, [row[-2] for row in rows], len(rows) == wanted)

    def _scanned_rows(self, table: str, plan: Plan, scope: Scope, limit: int) -> list[tuple]:
        """Rows matching only scan terms (no index can): every row read, ranked by how often the
        terms occur."""
        alias, columns, first, joins, weights = SOURCES[table]
        conditions, params = where(plan, scope, table, alias, None)
        score, score_params = scan_score(plan, weights)
        sql = (
            f"SELECT {columns}, {score} AS score FROM {first} {joins} WHERE {conditions} "
            "ORDER BY score, a.published DESC, a.url LIMIT :limit"
        )
        return self.tuples(sql, {**params, **score_params, "limit": limit})

    def check_expression(self, expression: str) -> None:
        """Raise sqlite3.OperationalError (FTS5's message) when ``expression`` is no FTS5 query
        the trigram indexes accept: tried on an empty in-memory table with their columns, so a
        typo is told from a fault of the archive."""
        conn = sqlite3.connect(":memory:")
        try:
            conn.execute("CREATE VIRTUAL TABLE q USING fts5(title, body, text, tokenize='trigram')")
            conn.execute("SELECT rowid FROM q WHERE q MATCH ?", [expression]).fetchall()
        finally:
            conn.close()

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

    # -- what the indexes hold (benchmarks/search_bench.py, docs/research.md) ----------------
    def count_matches(self, index: str, match: str) -> int:
        """Rows of ``index`` (one of the full-text indexes) matching ``match``."""
        if index not in INDEXES:
            raise ValueError(f"not a full-text index: {index}")
        return self.one(f"SELECT count(*) FROM {index} WHERE {index} MATCH :match", {"match": match})

    def matched_forms(self, term: str, sample: int = 2000) -> dict[str, int]:
        """The words the word index matched for ``term`` in the first ``sample`` matching
        articles, with how many of them hold each, most first: which forms stemming brings in."""
        from npi_crawler.archive.searchindex import _folded

        phrase = '"' + term.replace('"', '""') + '"'
        rows = self.conn.execute(
            "SELECT a.title || ' ' || a.body FROM articles_words JOIN articles a ON a.rowid = articles_words.rowid "
            "WHERE articles_words MATCH :match LIMIT :sample",
            {"match": phrase, "sample": sample},
        )
        texts = [_folded(text or "") for (text,) in rows]
        forms: dict[str, int] = {}
        for text, spans in zip(texts, word_spans(texts, [phrase]), strict=True):
            for form in {text[start:end].lower() for start, end in spans}:
                forms[form] = forms.get(form, 0) + 1
        return dict(sorted(forms.items(), key=lambda kv: (-kv[1], kv[0])))

    def index_sizes(self) -> dict[str, int]:
        """Bytes of each full-text index (its shadow tables), by name; empty when this SQLite has
        no dbstat table."""
        try:
            rows = self.conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall()
        except sqlite3.OperationalError:  # SQLite built without SQLITE_ENABLE_DBSTAT_VTAB
            return {}
        sizes = dict.fromkeys(INDEXES, 0)
        for table, size in rows:
            for name in INDEXES:
                if table.startswith(name + "_"):
                    sizes[name] += size
        return sizes


def word_spans(folded_texts: list[str], phrases: list[str]) -> list[list[tuple[int, int]]]:
    """Where the word index's ``phrases`` (FTS5 phrases, any of them) occur in each folded text:
    (start, end) offsets of every matched word, stemmed forms included, as the word index
    matches them (same tokenizer, same word view: an in-memory FTS5 table of these texts)."""
    if not folded_texts or not phrases:
        return [[] for _ in folded_texts]
    db = sqlite3.connect(":memory:")
    try:
        db.execute(f"CREATE VIRTUAL TABLE t USING fts5(x, tokenize='{WORD_TOKENIZER}')")
        db.executemany(
            "INSERT INTO t (rowid, x) VALUES (?, ?)", ((i, word_view(s)) for i, s in enumerate(folded_texts))
        )
        marked = dict(
            db.execute(
                "SELECT rowid, highlight(t, 0, char(1), char(2)) FROM t WHERE t MATCH ?",
                [" OR ".join(phrases)],
            )
        )
    finally:
        db.close()
    return [_marks(marked.get(i, "")) for i in range(len(folded_texts))]


def _marks(marked: str) -> list[tuple[int, int]]:
    """(start, end) in the unmarked text of each \\x01...\\x02 span of ``marked``."""
    spans, removed = [], 0
    for m in re.finditer("\x01([^\x02]*)\x02", marked):
        start = m.start() - removed
        spans.append((start, start + len(m.group(1))))
        removed += 2
    return spans
