"""A page's bytes as text, the same way wherever a page is read (the spider, ``probe``, ``snapshot``).

No lxml here: w3lib reads what a page declares, and the Japanese guess below decides the rest.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from w3lib.encoding import html_body_declared_encoding, html_to_unicode, http_content_type_encoding, read_bom

from npi_crawler.site.text import CJK_SYMBOLS, HALFWIDTH_KANA, HALFWIDTH_PUNCTUATION, HAN, KANA

# Tried in this order on a page that declares no encoding (no charset in Content-Type, no <meta
# charset>, no BOM). Valid UTF-8 is taken as UTF-8; otherwise the legacy Japanese encoding whose
# strict decoding reads as the most Japanese (kana, kanji, Japanese punctuation) wins. General-purpose detectors guess wrong on short
# Japanese pages (charset-normalizer, which Scrapy uses, reads short EUC-JP as Korean cp949).
JAPANESE_ENCODINGS = ("euc_jp", "cp932")
_JAPANESE = re.compile(f"[{CJK_SYMBOLS}{KANA}{HAN}]")
_HALFWIDTH = re.compile(f"[{HALFWIDTH_PUNCTUATION}{HALFWIDTH_KANA}]")


def guess_japanese_encoding(body: bytes) -> str | None:
    """The encoding of an undeclared page: ``utf-8``, ``euc_jp``, ``cp932`` or None (not Japanese
    text in any of them: leave it to the general detector)."""
    try:
        body.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    best, best_score = None, 0
    for encoding in JAPANESE_ENCODINGS:
        try:
            text = body.decode(encoding)
        except UnicodeDecodeError:
            continue
        # EUC-JP bytes read as Shift_JIS decode to half-width katakana: a sign of the wrong guess.
        score = len(_JAPANESE.findall(text)) - 4 * len(_HALFWIDTH.findall(text))
        if score > best_score:
            best, best_score = encoding, score
    return best


def decode_page(body: bytes, content_type: str | None, fallback: Callable[[], str] | None = None) -> str:
    """A page's bytes as text, the same way wherever a page is read (the spider, ``probe``,
    ``snapshot``). A declared encoding (Content-Type charset, BOM, ``<meta charset>``) is honoured;
    an undeclared one is guessed among UTF-8 and the Japanese encodings first, and only then left to
    ``fallback`` (the spider passes Scrapy's own ``response.text``) or w3lib's default."""
    declared = http_content_type_encoding(content_type) or read_bom(body)[0] or html_body_declared_encoding(body)
    if not declared and (guessed := guess_japanese_encoding(body)):
        return body.decode(guessed)
    return fallback() if fallback is not None else html_to_unicode(content_type, body)[1]
