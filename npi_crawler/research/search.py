"""Full-text search over the archive: article titles and bodies, and the text of linked PDFs.

Two kinds of index, and ``search`` picks the one that fits the query:

- **English words** (``articles_words``, ``pdf_texts_words``: FTS5 ``porter unicode61``) when
  every term is in Latin script (*sanction*, *"supply chains"*, *AI*, *G7*): stemmed, so
  *sanction* finds *sanctions*, *sanctioned*, *sanctioning*; whole words, so *ally* never matches
  inside *finally* and *AI* never inside *Taiwan*. A query the word index finds nothing for (a
  fragment such as *semicon*) is run again through the trigram index, which finds substrings.
- **Trigrams** (``articles_fts``, ``pdf_texts_fts``: FTS5 ``trigram``) for any term in Japanese
  script or of digits only (2024 is part of 2024年), and for ``--fts``. Trigrams match any
  substring of three or more characters, so Japanese (no spaces between words) is searchable
  without a dictionary. A shorter term (憲法) cannot use a trigram index: it is matched with
  ``LIKE`` over the same text, as a filter on the indexed terms when there are any, or as a scan
  ranked by where and how often it occurs when there are none.

The user's words are quoted before they reach FTS5, so ``NOT``, ``-``, ``*``, ``:`` or a stray
quote are searched for as text instead of raising a syntax error; ``raw=True`` passes an FTS5
expression through unchanged to the trigram indexes and turns a syntax error into one
``SearchError`` line.
"""

from __future__ import annotations

import math
import re
import sqlite3
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from npi_crawler.archive import Archive
from npi_crawler.errors import SearchError
from npi_crawler.site.text import CJK_SYMBOLS, HANGUL, JAPANESE

MIN_FTS_CHARS = 3  # the trigram tokenizer's smallest match
SNIPPET_CHARS = 70  # characters of context on each side of the first match


@dataclass
class Query:
    terms: list[str]  # every word or "quoted phrase", as typed
    fts: str | None  # FTS5 expression over the terms of 3+ characters (None: no such term)
    short: list[str]  # terms of 1-2 characters, matched with LIKE


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


# Japanese script (with CJK punctuation) and Hangul: the trigram index's.
_CJK = re.compile(f"[{CJK_SYMBOLS}{JAPANESE}{HANGUL}]")
_LATIN_LETTER = re.compile(r"[A-Za-z\u00c0-\u024f]")
_TOKEN = re.compile(r'"([^"]*)"?|(\S+)')
_FTS_OPERATORS = {"AND", "OR", "NOT", "NEAR"}
_ASCII_WORD = re.compile(r"[A-Za-z0-9]+")
# The words of an FTS5 expression, for the snippet: "phrases" and bare words; column filters
# (``title:``, ``{title body}:``) are not words of the text, so they match neither group.
_WORD_CHARS = r'[^\s"(){}*^:,+-]'
_RAW_TERM = re.compile(rf'"([^"]+)"|\{{[^}}]*\}}\s*:|{_WORD_CHARS}+\s*:|({_WORD_CHARS}+)')


def parse_query(text: str, *, raw: bool = False) -> Query:
    """Split ``text`` into words and "quoted phrases"; every one must match (AND)."""
    if raw:
        if not text.strip():
            raise SearchError("the search query is empty; give at least one word")
        words = [a or b for a, b in _RAW_TERM.findall(text)]
        terms = [w for w in words if w and w not in _FTS_OPERATORS]
        return Query(terms=terms, fts=text, short=[])
    terms = [(m[1] if m[1] is not None else m[2]).strip() for m in _TOKEN.finditer(text)]
    terms = [t for t in terms if t]
    if not terms:
        raise SearchError("the search query is empty; give at least one word")
    long_terms = [t for t in terms if len(t) >= MIN_FTS_CHARS]
    fts = " ".join('"' + t.replace('"', '""') + '"' for t in long_terms) or None
    return Query(terms=terms, fts=fts, short=[t for t in terms if len(t) < MIN_FTS_CHARS])


def is_latin(term: str) -> bool:
    """A term the word index can find: a Latin letter in it and no Japanese script."""
    return bool(_LATIN_LETTER.search(term)) and not _CJK.search(term)


def index_for(query: Query, *, raw: bool = False) -> str:
    """``"words"`` (the English word index) when every term is in Latin script, else
    ``"trigram"``; ``--fts`` expressions are written for the trigram index."""
    return "words" if not raw and all(is_latin(t) for t in query.terms) else "trigram"


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
) -> list[Hit]:
    """Articles matching ``text``, best first: matches in the article itself ranked by bm25 (title
    weighted 10 to 1 over body), then articles that match only through a linked PDF. English goes
    to the word index, the rest to the trigram index (see the module's notes). ``author``: only
    articles by an author whose name holds it (``article_filters``)."""
    query = parse_query(text, raw=raw)
    filters = {"langs": langs, "sections": sections, "since": since, "until": until, "author": author}
    if index_for(query, raw=raw) == "words":
        hits = _word_search(archive, query, filters, limit)
        if hits:
            return hits
        # Nothing as a word: perhaps a fragment (semicon). Substrings are the trigram index's job.
    return _trigram_search(archive, query, filters, limit, raw=raw)


def _trigram_search(
    archive: Archive, query: Query, filters: dict[str, Any], limit: int, *, raw: bool = False
) -> list[Hit]:
    if not raw:
        text_hits = archive.text_hits(query.fts, query.short, filters, limit)
        pdf_hits = archive.pdf_hits(query.fts, query.short, filters, limit * 2)
    else:
        text_hits, pdf_hits = _raw_hits(archive, query, filters, limit)
    seen = {url for url, _ in text_hits}
    ranked: list[tuple[str, str | None, float, str]] = [(url, None, s, "text") for url, s in text_hits]
    for url, pdf_url, score in pdf_hits:
        if url not in seen:
            seen.add(url)
            ranked.append((url, pdf_url, score, "pdf"))
    return _hydrate(archive, ranked[:limit], query)


def _word_search(archive: Archive, query: Query, filters: dict[str, Any], limit: int) -> list[Hit]:
    """``search`` through the word index: articles whose title holds a term first, then those
    holding them elsewhere, then those matching only through a PDF; each part by bm25. Snippets
    are FTS5's, the stemmed forms marked. The body-only part is ranked only when the title
    matches are fewer than ``limit``: a common word (policy, in half the archive) is then ranked
    over the few thousand titles that hold it, not over every article."""
    phrases = ['"' + t.replace('"', '""') + '"' for t in query.terms]
    # bm25 saturates: a term adds at most (k1 + 1) * idf, idf < ln(10^9) for any archive. This
    # bonus puts every title match above every other match, so scores follow the order.
    bonus = len(phrases) * 2.2 * math.log(1e9)
    found = {url: (rowid, rank - bonus) for url, rowid, rank in archive.word_hits(phrases, filters, limit, in_title=True)}
    if len(found) < limit:
        body = archive.word_hits(phrases, filters, limit - len(found), in_title=False)
        found.update((url, (rowid, rank)) for url, rowid, rank in body)
    in_pdfs: dict[str, tuple[str, int, float]] = {}
    if len(found) < limit:
        for url, pdf_url, rowid, rank in archive.pdf_word_hits(phrases, filters, limit * 2):
            if url not in found and url not in in_pdfs and len(found) + len(in_pdfs) < limit:
                in_pdfs[url] = (pdf_url, rowid, rank)
    text_snippets = archive.word_snippets("articles_words", phrases, [rowid for rowid, _ in found.values()])
    pdf_snippets = archive.word_snippets("pdf_texts_words", phrases, [rowid for _, rowid, _ in in_pdfs.values()])
    ranked = [(url, None, rank, "text") for url, (_, rank) in found.items()]
    ranked += [(url, pdf_url, rank, "pdf") for url, (pdf_url, _, rank) in in_pdfs.items()]
    snippets = {url: text_snippets.get(rowid, "") for url, (rowid, _) in found.items()}
    snippets.update((url, pdf_snippets.get(rowid, "")) for url, (_, rowid, _) in in_pdfs.items())
    return _hydrate(archive, ranked, query, snippets)


def _raw_hits(
    archive: Archive, query: Query, filters: dict[str, Any], limit: int
) -> tuple[list[tuple[str, float]], list[tuple[str, str, float]]]:
    """Run an FTS5 expression against both indexes. A column filter names the columns of one
    index (``title:``/``body:`` for articles, ``text:`` for PDFs): the other index, which has no
    such column, is left out. An expression neither index accepts is one ``SearchError``."""
    errors: list[str] = []

    def run(hits: Any, *args: Any) -> list:
        try:
            return hits(query.fts, query.short, filters, *args)
        except sqlite3.OperationalError as exc:
            message = str(exc)
            if not ("fts5" in message or "syntax" in message or "no such column" in message):
                raise
            errors.append(message)
            return []

    text_hits = run(archive.text_hits, limit)
    pdf_hits = run(archive.pdf_hits, limit * 2)
    if len(errors) == 2 or any("no such column" not in e for e in errors):
        raise SearchError(
            f"not a valid FTS5 query ({errors[0]}); leave out --fts to search the words as typed"
        ) from None
    return text_hits, pdf_hits


def _hydrate(
    archive: Archive,
    ranked: list[tuple[str, str | None, float, str]],
    query: Query,
    snippets: dict[str, str] | None = None,
) -> list[Hit]:
    """Hits from (url, pdf url, rank, match) rows; ``snippets`` by URL where FTS5 made them."""
    rows = archive.hit_rows(url for url, *_ in ranked)
    hits = []
    for url, pdf_url, score, match in ranked:
        row = rows[url]
        if snippets and snippets.get(url):
            shown = " ".join(snippets[url].split())
        else:
            shown = snippet(_context(archive, row, pdf_url if match == "pdf" else None, query), query.terms)
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


def _context(archive: Archive, row: dict[str, Any], pdf_url: str | None, query: Query) -> str:
    """The text a snippet is cut from: the PDF's for a PDF hit, else the body (with the title
    when only the title holds a term)."""
    if pdf_url:
        return archive.pdf_text(pdf_url) or ""
    body = row["body"] or ""
    return body if _find(body, query.terms) is not None else f"{row['title']}\n{body}"


def relevance(rank: float) -> float:
    """A hit's score from its SQL rank (lower ranks first: bm25 is negative, the scan negates
    its counts): higher is better, 4 decimals, never ``-0.0``. bm25 gives a term found in most
    documents of an index almost nothing (its IDF is floored), so such hits score 0.0. Scores
    compare hits of one kind (``match``) only: the article and PDF indexes rank separately."""
    return round(-rank, 4) + 0.0


def _find(text: str, terms: list[str]) -> int | None:
    found = []
    for term in terms:
        if len(term) < MIN_FTS_CHARS and _ASCII_WORD.fullmatch(term):
            m = re.search(rf"(?<![A-Za-z0-9]){re.escape(term)}(?![A-Za-z0-9])", text, re.IGNORECASE)
            i = m.start() if m else -1
        else:
            i = text.lower().find(term.lower()) if term else -1
        if i >= 0:
            found.append(i)
    return min(found) if found else None


def snippet(text: str, terms: list[str], width: int = SNIPPET_CHARS) -> str:
    """A one-line window of ``text`` around the first match, every term in it marked [like this]."""
    flat = " ".join(text.split())
    start = _find(flat, terms)
    if start is None:
        return flat[: 2 * width] + ("…" if len(flat) > 2 * width else "")
    lo, hi = max(0, start - width), min(len(flat), start + width)
    window = flat[lo:hi]
    pattern = "|".join(
        rf"(?<![A-Za-z0-9]){re.escape(t)}(?![A-Za-z0-9])"
        if len(t) < MIN_FTS_CHARS and _ASCII_WORD.fullmatch(t)
        else re.escape(t)
        for t in sorted(terms, key=len, reverse=True)
        if t
    )
    if pattern:
        window = re.sub(f"({pattern})", r"[\1]", window, flags=re.IGNORECASE)
    return ("…" if lo > 0 else "") + window + ("…" if hi < len(flat) else "")
