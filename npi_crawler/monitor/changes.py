"""What changed between two versions of an article: the one diff that ``--changes`` alerts and
``npi-crawler history`` show.

Pure functions over two versions (title, date, authors, PDFs, body). The body is compared
paragraph by paragraph, then the paragraphs that differ sentence by sentence, so an edit shows as
the sentences it added or removed, not as a rewritten paragraph:
Japanese is split after 。！？ and English after . ! ? (and every paragraph ends a sentence). A
sentence edited in place (similar enough to the one it replaced) is shown once, its edit marked
inline with wdiff's markers, ``[-removed-]{+added+}``: Japanese compared by characters, English by
words (a run of letters and digits, a space, a punctuation mark).
"""

from __future__ import annotations

import difflib
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from npi_crawler.site.text import JAPANESE

# A sentence ends after 。！？ (not before a closing bracket or another mark: 「…した。」と述べた。
# is one sentence), or after . ! ? followed by a space and what can start a sentence, unless the
# word before the . is an initial or a title (U.S. Navy, No. 5, Mr. Abe).
_JA_END = re.compile(r"[。！？]+(?![」』）)\]])")
_EN_END = re.compile(r"[.!?][\"'”’)]?(\s+)(?=[\"'“‘(\[]?[A-Z0-9])")
_NOT_AN_END = re.compile(r"(?:^|\W)(?:[A-Z]|No|Mr|Ms|Dr|St)\.[\"'”’)]?$")
_JA_CHARS = re.compile(f"[{JAPANESE}]")
_EN_TOKENS = re.compile(r"\w+|\s+|[^\w\s]")
SIMILAR = 0.5  # a new sentence at least this close to an old one is that sentence, edited
MAX_PAIRS = 2500  # beyond this many (old, new) sentence pairs in one block: no pairing, a rewrite


class VersionLike(Protocol):
    """What the diff reads of a version (``research.history.Version`` is one)."""

    # Read-only (properties): a frozen dataclass such as Text is one.
    @property
    def title(self) -> str | None: ...
    @property
    def published(self) -> str | None: ...
    @property
    def body(self) -> str: ...
    @property
    def pdfs(self) -> list[str]: ...
    @property
    def authors(self) -> list[str]: ...


@dataclass(frozen=True)
class Text:
    """A version as plain fields (what the differ reads from the archive)."""

    title: str | None
    published: str | None
    body: str
    pdfs: list[str] = field(default_factory=list)
    authors: list[str] = field(default_factory=list)


@dataclass
class Changes:
    """What changed. ``sentences`` are in the new version's order: ("+", added), ("-", removed),
    ("~", edited, its edit marked inline)."""

    title: tuple[str, str] | None = None  # (old, new)
    published: tuple[str, str] | None = None
    authors: tuple[list[str], list[str]] | None = None
    pdfs_added: list[str] = field(default_factory=list)
    pdfs_removed: list[str] = field(default_factory=list)
    sentences: list[tuple[str, str]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(
            self.title
            or self.published
            or self.authors
            or self.pdfs_added
            or self.pdfs_removed
            or self.sentences
        )

    def count(self, op: str) -> int:
        return sum(1 for o, _s in self.sentences if o == op)

    def lines(self) -> list[str]:
        """The changes as lines, what an alert and ``history`` print: fields first, then one line
        per sentence (``+ added``, ``- removed``, ``~ edited``); a PDF line is ``PDF added: URL``."""
        out = []
        if self.title:
            out.append(f"Title was: {self.title[0]}")
        if self.published:
            out.append(f"Date was: {self.published[0] or 'none'} (now {self.published[1] or 'none'})")
        if self.authors:
            old, new = (", ".join(names) or "none" for names in self.authors)
            out.append(f"Authors were: {old} (now {new})")
        out += [f"PDF added: {url}" for url in self.pdfs_added]
        out += [f"PDF removed: {url}" for url in self.pdfs_removed]
        out += [f"{op} {text}" for op, text in self.sentences]
        return out


def compare(old: VersionLike, new: VersionLike) -> Changes:
    """What changed from ``old`` to ``new``."""
    changes = Changes()
    if (old.title or "") != (new.title or ""):
        changes.title = (old.title or "", new.title or "")
    if (old.published or "") != (new.published or ""):
        changes.published = (old.published or "", new.published or "")
    if list(old.authors) != list(new.authors):
        changes.authors = (list(old.authors), list(new.authors))
    changes.pdfs_added = [url for url in new.pdfs if url not in old.pdfs]
    changes.pdfs_removed = [url for url in old.pdfs if url not in new.pdfs]
    changes.sentences = body_diff(old.body, new.body)
    return changes


def body_diff(old: str, new: str) -> list[tuple[str, str]]:
    """``sentence_diff`` of two bodies. Paragraphs are compared first, and only those that
    differ are split into sentences: the cost follows the edit, not the article's length."""
    a, b = _paragraphs(old), _paragraphs(new)
    out: list[tuple[str, str]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op != "equal":
            out += sentence_diff(sentences("\n\n".join(a[i1:i2])), sentences("\n\n".join(b[j1:j2])))
    return out


def _paragraphs(body: str) -> list[str]:
    return [text for paragraph in body.split("\n\n") if (text := " ".join(paragraph.split()))]


def sentences(body: str) -> list[str]:
    """The body's sentences, in order, white space folded."""
    out: list[str] = []
    for text in _paragraphs(body):
        parts = _split_japanese(text) if is_japanese(text) else _split_english(text)
        out += [s.strip() for s in parts if s.strip()]
    return out


# One pass over the ends of sentences each: a split on lookbehinds, tried at every character, was
# most of the diff's cost on a long article.
def _split_japanese(text: str) -> list[str]:
    ends = [m.end() for m in _JA_END.finditer(text)]
    return [text[a:b] for a, b in zip([0, *ends], [*ends, len(text)], strict=True)]


def _split_english(text: str) -> list[str]:
    parts, start = [], 0
    for end in _EN_END.finditer(text):
        if not _NOT_AN_END.search(text[max(0, end.start() - 3) : end.start(1)]):
            parts.append(text[start : end.start(1)])
            start = end.end(1)
    return [*parts, text[start:]]


def is_japanese(text: str) -> bool:
    """Whether ``text`` holds kana or kanji (then it is split and compared the Japanese way)."""
    return _JA_CHARS.search(text) is not None


def sentence_diff(old: Sequence[str], new: Sequence[str]) -> list[tuple[str, str]]:
    """(op, sentence) for every sentence added (+), removed (-) or edited (~) from ``old`` to ``new``."""
    out: list[tuple[str, str]] = []
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            continue
        out += _block(old[i1:i2], new[j1:j2])
    return out


def _block(old: Sequence[str], new: Sequence[str]) -> list[tuple[str, str]]:
    """One replaced block: each new sentence paired, in order, with the most similar old one
    still unpaired (when similar enough: an edit), the others added or removed."""
    pairs: dict[int, int] = {}  # new index -> old index
    if old and new and len(old) * len(new) <= MAX_PAIRS:
        start = 0
        for j, sentence in enumerate(new):
            scores = {i: _similarity(old[i], sentence) for i in range(start, len(old))}
            at = max(scores, key=scores.__getitem__, default=None)  # the first of the most similar
            if at is not None and scores[at] >= SIMILAR:
                pairs[j], start = at, at + 1
    out: list[tuple[str, str]] = []
    i = 0
    for j, sentence in enumerate(new):
        if j in pairs:
            out += [("-", s) for s in old[i : pairs[j]]]
            out.append(("~", inline(old[pairs[j]], sentence)))
            i = pairs[j] + 1
        else:
            out.append(("+", sentence))
    out += [("-", s) for s in old[i:]]
    return _removed_first(out)


def _removed_first(ops: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Within a run of removals and additions with no edit between them, removals first (the
    order a unified diff reads in)."""
    out: list[tuple[str, str]] = []
    for edited, group in itertools.groupby(ops, key=lambda item: item[0] == "~"):
        run = list(group)
        out += run if edited else sorted(run, key=lambda item: item[0] != "-")  # stable: "-" first
    return out


def _tokens(text: str) -> list[str]:
    return list(text) if is_japanese(text) else _EN_TOKENS.findall(text)


def _similarity(a: str, b: str) -> float:
    matcher = difflib.SequenceMatcher(None, _tokens(a), _tokens(b), autojunk=False)
    if matcher.real_quick_ratio() < SIMILAR or matcher.quick_ratio() < SIMILAR:
        return 0.0
    return matcher.ratio()


def inline(old: str, new: str) -> str:
    """``new`` with what changed from ``old`` marked: ``[-removed-]{+added+}``."""
    a, b = _tokens(old), _tokens(new)
    out = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            out.append("".join(a[i1:i2]))
            continue
        if i2 > i1:
            out.append("[-" + "".join(a[i1:i2]) + "-]")
        if j2 > j1:
            out.append("{+" + "".join(b[j1:j2]) + "+}")
    return "".join(out)
