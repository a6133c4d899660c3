"""How many articles a search matches (issue 22), and the articles its filters keep.

A count stops at a bound (``count_hits``' ``cap`` + 1: research/search.py says "1,000+" past it):
an exact count of a common word with a filter read the article of every match, 60-130 ms on
100,000 articles, more than the search. Below the bound it is exact.

Filters that keep few articles are listed first (``scope``) through an index: an author's
articles through the index of author names (``015_author_names``) and the experts' pages, a date
range through ``articles_live``; the ranked queries and the counts then pass over the index rows
of other articles without reading them. Filters that keep many articles are checked row by row,
and then a count meets its bound after reading few rows.
"""

from __future__ import annotations

import json
from typing import Any

from npi_crawler.archive.articles import article_filters
from npi_crawler.archive.db import ArchiveBase
from npi_crawler.archive.searchplan import (
    FILTERS,
    REMOVED,
    Plan,
    Scope,
    kept_probe,
    narrowed,
    probes,
    scans,
    where,
)

# At most this many articles are listed for a scope: listing costs 0.2-1.5 us an article (an
# author's through two indexes and the article's row), a filter checked row by row 1-5 us a
# matching row, and a count with its bound reads about cap / (share of articles kept) rows.
KEPT_MOST = 10_000
# The author names of the archive, one index seek each (a loose scan of authors_name).
_NAMES = (
    "WITH RECURSIVE names(n) AS (SELECT min(name) FROM authors UNION ALL "
    "SELECT (SELECT min(name) FROM authors WHERE name > n) FROM names WHERE n IS NOT NULL)"
)
# The articles by an author whose name holds the pattern, as listed or on the expert's page:
# what article_filters' author condition keeps, read through indexes.
_BY_AUTHOR = (
    f"{_NAMES}, by_author(url) AS (SELECT au.article_url FROM names CROSS JOIN authors au ON au.name = names.n "
    "WHERE replace(names.n, ' ', '') LIKE :f_author ESCAPE '\\' UNION SELECT au.article_url FROM experts e "
    "CROSS JOIN authors au ON au.profile_url = e.url WHERE replace(e.name, ' ', '') LIKE :f_author ESCAPE '\\') "
)


class HitCounts(ArchiveBase):
    def scope(self, filters: dict[str, Any]) -> Scope:
        """The filters of a search, with the articles they keep listed when at most KEPT_MOST
        (see the module's notes)."""
        source = self._kept_source(filters)
        if source is None:
            return Scope(filters)
        sql, params, exact = source
        rows = self.tuples(f"{sql} LIMIT :most", {**params, "most": KEPT_MOST + 1})
        if len(rows) > KEPT_MOST:
            return Scope(filters)
        return Scope(filters, json.dumps([r for (r,) in rows]), exact=exact)

    def _kept_source(self, filters: dict[str, Any]) -> tuple[str, dict[str, Any], bool] | None:
        """SQL listing the rowids of live articles ``filters`` keep, read from indexes alone:
        an author's (through the names and the experts' pages), else those of the dates and
        language (``articles_live``); whether every filter is applied (else the others are
        checked row by row); None when no index narrows."""
        given = {k for k in FILTERS if filters.get(k)}
        if filters.get("author") is not None and self._indexed("authors_name"):
            _, params = article_filters(author=filters["author"])
            # A lookup per URL: as a join, SQLite first builds a Bloom filter over every
            # article's URL (100,000 entries: 2.4x the time of 5,400 lookups).
            sql = (
                f"{_BY_AUTHOR}, ids(r) AS MATERIALIZED (SELECT (SELECT rowid FROM articles WHERE url = by_author.url) "
                f"FROM by_author) SELECT r FROM ids WHERE r IS NOT NULL AND r NOT IN ({REMOVED})"
            )
            return sql, params, given == {"author"}
        if not given & {"since", "until"}:
            return None  # a language or a section keeps a sixth of the articles or more
        conditions, params = article_filters(
            langs=filters.get("langs"), since=filters.get("since"), until=filters.get("until")
        )
        if filters.get("until"):
            # What the until condition keeps (a prefix compared), as a range the index can seek.
            conditions.append("a.published <= :f_until_hi")
            params["f_until_hi"] = filters["until"] + "\U0010ffff"
        sql = f"SELECT a.rowid FROM articles a INDEXED BY articles_live WHERE {' AND '.join(conditions)}"
        return sql, params, given <= {"since", "until", "langs"}

    def _indexed(self, name: str) -> bool:
        return bool(
            self.one("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = :name", {"name": name})
        )

    def count_hits(self, plan: Plan, scope: Scope, *, cap: int, text: bool = True, pdfs: bool = True) -> int:
        """How many articles (filters applied) match ``plan`` in their own text or through a
        linked PDF: what a search found in all, before its limit, counted up to ``cap`` + 1 (more
        than ``cap``). ``text``/``pdfs`` False: that side cannot match (an --fts column filter
        only one kind of index has)."""
        bound = cap + 1
        found = self._count_text(plan, scope, bound) if text else 0
        if pdfs and found < bound:
            found += self._count_pdf_only(plan, scope, bound - found, text=text)
        return min(found, bound)

    def _bounded(self, sql: str, params: dict[str, Any], bound: int) -> int:
        return self.one(f"SELECT count(*) FROM ({sql} LIMIT :bound)", {**params, "bound": bound})

    def _count_text(self, plan: Plan, scope: Scope, bound: int) -> int:
        if plan.ranked is None:  # only scan terms: every article is read anyway
            conditions, params = where(plan, scope, "articles", "a", None)
            return self._bounded(f"SELECT 1 FROM articles a WHERE {conditions}", params, bound)
        index = f"articles_{plan.ranked}"
        params = {"match": plan.match(plan.ranked)}
        if not narrowed(plan, scope, "articles"):
            # In the indexes alone, without reading an article; the few removed ones left out.
            index_sql, more = probes(plan, "articles", index, skip=plan.ranked)
            required = [f"{index} MATCH :match", *index_sql, *kept_probe(scope, index)]
            sql = f"SELECT 1 FROM {index} WHERE {' AND '.join(required)} AND +{index}.rowid NOT IN ({REMOVED})"
            return self._bounded(sql, {**params, **more, "kept": scope.kept}, bound)
        conditions, more = where(plan, scope, "articles", "a", plan.ranked, kept_on=index)
        sql = f"SELECT 1 FROM {index} CROSS JOIN articles a ON a.rowid = {index}.rowid WHERE {index} MATCH :match AND {conditions}"
        return self._bounded(sql, {**params, **more}, bound)

    def _count_pdf_only(self, plan: Plan, scope: Scope, bound: int, *, text: bool) -> int:
        """Articles matching only through a linked PDF (with ``text``: not in their own text),
        up to ``bound``."""
        if plan.ranked is None:
            pdf_where, params = where(plan, scope, "pdf_texts", "t", None)
            source = "pdf_texts t"
        else:
            index = f"pdf_texts_{plan.ranked}"
            pdf_where, params = where(plan, scope, "pdf_texts", "t", plan.ranked)
            pdf_where = f"{index} MATCH :pdf_match AND {pdf_where}"
            params["pdf_match"] = plan.match(plan.ranked)
            source = f"{index} CROSS JOIN pdf_texts t ON t.rowid = {index}.rowid"
        linking = (
            f"SELECT DISTINCT a.rowid AS r FROM {source} JOIN pdfs p ON p.url = t.url "
            f"JOIN articles a ON a.url = p.article_url WHERE {pdf_where}"
        )
        if not text:
            return self._bounded(linking, params, bound)
        if plan.ranked is None or plan.scan:
            index_sql, index_params = probes(plan, "articles", "a")
            scan_sql, scan_params = scans(plan, "articles", "a")
            sql = f"SELECT 1 FROM articles a WHERE a.rowid IN ({linking}) AND NOT ({' AND '.join(index_sql + scan_sql)})"
            return self._bounded(sql, {**params, **index_params, **scan_params}, bound)
        # The articles linking a matching PDF (few), less those of them whose own text matches:
        # the text index's query is run once over the few (and not at all when none links one).
        index = f"articles_{plan.ranked}"
        index_sql, text_params = probes(plan, "articles", index, skip=plan.ranked)
        both = " AND ".join(
            [f"{index} MATCH :text_match", *index_sql, f"+{index}.rowid IN (SELECT r FROM linking)"]
        )
        sql = (
            f"WITH linking AS MATERIALIZED ({linking}) SELECT count(*) FROM (SELECT 1 FROM linking "
            f"WHERE r NOT IN (SELECT rowid FROM {index} WHERE {both}) LIMIT :bound)"
        )
        return self.one(sql, {**params, **text_params, "text_match": plan.match(plan.ranked), "bound": bound})
