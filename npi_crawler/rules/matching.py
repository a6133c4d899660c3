"""Rule matching: which watcher rules a batch of articles matches, where, and a snippet of it.

The semantics (docs/alerts.md#rules says the same for users):

- A term is looked for in the article's title, its body and the text of every PDF it links.
  Text and terms are first *folded*: NFKC (full-width ＡＩ is AI, half-width ｶﾀｶﾅ is カタカナ), runs
  of white space made one space, and a space next to a Japanese/Chinese character removed (PDF
  extraction breaks Japanese lines in mid-word: 半導 体 is 半導体).
- A term with a Japanese/Chinese character (CJK) is a substring, case-insensitive: 半導体 matches
  inside 次世代半導体産業, AI半導体 matches "ai 半導体". Search finds the same substrings
  through its indexes of the folded text (archive/searchindex.py).
- Any other term is English words: it is tokenized and stemmed by FTS5's
  ``porter unicode61 remove_diacritics 2`` tokenizer and matches the same sequence of stems, so
  ``semiconductor`` matches "semiconductor", "Semiconductors" and "semiconductor's", not
  "semiconducting" (stem *semiconduct*); ``economic security`` matches the two words in that
  order, whatever case or punctuation lies between. A word never matches inside another word
  (``AI`` does not match "Taiwan"), and Japanese characters around English words are word
  boundaries (``AI`` matches "生成AIの").

The archive's indexes are fed the same text (archive/searchindex.py, migration 009): the word
index ``word_view(fold(text))`` with this tokenizer, the trigram and bigram indexes ``fold(text)``;
search folds its terms with ``fold`` too, so a rule and a search for the same term agree.

How: one batch of documents (a run's new articles, or the whole archive for ``rules check``) is
folded once; English terms go through an in-memory FTS5 index of the batch (built on the first
English term), Japanese terms through a substring scan of the folded text (for a batch used once,
faster than building a trigram index: 0.7 s against 15 s on 5,000 articles with their PDFs).
Each distinct term runs once; rules combine the hits per article in Python.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from npi_crawler.site.text import WORD_TOKENIZER, fold, is_cjk, word_view

SNIPPET_CHARS = 60  # characters of context on each side of the first match



class RuleLike(Protocol):
    """What the engine reads of a rule (``npi_crawler.rules.model.Rule`` is one)."""

    # Read-only (properties): a frozen dataclass such as Rule is one.
    @property
    def name(self) -> str: ...
    @property
    def any(self) -> tuple[str, ...]: ...
    @property
    def all(self) -> tuple[str, ...]: ...
    @property
    def none(self) -> tuple[str, ...]: ...
    @property
    def sections(self) -> tuple[str, ...]: ...
    @property
    def langs(self) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class Document:
    """One article as the matcher sees it; ``pdfs`` is (PDF URL, extracted text), in link order."""

    url: str
    lang: str
    sections: tuple[str, ...]
    title: str
    body: str
    pdfs: tuple[tuple[str, str], ...] = ()
    published: str | None = None  # not matched; orders a rule's matches, newest first


@dataclass(frozen=True)
class Match:
    """A rule an article matches, and where its first term occurs: ``where`` is title, body or
    pdf (then ``pdf_url`` says which); ``snippet`` is one line around it, the term [marked]."""

    rule: str
    where: str
    pdf_url: str | None
    term: str
    snippet: str


class _Part(NamedTuple):
    doc: int  # position of the document in the batch
    kind: str  # title, body or pdf
    pdf_url: str | None
    text: str  # folded


def match_rules(documents: Iterable[Document], rules: Sequence[RuleLike]) -> dict[str, list[Match]]:
    """For each article (by URL) that matches any rule: one ``Match`` per rule, in rule order."""
    with MatchIndex(documents) as index:
        return index.match(rules)


class MatchIndex:
    """One batch of documents, folded once; ask it ``match(rules)``, or ``matching_docs(rule)``
    for counts and ``first_match(rule, n)`` for the snippet of a few."""

    def __init__(self, documents: Iterable[Document]) -> None:
        self.documents = list(documents)
        self._parts: list[_Part] = []  # part id - 1 -> part, in document then title/body/PDF order
        for n, doc in enumerate(self.documents):
            fields = [("title", None, doc.title), ("body", None, doc.body)]
            for kind, pdf_url, text in fields + [("pdf", url, text) for url, text in doc.pdfs]:
                if folded := fold(text or ""):
                    self._parts.append(_Part(n, kind, pdf_url, folded))
        self._db: sqlite3.Connection | None = None  # the word index, built on the first English term
        self._lowered: list[str] | None = None  # lower-cased parts, for CJK terms with Latin letters
        self._hits: dict[str, dict[int, list[int]]] = {}  # term -> doc -> part ids, in part order
        self._spans: dict[tuple[str, int], tuple[int, int]] = {}  # (term, part) -> first occurrence

    def __enter__(self) -> MatchIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _words(self) -> sqlite3.Connection:
        if self._db is None:
            db = sqlite3.connect(":memory:")
            db.execute("CREATE TABLE parts (id INTEGER PRIMARY KEY, words TEXT NOT NULL)")
            db.executemany(
                "INSERT INTO parts (id, words) VALUES (?, ?)",
                ((i, word_view(p.text)) for i, p in enumerate(self._parts, start=1)),
            )
            db.execute(
                "CREATE VIRTUAL TABLE words_fts USING fts5(words, content='parts', content_rowid='id', "
                f"tokenize='{WORD_TOKENIZER}')"
            )
            db.execute("INSERT INTO words_fts(words_fts) VALUES ('rebuild')")
            self._db = db
        return self._db

    def hits(self, term: str) -> dict[int, list[int]]:
        """Documents (by position in the batch) containing ``term``, with the parts that do."""
        if term not in self._hits:
            found: dict[int, list[int]] = {}
            for part in self._find(fold(term)):
                found.setdefault(self._parts[part - 1].doc, []).append(part)
            self._hits[term] = found
        return self._hits[term]

    def _find(self, folded: str) -> list[int]:
        """Ids of the parts holding a folded term, in order."""
        if not is_cjk(folded):
            rows = self._words().execute(
                "SELECT rowid FROM words_fts WHERE words_fts MATCH ? ORDER BY rowid", [_phrase(folded)]
            )
            return [r[0] for r in rows]
        texts = [p.text for p in self._parts]
        if folded.lower() != folded.upper():  # a Latin (cased) letter in it: compare lower-cased
            if self._lowered is None:
                self._lowered = [t.lower() for t in texts]
            texts, folded = self._lowered, folded.lower()
        return [i for i, text in enumerate(texts, start=1) if folded in text]

    def matching_docs(self, rule: RuleLike) -> list[int]:
        """Positions of the documents ``rule`` matches, in batch order."""
        reach = {
            n
            for n, doc in enumerate(self.documents)
            if (not rule.langs or doc.lang in rule.langs)
            and (not rule.sections or set(rule.sections) & set(doc.sections))
        }
        if rule.any:
            reach &= set().union(*(self.hits(t).keys() for t in rule.any))
        for term in rule.all:
            reach &= self.hits(term).keys()
        for term in rule.none:
            reach -= self.hits(term).keys()
        return sorted(reach)

    def newest_first(self, positions: Iterable[int]) -> list[int]:
        """Document positions by publication date, newest first (undated last), then URL."""
        docs = self.documents
        return sorted(
            positions,
            key=lambda n: (docs[n].published is not None, docs[n].published or "", docs[n].url),
            reverse=True,
        )

    def match(self, rules: Sequence[RuleLike]) -> dict[str, list[Match]]:
        """For each article (by URL) that matches any rule: one ``Match`` per rule, in rule order."""
        result: dict[str, list[Match]] = {}
        for rule in rules:
            for n in self.matching_docs(rule):
                result.setdefault(self.documents[n].url, []).append(self.first_match(rule, n))
        return result

    def first_match(self, rule: RuleLike, n: int) -> Match:
        """Where a rule that matches document ``n`` first finds one of its wanted terms: the first
        part (title, body, PDFs in link order) holding any, at the earliest offset in it."""
        hits = {t: self.hits(t)[n] for t in dict.fromkeys(rule.any + rule.all) if n in self.hits(t)}
        part = min(parts[0] for parts in hits.values())
        (start, end), term = min((self._span(t, part), t) for t, parts in hits.items() if part in parts)
        kind, pdf_url, text = self._parts[part - 1][1:]
        return Match(rule.name, kind, pdf_url, term, snippet(text, start, end))

    def _span(self, term: str, part: int) -> tuple[int, int]:
        if (term, part) not in self._spans:
            folded, text = fold(term), self._parts[part - 1].text
            if is_cjk(folded):
                m = re.search(re.escape(folded), text, re.IGNORECASE)
                span = (m.start(), m.end()) if m else (0, 0)
            else:
                # FTS5 knows where the stems matched: highlight() marks them in the word view,
                # whose offsets are the folded text's.
                sql = (
                    "SELECT highlight(words_fts, 0, char(1), char(2)) FROM words_fts "
                    "WHERE words_fts MATCH ? AND rowid = ?"
                )
                marked = self._words().execute(sql, [_phrase(folded), part]).fetchone()[0]
                start = marked.find("\x01")
                span = (start, marked.find("\x02", start) - 1) if start >= 0 else (0, 0)
            self._spans[term, part] = span
        return self._spans[term, part]


def _phrase(folded: str) -> str:
    """An FTS5 phrase: the words in this order, whatever the term holds (quotes are doubled, so
    NOT, -, * or : are words, not operators)."""
    return '"' + folded.replace('"', '""') + '"'


def snippet(text: str, start: int, end: int, width: int = SNIPPET_CHARS) -> str:
    """One line of ``text`` around ``text[start:end]``, which is [marked]; cut at word boundaries
    where there are any near the edges, with … where text was left out."""
    lo, hi = max(0, start - width), min(len(text), end + width)
    if lo > 0 and (space := text.find(" ", lo, min(start, lo + 15))) >= 0:
        lo = space + 1
    if hi < len(text) and (space := text.rfind(" ", max(end, hi - 15), hi)) >= 0:
        hi = space
    window = f"{text[lo:start]}[{text[start:end]}]{text[end:hi]}"
    return ("…" if lo > 0 else "") + window + ("…" if hi < len(text) else "")
