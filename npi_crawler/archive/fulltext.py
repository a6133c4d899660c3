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

import re
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from npi_crawler.archive.articles import article_filters
from npi_crawler.archive.db import ArchiveBase
from npi_crawler.archive.searchindex import INDEXES, TITLE_WEIGHT
from npi_crawler.site.text import WORD_TOKENIZER, word_view

KINDS = ("fts", "words", "bigrams")  # articles_<kind>, pdf_texts_<kind>


@dataclass(frozen=True)
class Plan:
    """A query as the indexes see it. ``phrases``: kind -> FTS5 phrases, every one required;
    ``ranked``: the kind whose bm25 orders the hits (None: only ``scan`` terms, ordered by how
    often they occur); ``scan``: folded terms no index can find; ``expression``: an FTS5
    expression as typed (--fts), the trigram indexes' whole query."""

    phrases: dict[str, tuple[str, ...]] = field(default_factory=dict)
    ranked: str | None = None
    scan: tuple[str, ...] = ()
    expression: str | None = None

    def match(self, kind: str) -> str:
        if kind == "fts" and self.expression is not None:
            return self.expression
        return " AND ".join(self.phrases[kind])


# table -> (its alias, the columns a hit is, the table, the joins to the article, scan weights)
_SOURCES = {
    "articles": ("a", "a.url, a.rowid", "articles a", "", [("a.title", TITLE_WEIGHT), ("a.body", 1.0)]),
    "pdf_texts": (
        "t",
        "a.url, t.url",
        "pdf_texts t",
        "JOIN pdfs p ON p.url = t.url JOIN articles a ON a.url = p.article_url",
        [("t.text", 1.0)],
    ),
}


def _probe(table: str, kind: str, alias: str, key: str) -> str:
    # Listed once per statement (SQLite materializes an uncorrelated IN): a probe per candidate
    # row would start an FTS5 query for each, 10-20 us, for every row the ranked index yields.
    # The unary + keeps SQLite from handing this list to the other FTS5 table as rowids to look up
    # one by one (one MATCH per rowid: 1.7 s instead of 9 ms for 憲法 半導体).
    index = f"{table}_{kind}"
    return f"+{alias}.rowid IN (SELECT rowid FROM {index} WHERE {index} MATCH :{key})"


def _conditions(plan: Plan, table: str, alias: str, *, skip: str | None = None) -> tuple[list[str], dict[str, Any]]:
    """SQL (over ``alias``, a row of ``table``) requiring every index of ``plan`` but ``skip``,
    and every scan term in one of the row's columns."""
    sql, params = [], {}
    for kind in plan.phrases:
        if kind != skip:
            key = f"{alias}_{kind}"
            sql.append(_probe(table, kind, alias, key))
            params[key] = plan.match(kind)
    columns = INDEXES[f"{table}_fts"][1]
    for i, term in enumerate(plan.scan):
        key = f"{alias}_scan{i}"
        sql.append("(" + " + ".join(f"npi_occurrences({alias}.{c}, :{key})" for c in columns) + ") > 0")
        params[key] = term
    return sql, params


def _where(plan: Plan, filters: dict[str, Any], table: str, alias: str, skip: str | None) -> tuple[str, dict[str, Any]]:
    where, params = article_filters(**filters)
    more, more_params = _conditions(plan, table, alias, skip=skip)
    return " AND ".join(where + more) or "1", {**params, **more_params}


def _title_match(plan: Plan, ranked: str, in_title: bool | None) -> str:
    """The ranked index's MATCH, narrowed to articles whose title holds one of its phrases
    (``in_title``) or to the others."""
    match = plan.match(ranked)
    if in_title is None:
        return match
    title = "{title} : (" + " OR ".join(plan.phrases[ranked]) + ")"
    return f"({match}) {'AND' if in_title else 'NOT'} {title}"


def _scan_score(plan: Plan, columns: list[tuple[str, float]]) -> tuple[str, dict[str, Any]]:
    """SQL: minus the weighted occurrences of the scan terms (lower ranks first, as bm25)."""
    parts, params = [], {}
    for i, term in enumerate(plan.scan):
        params[f"score{i}"] = term
        parts += [f"{weight} * npi_occurrences({column}, :score{i})" for column, weight in columns]
    return "-(" + " + ".join(parts) + ")", params


class FullText(ArchiveBase):
    def text_hits(
        self, plan: Plan, filters: dict[str, Any], limit: int, *, in_title: bool | None = None
    ) -> list[tuple[str, int, float]]:
        """(article URL, rowid, rank) of the articles whose title and body match ``plan``, best
        first (lower is better). ``in_title``: only those whose title holds a phrase of the
        ranked index (True) or only the others (False)."""
        match = _title_match(plan, plan.ranked, in_title) if plan.ranked else ""
        return self._ranked_rows("articles", plan, filters, limit, match)

    def pdf_hits(self, plan: Plan, filters: dict[str, Any], limit: int) -> list[tuple[str, str, float]]:
        """(article URL, PDF URL, rank) of the linked PDFs whose text matches ``plan``."""
        return self._ranked_rows("pdf_texts", plan, filters, limit, plan.match(plan.ranked) if plan.ranked else "")

    def _ranked_rows(self, table: str, plan: Plan, filters: dict[str, Any], limit: int, match: str) -> list[tuple]:
        """Rows of ``table`` (articles, or the PDF texts with the article linking each) matching
        ``plan``, best first: ranked inside the index (``match`` its MATCH), or by the weighted
        occurrences of the scan terms when no index can."""
        alias, columns, first, joins, weights = _SOURCES[table]
        if plan.ranked is None:
            conditions, params = _where(plan, filters, table, alias, None)
            score, score_params = _scan_score(plan, weights)
            sql = (
                f"SELECT {columns}, {score} AS score FROM {first} {joins} WHERE {conditions} "
                "ORDER BY score, a.published DESC LIMIT :limit"
            )
            return list(self.conn.execute(sql, {**params, **score_params, "limit": limit}))
        index = f"{table}_{plan.ranked}"
        conditions, params = _where(plan, filters, table, alias, plan.ranked)
        sql = (
            f"SELECT {columns}, {index}.rank FROM {index} JOIN {first} ON {alias}.rowid = {index}.rowid {joins} "
            f"WHERE {index} MATCH :match AND {conditions} ORDER BY {index}.rank LIMIT :limit"
        )
        return list(self.conn.execute(sql, {**params, "match": match, "limit": limit}))

    def count_hits(self, plan: Plan, filters: dict[str, Any], *, text: bool = True, pdfs: bool = True) -> int:
        """How many articles (filters applied) match ``plan`` in their own text or through a
        linked PDF: what a search found in all, before its limit. ``text``/``pdfs`` False: that
        side cannot match (an --fts column filter only one kind of index has)."""
        return (self._count_text(plan, filters) if text else 0) + (
            self._count_pdf_only(plan, filters, text=text) if pdfs else 0
        )

    def _count_text(self, plan: Plan, filters: dict[str, Any]) -> int:
        if plan.ranked is None:  # only scan terms: every article is read anyway
            scan, scan_params = _where(plan, filters, "articles", "a", None)
            return self.one(f"SELECT count(*) FROM articles a WHERE {scan}", scan_params)
        index = f"articles_{plan.ranked}"
        params = {"match": plan.match(plan.ranked)}
        if not plan.scan and not filters.get("sections") and filters.get("author") is None:
            # Counted in the indexes, without reading an article: the 31,000 rows a common word
            # matches cost more than the search. Language and dates come from an index of the
            # live articles (009), the few removed ones from another.
            if any(filters.get(k) for k in ("langs", "since", "until")):
                where, filter_params = article_filters(**filters)
                more, more_params = _conditions(plan, "articles", "a")
                sql = f"SELECT count(*) FROM articles a INDEXED BY articles_live WHERE {' AND '.join(where + more)}"
                return self.one(sql, {**filter_params, **more_params})
            more, more_params = _conditions(plan, "articles", index, skip=plan.ranked)
            live = f"+{index}.rowid NOT IN (SELECT rowid FROM articles WHERE removed_at IS NOT NULL)"
            condition = " AND ".join([f"{index} MATCH :match", *more, live])
            return self.one(f"SELECT count(*) FROM {index} WHERE {condition}", {**params, **more_params})
        joined, more_params = _where(plan, filters, "articles", "a", plan.ranked)
        sql = f"SELECT count(*) FROM {index} JOIN articles a ON a.rowid = {index}.rowid WHERE {index} MATCH :match AND {joined}"
        return self.one(sql, {**params, **more_params})

    def _count_pdf_only(self, plan: Plan, filters: dict[str, Any], *, text: bool) -> int:
        """Articles matching only through a linked PDF (with ``text``: not in their own text)."""
        if plan.ranked is None:
            pdf_where, params = _where(plan, filters, "pdf_texts", "t", None)
            source = "pdf_texts t"
        else:
            index = f"pdf_texts_{plan.ranked}"
            pdf_where, params = _where(plan, filters, "pdf_texts", "t", plan.ranked)
            pdf_where = f"{index} MATCH :pdf_match AND {pdf_where}"
            params["pdf_match"] = plan.match(plan.ranked)
            source = f"{index} JOIN pdf_texts t ON t.rowid = {index}.rowid"
        linking = (
            f"SELECT DISTINCT a.rowid FROM {source} JOIN pdfs p ON p.url = t.url "
            f"JOIN articles a ON a.url = p.article_url WHERE {pdf_where}"
        )
        if not text:
            return self.one(f"SELECT count(*) FROM ({linking})", params)
        if plan.ranked is None or plan.scan:
            in_text, text_params = _conditions(plan, "articles", "a")
            return self.one(
                f"SELECT count(*) FROM articles a WHERE a.rowid IN ({linking}) AND NOT ({' AND '.join(in_text)})",
                {**params, **text_params},
            )
        # The articles linking a matching PDF (few), less those of them whose own text matches:
        # found by running the text index's query once over the few, not by listing every text
        # match (31,000 rowids for a common word: 10 ms).
        index = f"articles_{plan.ranked}"
        more, text_params = _conditions(plan, "articles", index, skip=plan.ranked)
        both = " AND ".join([f"{index} MATCH :text_match", *more, f"+{index}.rowid IN (SELECT r FROM linking)"])
        sql = (
            f"WITH linking(r) AS MATERIALIZED ({linking}) "
            f"SELECT (SELECT count(*) FROM linking) - (SELECT count(*) FROM {index} WHERE {both})"
        )
        return self.one(sql, {**params, **text_params, "text_match": plan.match(plan.ranked)})

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
        db.executemany("INSERT INTO t (rowid, x) VALUES (?, ?)", ((i, word_view(s)) for i, s in enumerate(folded_texts)))
        marked = dict(
            db.execute(
                "SELECT rowid, highlight(t, 0, char(1), char(2)) FROM t WHERE t MATCH ?", [" OR ".join(phrases)]
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
