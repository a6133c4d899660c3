"""Full-text search over the archive: article titles and bodies, and the text of linked PDFs.

Both indexes (``articles_fts``, ``pdf_texts_fts``) use FTS5's ``trigram`` tokenizer, which matches
any substring of three or more characters, so Japanese (no spaces between words) is searchable
without a dictionary. A term shorter than three characters (憲法, AI) cannot use a trigram index:
it is matched with ``LIKE`` over the same text, as a filter on the indexed terms when there are
any, or as a scan ranked by where and how often it occurs when there are none.

The user's words are quoted before they reach FTS5, so ``NOT``, ``-``, ``*``, ``:`` or a stray
quote are searched for as text instead of raising a syntax error; ``raw=True`` passes an FTS5
expression through unchanged and turns a syntax error into one ``SearchError`` line.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from npi_crawler.storage import Archive, ArchiveError, article_filters

MIN_FTS_CHARS = 3  # the trigram tokenizer's smallest match
TITLE_WEIGHT = 10.0  # bm25 weight of the title column against the body's 1.0
SNIPPET_CHARS = 70  # characters of context on each side of the first match


class SearchError(ArchiveError):
    """The query cannot be run; the message is one line."""


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
    score: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_TOKEN = re.compile(r'"([^"]*)"?|(\S+)')
_FTS_OPERATORS = {"AND", "OR", "NOT", "NEAR"}


def parse_query(text: str, *, raw: bool = False) -> Query:
    """Split ``text`` into words and "quoted phrases"; every one must match (AND)."""
    if raw:
        if not text.strip():
            raise SearchError("the search query is empty; give at least one word")
        words = [w for w in re.findall(r'"([^"]+)"|([^\s"()*^:+-]+)', text)]
        terms = [a or b for a, b in words if (a or b) not in _FTS_OPERATORS]
        return Query(terms=terms, fts=text, short=[])
    terms = [(m[1] if m[1] is not None else m[2]).strip() for m in _TOKEN.finditer(text)]
    terms = [t for t in terms if t]
    if not terms:
        raise SearchError("the search query is empty; give at least one word")
    long_terms = [t for t in terms if len(t) >= MIN_FTS_CHARS]
    fts = " ".join('"' + t.replace('"', '""') + '"' for t in long_terms) or None
    return Query(terms=terms, fts=fts, short=[t for t in terms if len(t) < MIN_FTS_CHARS])


def _like(term: str) -> str:
    return "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


_ASCII_WORD = re.compile(r"[A-Za-z0-9]+")


def _short_match(column: str, term: str) -> tuple[str, list[str]]:
    """SQL matching a 1-2 character term in ``column``: a substring for Japanese (憲法), a whole
    word for Latin letters and digits (AI must not match inside "Taiwan")."""
    if _ASCII_WORD.fullmatch(term):
        return (
            f"(' ' || lower({column}) || ' ') GLOB ?",
            [f"*[^a-z0-9]{term.lower()}[^a-z0-9]*"],
        )
    return f"{column} LIKE ? ESCAPE '\\'", [_like(term)]


def _count(column: str) -> str:
    """SQL: how many times ? occurs in ``column`` (case as stored)."""
    return f"((length({column}) - length(replace({column}, ?, ''))) / max(length(?), 1))"


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
) -> list[Hit]:
    """Articles matching ``text``, best first: matches in the article itself ranked by bm25 (title
    weighted 10 to 1 over body), then articles that match only through a linked PDF."""
    query = parse_query(text, raw=raw)
    where, params = article_filters(langs=langs, sections=sections, since=since, until=until)
    try:
        text_hits = _text_hits(archive, query, where, params, limit)
        pdf_hits = _pdf_hits(archive, query, where, params, limit)
    except sqlite3.OperationalError as exc:
        if raw and ("fts5" in str(exc) or "syntax" in str(exc) or "no such column" in str(exc)):
            raise SearchError(
                f"not a valid FTS5 query ({exc}); leave out --fts to search the words as typed"
            ) from None
        raise
    seen = {url for url, _ in text_hits}
    ranked: list[tuple[str, str | None, float, str]] = [(url, None, s, "text") for url, s in text_hits]
    for url, pdf_url, score in pdf_hits:
        if url not in seen:
            seen.add(url)
            ranked.append((url, pdf_url, score, "pdf"))
    return _hydrate(archive, ranked[:limit], query)


def _text_hits(archive: Archive, query: Query, where: list[str], params: list[Any], limit: int):
    like_sql, like_params, score_sql, score_params = [], [], [], []
    for term in query.short:
        title_sql, title_params = _short_match("a.title", term)
        body_sql, body_params = _short_match("a.body", term)
        like_sql.append(f"({title_sql} OR {body_sql})")
        like_params += title_params + body_params
        score_sql.append(f"{TITLE_WEIGHT} * {_count('a.title')} + {_count('a.body')}")
        score_params += [term, term, term, term]
    conditions = " AND ".join(where + like_sql)
    if query.fts:
        sql = (
            f"SELECT a.url, bm25(articles_fts, {TITLE_WEIGHT}, 1.0) AS score FROM articles_fts "
            f"JOIN articles a ON a.rowid = articles_fts.rowid "
            f"WHERE articles_fts MATCH ? AND {conditions} ORDER BY score, a.published DESC LIMIT ?"
        )
        rows = archive.db.execute(sql, [query.fts, *params, *like_params, limit])
    else:  # only short terms: a scan, ranked by title matches, then occurrences, then newest
        sql = (
            f"SELECT a.url, -({' + '.join(score_sql)}) AS score FROM articles a "
            f"WHERE {conditions} ORDER BY score, a.published DESC LIMIT ?"
        )
        rows = archive.db.execute(sql, [*score_params, *params, *like_params, limit])
    return [(url, score) for url, score in rows]


def _pdf_hits(archive: Archive, query: Query, where: list[str], params: list[Any], limit: int):
    like_sql, like_params = [], []
    for term in query.short:
        text_sql, text_params = _short_match("t.text", term)
        like_sql.append(text_sql)
        like_params += text_params
    conditions = " AND ".join(where + like_sql)
    joins = "JOIN pdfs p ON p.url = t.url JOIN articles a ON a.url = p.article_url"
    if query.fts:
        sql = (
            f"SELECT a.url, t.url, bm25(pdf_texts_fts) AS score FROM pdf_texts_fts "
            f"JOIN pdf_texts t ON t.rowid = pdf_texts_fts.rowid {joins} "
            f"WHERE pdf_texts_fts MATCH ? AND {conditions} ORDER BY score, a.published DESC LIMIT ?"
        )
        rows = archive.db.execute(sql, [query.fts, *params, *like_params, limit * 2])
    else:
        sql = (
            f"SELECT a.url, t.url, 0 AS score FROM pdf_texts t {joins} "
            f"WHERE t.text IS NOT NULL AND {conditions} ORDER BY a.published DESC LIMIT ?"
        )
        rows = archive.db.execute(sql, [*params, *like_params, limit * 2])
    return list(rows)


def _hydrate(archive: Archive, ranked: list[tuple[str, str | None, float, str]], query: Query) -> list[Hit]:
    hits = []
    for url, pdf_url, score, match in ranked:
        row = archive.db.execute(
            "SELECT lang, title, published, body, (SELECT group_concat(section) FROM (SELECT section "
            "FROM article_sections WHERE article_url = a.url ORDER BY section)) FROM articles a WHERE url = ?",
            [url],
        ).fetchone()
        lang, title, published, body, sections = row
        if match == "pdf":
            pdf_text = archive.db.execute("SELECT text FROM pdf_texts WHERE url = ?", [pdf_url]).fetchone()
            context = pdf_text[0] if pdf_text else ""
        else:
            context = body if _find(body or "", query.terms) is not None else f"{title}\n{body}"
        hits.append(
            Hit(
                url=url,
                lang=lang,
                title=title,
                published=published,
                sections=sections.split(",") if sections else [],
                snippet=snippet(context or "", query.terms),
                match=match,
                pdf_url=pdf_url,
                score=round(score, 4),
            )
        )
    return hits


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
