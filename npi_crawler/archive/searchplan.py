"""What a search asks the full-text indexes (archive/searchindex.py), as SQL pieces: a ``Plan``
(the FTS5 phrases each index must match, the index that ranks, the terms no index can find) and
a ``Scope`` (the reader filters, and the articles they keep when those are few). The ranked
queries (archive/fulltext.py) and the counts (archive/hitcount.py) are built from these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from npi_crawler.archive.articles import article_filters
from npi_crawler.archive.searchindex import INDEXES, TITLE_WEIGHT

KINDS = ("fts", "words", "bigrams")  # articles_<kind>, pdf_texts_<kind>
FILTERS = ("langs", "sections", "since", "until", "author")  # article_filters' narrowing keywords
REMOVED = "SELECT rowid FROM articles WHERE removed_at IS NOT NULL"  # few: the partial index articles_removed

# table -> (its alias, the hit's columns, the table and the joins to its article, scan weights)
SOURCES = {
    "articles": ("a", "a.url, a.rowid", "articles a", "", [("a.title", TITLE_WEIGHT), ("a.body", 1.0)]),
    "pdf_texts": (
        "t",
        "a.url, t.url",
        "pdf_texts t",
        "JOIN pdfs p ON p.url = t.url JOIN articles a ON a.url = p.article_url",
        [("t.text", 1.0)],
    ),
}


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


@dataclass(frozen=True)
class Scope:
    """A search's reader filters (``article_filters``' keywords) and, when they keep few
    articles, the rowids of those (``kept``: a JSON array, of the live articles one filter or
    more keeps), listed once through an index for every query of the search: the index rows of
    other articles are then passed over before they are ranked or counted."""

    filters: dict[str, Any] = field(default_factory=dict)
    kept: str | None = None
    exact: bool = False  # kept holds exactly the articles the filters keep (else more: check them)

    @property
    def narrows(self) -> bool:
        return any(self.filters.get(k) for k in FILTERS)


def row_filters(scope: Scope) -> tuple[list[str], dict[str, Any]]:
    """SQL (over ``a``) for the scope's filters, checked row by row. ``removed_at`` lies after
    the body in the row, so reading it walks the body's overflow pages (about 10 us an article):
    the few removed articles are listed once instead (the partial index articles_removed)."""
    conditions, params = article_filters(**scope.filters)
    live = f"+a.rowid NOT IN ({REMOVED})"
    return [live if c == "a.removed_at IS NULL" else c for c in conditions], params


def kept_probe(scope: Scope, on: str) -> list[str]:
    """SQL (over ``on``'s rowid) keeping the scope's listed articles; none when not listed."""
    return [] if scope.kept is None else [f"+{on}.rowid IN (SELECT value FROM json_each(:kept))"]


def probe(table: str, kind: str, on: str, key: str) -> str:
    # Listed once per statement (SQLite materializes an uncorrelated IN): a probe per candidate
    # row would start an FTS5 query for each, 10-20 us, for every row the ranked index yields.
    # The unary + keeps SQLite from handing this list to the other FTS5 table as rowids to look up
    # one by one (one MATCH per rowid: 1.7 s instead of 9 ms for 憲法 半導体).
    index = f"{table}_{kind}"
    return f"+{on}.rowid IN (SELECT rowid FROM {index} WHERE {index} MATCH :{key})"


def probes(plan: Plan, table: str, on: str, *, skip: str | None = None) -> tuple[list[str], dict[str, Any]]:
    """SQL (over ``on``, a row of ``table`` or of one of its indexes) requiring every index of
    ``plan`` but ``skip``."""
    sql, params = [], {}
    for kind in plan.phrases:
        if kind != skip:
            key = f"{table}_{kind}"
            sql.append(probe(table, kind, on, key))
            params[key] = plan.match(kind)
    return sql, params


def scans(plan: Plan, table: str, alias: str) -> tuple[list[str], dict[str, Any]]:
    """SQL (over ``alias``, a row of ``table``) finding every scan term in one of its columns."""
    sql, params = [], {}
    columns = INDEXES[f"{table}_fts"][1]
    for i, term in enumerate(plan.scan):
        key = f"{alias}_scan{i}"
        sql.append("(" + " + ".join(f"npi_occurrences({alias}.{c}, :{key})" for c in columns) + ") > 0")
        params[key] = term
    return sql, params


def where(
    plan: Plan, scope: Scope, table: str, alias: str, skip: str | None, *, kept_on: str = "a"
) -> tuple[str, dict[str, Any]]:
    """SQL (over ``alias``, a row of ``table`` joined to its article ``a``): the filters, every
    index of ``plan`` but ``skip`` and every scan term; the scope's listed articles checked on
    ``kept_on``'s rowid (an index's: before its row is joined to the article)."""
    conditions, params = row_filters(scope)
    index_sql, index_params = probes(plan, table, alias, skip=skip)
    scan_sql, scan_params = scans(plan, table, alias)
    if scope.kept is not None:
        params["kept"] = scope.kept
    sql = kept_probe(scope, kept_on) + conditions + index_sql + scan_sql
    return " AND ".join(sql) or "1", {**params, **index_params, **scan_params}


def title_match(plan: Plan, ranked: str, in_title: bool | None) -> str:
    """The ranked index's MATCH, narrowed to articles whose title holds one of its phrases
    (``in_title``) or to the others."""
    match = plan.match(ranked)
    if in_title is None:
        return match
    title = "{title} : (" + " OR ".join(plan.phrases[ranked]) + ")"
    return f"({match}) {'AND' if in_title else 'NOT'} {title}"


def scan_score(plan: Plan, columns: list[tuple[str, float]]) -> tuple[str, dict[str, Any]]:
    """SQL: minus the weighted occurrences of the scan terms (lower ranks first, as bm25)."""
    parts, params = [], {}
    for i, term in enumerate(plan.scan):
        params[f"score{i}"] = term
        parts += [f"{weight} * npi_occurrences({column}, :score{i})" for column, weight in columns]
    return "-(" + " + ".join(parts) + ")", params


def narrowed(plan: Plan, scope: Scope, table: str) -> bool:
    """Whether rows of the ranked index may fail the rest of the query beyond the scope's listed
    articles (a filter checked row by row, a scan term, a PDF no live article links)."""
    return (
        table != "articles"
        or bool(plan.scan)
        or (scope.narrows and not (scope.kept is not None and scope.exact))
    )
