"""Full-text search over the archive: article titles and bodies, and the text of linked PDFs.

One text for search and watcher rules (issue 22): the indexes hold the text folded as rules fold
it (``matching.fold``: NFKC, so ＡＩ is AI and ｶﾀｶﾅ is カタカナ; a PDF's line break inside a
Japanese word removed, so 半導 体 is 半導体), and every term of a query is folded the same way,
then goes to the index that finds it as a rule matches it (archive/searchindex.py):

- **English words** (a term without Japanese script, ``matching.is_cjk``): the word index, stemmed
  (*sanction* finds *sanctions*, *sanctioned*), whole (*ally* never matches inside *finally*, *AI*
  never inside *Taiwan*; Japanese characters around a word are word boundaries: *AI* in 生成AIの).
- **Japanese terms** of three or more characters: the trigram index, any substring (半導体 inside
  次世代半導体産業, AI半導体).
- **Japanese terms of two characters** (憲法, 外交): the bigram index, where each pair of adjacent
  Japanese characters is one token.
- Anything shorter, or a two-character term mixing scripts (米, A党): a scan of the folded text,
  which reads every article (the only slow kind).

So every article a rule matches for a term is a search hit for that term. A query of words the
word index finds nothing for (a fragment: *semicon*) runs again with its words as substrings.

Ranking: matches in the article itself first, by bm25 (title weighted 10 to 1), those whose title
holds a term above all others; then articles matching only through a linked PDF. ``search``
also counts every match (``Hits.total``), so a cut list says "20 of 31".

The user's words are quoted before they reach FTS5, so ``NOT``, ``-``, ``*``, ``:`` or a stray
quote are searched for as text; ``raw=True`` passes an FTS5 expression to the trigram indexes
(after NFKC, its quoted phrases folded). An expression FTS5 refuses, an empty query or one longer
than ``MAX_QUERY_CHARS`` / ``MAX_TERMS`` is one ``SearchError`` line saying the query is not
valid (exit 2), never mistaken for a fault of the archive.
"""

from __future__ import annotations

import math
import re
import sqlite3
import unicodedata
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from npi_crawler.archive import Archive
from npi_crawler.archive.fulltext import Plan, Scope, word_spans
from npi_crawler.errors import SearchError
from npi_crawler.site.text import CJK, fold, is_cjk

MIN_FTS_CHARS = 3  # the trigram tokenizer's smallest match
SNIPPET_CHARS = 70  # characters of context on each side of the first match
# A query is a few words: each term adds a phrase to every ranked row's bm25 and to every
# snippet, so a pasted page (12 KB: 1,700 words) took 26 s on 1,000 articles.
MAX_QUERY_CHARS = 1000
MAX_TERMS = 32
# bm25 saturates: a term adds at most (k1 + 1) * idf, idf < ln(10^9) for any archive. This bonus
# per term puts every title match above every other match, so scores follow the order.
TITLE_BONUS = 2.2 * math.log(1e9)
# Matches are counted up to this many (or the limit, if larger): exact below, "1,000+" past it.
# Counting every match of a common word with a filter read every match's article: 85 ms for a
# phrase in 19,000 articles, more than the search (docs/performance.md).
COUNT_CAP = 1000


@dataclass
class Query:
    terms: list[str]  # every word or "quoted phrase", folded
    expression: str | None = None  # --fts: the FTS5 expression


@dataclass
class Hit:
    url: str
    lang: str
    title: str
    published: str | None
    sections: list[str] = field(default_factory=list)
    snippet: str = ""
    match: str = "text"  # "text": in the article itself; "pdf": only in a PDF it links
    pdf_url: str | None = None
    score: float = 0.0  # relevance, higher is better (see ``relevance``)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Hits(list):
    """The hits shown (a list of ``Hit``), ``total``: how many articles match in all, and
    ``exact``: False when more than ``total`` match (the count stopped there)."""

    def __init__(self, hits: Iterable[Hit] = (), total: int = 0, *, exact: bool = True):
        super().__init__(hits)
        self.total = total
        self.exact = exact

    def total_text(self) -> str:
        """The total as a person reads it: ``31`` or ``1,000+``."""
        return f"{self.total:,}" + ("" if self.exact else "+")


def _counted(archive: Archive, plan: Plan, scope: Scope, limit: int, **sides: bool) -> tuple[int, bool]:
    """(total, exact): the matches counted up to the cap (``COUNT_CAP`` or ``limit``)."""
    cap = max(COUNT_CAP, limit)
    found = archive.count_hits(plan, scope, cap=cap, **sides)
    return min(found, cap), found <= cap


_TOKEN = re.compile(r'"([^"]*)"?|(\S+)')
_FTS_OPERATORS = {"AND", "OR", "NOT", "NEAR"}
# The words of an FTS5 expression, for the snippet: "phrases" and bare words; column filters
# (``title:``, ``{title body}:``) are not words of the text, so they match neither group.
_WORD_CHARS = r'[^\s"(){}*^:,+-]'
_RAW_TERM = re.compile(rf'"([^"]+)"|\{{[^}}]*\}}\s*:|{_WORD_CHARS}+\s*:|({_WORD_CHARS}+)')
_QUOTED = re.compile(r'"((?:[^"]|"")*)"')


def _invalid(why: str) -> SearchError:
    return SearchError(f"the query is not valid: {why}")


def parse_query(text: str, *, raw: bool = False) -> Query:
    """Split ``text`` into words and "quoted phrases", folded; every one must match (AND)."""
    if len(text) > MAX_QUERY_CHARS:
        raise _invalid(f"{len(text):,} characters; at most {MAX_QUERY_CHARS:,} are searched; shorten it")
    if raw:
        expression = _QUOTED.sub(lambda m: '"' + fold(m[1]) + '"', unicodedata.normalize("NFKC", text))
        words = [fold(a or b) for a, b in _RAW_TERM.findall(expression)]
        terms = [w for w in words if w and w not in _FTS_OPERATORS]
    else:
        expression = None
        terms = [fold(m[1] if m[1] is not None else m[2]) for m in _TOKEN.finditer(text)]
        terms = [t for t in dict.fromkeys(terms) if t]
    if not terms and not (expression or "").strip():
        raise _invalid("it is empty; give at least one word")
    if len(terms) > MAX_TERMS:
        raise _invalid(f"{len(terms):,} words and phrases; at most {MAX_TERMS} are searched together; shorten it")
    return Query(terms=terms, expression=expression)


def kind_of(term: str, *, substrings: bool = False) -> str:
    """The index that finds a folded term: ``words``, ``fts`` (trigrams), ``bigrams``, or ``scan``
    (none can). ``substrings``: English words as substrings too (the fallback for fragments)."""
    if not is_cjk(term):
        return "fts" if substrings and len(term) >= MIN_FTS_CHARS else "words"
    if len(term) >= MIN_FTS_CHARS:
        return "fts"
    return "bigrams" if len(term) == 2 and all(CJK.match(c) for c in term) else "scan"


def plan_for(query: Query, *, substrings: bool = False) -> Plan:
    """Which index finds each term, and which one ranks (trigrams, else bigrams, else words:
    the index of the rarer, longer terms narrows first)."""
    if query.expression is not None:
        return Plan(phrases={"fts": ()}, ranked="fts", expression=query.expression)
    phrases: dict[str, list[str]] = {}
    scan = []
    for term in query.terms:
        kind = kind_of(term, substrings=substrings)
        if kind == "scan":
            scan.append(term)
        else:
            phrases.setdefault(kind, []).append('"' + term.replace('"', '""') + '"')
    ranked = next((k for k in ("fts", "bigrams", "words") if k in phrases), None)
    return Plan(phrases={k: tuple(v) for k, v in phrases.items()}, ranked=ranked, scan=tuple(scan))


def search(
    archive: Archive,
    text: str,
    *,
    langs: Iterable[str] = (),
    sections: Iterable[str] = (),
    since: str | None = None,
    until: str | None = None,
    limit: int = 20,
    raw: bool = False,
    author: str | None = None,
) -> Hits:
    """Articles matching ``text``, best first, at most ``limit``, with the total in ``total``
    (see the module's notes). ``author``: only articles by an author whose name holds it."""
    query = parse_query(text, raw=raw)
    filters = {"langs": langs, "sections": sections, "since": since, "until": until, "author": author}
    scope = archive.scope(filters)
    if raw:
        return _raw_search(archive, query, scope, limit)
    plan = plan_for(query)
    hits = _run(archive, plan, query, scope, limit)
    if not hits and set(plan.phrases) == {"words"} and not plan.scan:
        # Nothing as words: perhaps a fragment (semicon). Substrings are the trigram index's job.
        hits = _run(archive, plan_for(query, substrings=True), query, scope, limit)
    return hits


def _run(archive: Archive, plan: Plan, query: Query, scope: Scope, limit: int) -> Hits:
    """Text hits (title matches first), then PDF-only hits, hydrated, with the total."""
    if plan.ranked is None:
        found = {url: rank for url, _, rank in archive.text_hits(plan, scope, limit)}
    else:
        bonus = len(plan.phrases[plan.ranked]) * TITLE_BONUS
        found = {url: rank - bonus for url, _, rank in archive.text_hits(plan, scope, limit, in_title=True)}
        if len(found) < limit:
            body = archive.text_hits(plan, scope, limit - len(found), in_title=False)
            found.update((url, rank) for url, _, rank in body)
    ranked: list[tuple[str, str | None, float, str]] = [(url, None, rank, "text") for url, rank in found.items()]
    saturated = len(found) >= limit
    if not saturated:
        # Rows beyond the wanted hits: a PDF of an article already found, or a second PDF of one.
        asked = (limit - len(found)) * 2 + len(found)
        rows = archive.pdf_hits(plan, scope, asked)
        for url, pdf_url, rank in rows:
            if url not in found and len(ranked) < limit:
                found[url] = rank
                ranked.append((url, pdf_url, rank, "pdf"))
        saturated = len(ranked) >= limit or len(rows) >= asked
    total, exact = _counted(archive, plan, scope, limit) if saturated else (len(ranked), True)
    return Hits(_hydrate(archive, ranked, query, plan), total, exact=exact)


def _raw_search(archive: Archive, query: Query, scope: Scope, limit: int) -> Hits:
    """An FTS5 expression against both trigram indexes. A column filter names the columns of
    one index (``title:``/``body:`` for articles, ``text:`` for PDFs): the other index, which has
    no such column, is left out. An expression FTS5 refuses is one ``SearchError``."""
    assert query.expression is not None  # a raw query is its expression
    try:
        archive.check_expression(query.expression)
    except sqlite3.OperationalError as exc:
        reason = str(exc).removeprefix("fts5: ")
        raise _invalid(f"{reason} in the FTS5 expression; leave out --fts to search the words as typed") from None
    plan = plan_for(query)
    sides: dict[str, list[Any] | None] = {}
    for side, run in (("text", archive.text_hits), ("pdf", archive.pdf_hits)):
        try:
            sides[side] = run(plan, scope, limit if side == "text" else limit * 2)
        except sqlite3.OperationalError as exc:
            if "no such column" not in str(exc):
                raise
            sides[side] = None  # a column this kind of index does not have
    text_hits, pdf_hits = sides["text"] or [], sides["pdf"] or []
    seen = {url for url, *_ in text_hits}
    ranked: list[tuple[str, str | None, float, str]] = [(url, None, rank, "text") for url, _, rank in text_hits]
    for url, pdf_url, rank in pdf_hits:
        if url not in seen and len(ranked) < limit:
            seen.add(url)
            ranked.append((url, pdf_url, rank, "pdf"))
    total, exact = _counted(
        archive, plan, scope, limit, text=sides["text"] is not None, pdfs=sides["pdf"] is not None
    )
    return Hits(_hydrate(archive, ranked, query, plan), total, exact=exact)


def _hydrate(
    archive: Archive, ranked: list[tuple[str, str | None, float, str]], query: Query, plan: Plan
) -> list[Hit]:
    """Hits from (url, pdf url, rank, match) rows, each with a snippet of its folded text."""
    rows = archive.hit_rows(url for url, *_ in ranked)
    texts = []
    for url, pdf_url, _, match in ranked:
        row = rows[url]
        body = archive.pdf_text(pdf_url) if match == "pdf" and pdf_url else row["body"]
        texts.append((fold(row["title"] or ""), fold(body or "")))
    snippets = _snippets(texts, query, plan)
    hits = []
    for (url, pdf_url, score, match), shown in zip(ranked, snippets, strict=True):
        row = rows[url]
        hits.append(
            Hit(
                url=url,
                lang=row["lang"],
                title=row["title"],
                published=row["published"],
                sections=row["sections"].split(",") if row["sections"] else [],
                snippet=shown,
                match=match,
                pdf_url=pdf_url,
                score=relevance(score),
            )
        )
    return hits


def _snippets(texts: list[tuple[str, str]], query: Query, plan: Plan) -> list[str]:
    """One snippet per (folded title, folded body or PDF text): around the first match in the
    body (in the title when only the title holds one), every term in view marked."""
    words = list(plan.phrases.get("words", ())) if query.expression is None else []
    substrings = [t for t in query.terms if words == [] or kind_of(t) != "words"]
    bodies, titles = [b for _, b in texts], [t for t, _ in texts]
    body_words, title_words = word_spans(bodies, words), word_spans(titles, words)
    out = []
    for i, (title, body) in enumerate(texts):
        spans = body_words[i] + _substring_spans(body, substrings)
        if spans or not title:
            out.append(snippet(body, spans))
        else:
            out.append(snippet(title, title_words[i] + _substring_spans(title, substrings)))
    return out


def _substring_spans(text: str, terms: list[str]) -> list[tuple[int, int]]:
    """Every occurrence of each term in ``text``, letters compared case-insensitively."""
    if not terms or not text:
        return []
    pattern = "|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True))
    return [m.span() for m in re.finditer(pattern, text, re.IGNORECASE)]


def relevance(rank: float) -> float:
    """A hit's score from its SQL rank (lower ranks first: bm25 is negative, the scan negates
    its counts): higher is better, 4 decimals, never ``-0.0``. bm25 gives a term found in most
    documents of an index almost nothing (its IDF is floored), so such hits score 0.0. Scores
    compare hits of one kind (``match``) only: the article and PDF indexes rank separately."""
    return round(-rank, 4) + 0.0


def snippet(text: str, spans: list[tuple[int, int]], width: int = SNIPPET_CHARS) -> str:
    """A one-line window of ``text`` around its first span, every span in view marked [like this]."""
    spans = sorted(set(spans))
    if not spans:
        return text[: 2 * width] + ("…" if len(text) > 2 * width else "")
    start = spans[0][0]
    lo, hi = max(0, start - width), min(len(text), start + width)
    parts, at = [], lo
    for s, e in spans:
        if s < at or e > hi:
            continue  # overlapping an earlier mark, or not wholly in view
        parts += [text[at:s], "[", text[s:e], "]"]
        at = e
    parts.append(text[at:hi])
    return ("…" if lo > 0 else "") + "".join(parts) + ("…" if hi < len(text) else "")
