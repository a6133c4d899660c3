"""An independent count of what watcher rules match on the replica's model, for tests.

Plain Python over the model's own text (``Article.title``, ``expected_body()``, ``pdf_texts``):
no SQLite, no FTS5, nothing of ``npi_crawler.rules.matching``. It implements the semantics that
docs/alerts.md#rules promises, from that description:

- text and terms are folded: NFKC, white space runs made one space, a space next to a
  Japanese/Chinese character dropped;
- a term with a Japanese/Chinese character (kanji, kana; recognised here by its Unicode name) is
  a case-insensitive substring;
- any other term is a sequence of words: runs of letters and digits (Japanese characters are
  word boundaries), lower-cased, accents removed, each stemmed with Porter's algorithm, and the
  term's stems must appear in the text as consecutive stems.

The stemmer is Snowball's ``porter`` (Porter's 1980 algorithm), an implementation apart from
SQLite's. Like SQLite's tokenizer it leaves words of fewer than 3 or more than 64 bytes as they
are. The two differ on a few rare words (Porter's reference C code, which SQLite follows, also
stems "-logi" and "-bli": "analogy", "flexibly"); the model's vocabulary has none of them.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from functools import cache

import snowballstemmer

from .model import BROKEN_PDF, Article, Site

_STEMMER = snowballstemmer.stemmer("porter")
_CJK_NAMES = (
    "CJK UNIFIED IDEOGRAPH",
    "CJK COMPATIBILITY IDEOGRAPH",
    "HIRAGANA",
    "KATAKANA",
    "HALFWIDTH KATAKANA",
)


@cache
def is_cjk_char(ch: str) -> bool:
    return ch in "々〆〇" or unicodedata.name(ch, "").startswith(_CJK_NAMES)


def fold(text: str) -> str:
    chars = list(" ".join(unicodedata.normalize("NFKC", text).split()))
    kept = [
        ch
        for i, ch in enumerate(chars)
        if not (
            ch == " "
            and ((i > 0 and is_cjk_char(chars[i - 1])) or (i + 1 < len(chars) and is_cjk_char(chars[i + 1])))
        )
    ]
    return "".join(kept)


def _stem(word: str) -> str:
    if len(word.encode()) < 3 or len(word.encode()) > 64:
        return word
    return _STEMMER.stemWord(word)


def stems(text: str) -> list[str]:
    """The stems of the words of (folded) ``text``, in order."""
    words, current = [], []
    for ch in text + " ":
        if ch.isalnum() and not is_cjk_char(ch):
            current.append(ch)
        elif current:
            words.append("".join(current))
            current = []
    result = []
    for word in words:
        plain = "".join(
            c for c in unicodedata.normalize("NFKD", word.lower()) if not unicodedata.combining(c)
        )
        result.append(_stem(plain))
    return result


def contains(text: str, term: str) -> bool:
    """Whether the folded ``text`` holds ``term`` as the rules define it."""
    term = fold(term)
    if any(is_cjk_char(ch) for ch in term):
        return term.lower() in text.lower()
    wanted, have = stems(term), stems(text)
    return any(have[i : i + len(wanted)] == wanted for i in range(len(have) - len(wanted) + 1))


def article_texts(article: Article) -> list[str]:
    """Title, body and the readable PDFs' text, folded (what a correct crawl stores)."""
    texts = [article.title, article.expected_body()]
    texts += [text for _path, text in article.pdf_texts.items() if text != BROKEN_PDF]
    return [fold(t) for t in texts]


def rule_matches(rule, article: Article) -> bool:
    """``rule`` is anything with name, any, all, none, sections and langs (a ``Rule``)."""
    if rule.langs and article.lang not in rule.langs:
        return False
    if rule.sections and not set(rule.sections) & set(article.sections):
        return False
    texts = article_texts(article)

    def found(term: str) -> bool:
        return any(contains(text, term) for text in texts)

    return (
        (not rule.any or any(found(t) for t in rule.any))
        and all(found(t) for t in rule.all)
        and not any(found(t) for t in rule.none)
    )


def matched_articles(site: Site, rules: Iterable) -> dict[str, list[str]]:
    """Rule name -> the paths of the live articles it matches (sorted)."""
    return {rule.name: sorted(a.path for a in site.live() if rule_matches(rule, a)) for rule in rules}


def count_matches(site: Site, rules: Iterable) -> dict[str, int]:
    """Rule name -> how many live articles of the site it matches: what ``rules check`` must say."""
    return {name: len(paths) for name, paths in matched_articles(site, rules).items()}
