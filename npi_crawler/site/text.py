"""Text as NPI's pages write it: whitespace, dates, and the named character classes.

Standard library only: the archive, search and citations read these names without lxml.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

# -- character classes ----------------------------------------------------------------------------
# Each is the inside of a regex class (``re.compile(f"[{JAPANESE}]")``), so they combine by
# concatenation. Defined once here: search, matching, citations and the decoder's guess each
# used to spell their own.

CJK_SYMBOLS = "\u3000-\u303f"  # ideographic space, 、。「」, 々〆〇 ...
HIRAGANA = "\u3040-\u309f"
KANA = HIRAGANA + "\u30a0-\u30ff\u31f0-\u31ff"  # hiragana, katakana (with ー), katakana extensions
HALFWIDTH_KANA = "\uff66-\uff9f"  # ｦ-ﾟ
HALFWIDTH_PUNCTUATION = "\uff61-\uff65"  # ｡｢｣､･
HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"  # ideographs, extensions, compatibility
HANGUL = "\uac00-\ud7af"  # the syllables block
# The characters of Japanese script: Han (with 々〆〇), kana, half-width katakana. A term or name
# with one of them is Japanese (or Chinese) text: no spaces between words, no Latin name order.
JAPANESE = "\u3005-\u3007" + KANA + HAN + HALFWIDTH_KANA

_WS = re.compile(r"[\s\u200b\u200c\u200d\u2060\ufeff]+")
# What no text read from the site keeps (issue 23: 9, 15): the C0 controls but tab, newline and
# carriage return (whitespace, folded by the callers), DEL and the C1 controls, which a terminal
# acts on (ESC ] 0 ; ... BEL retitles it, U+009B starts a sequence); surrogates and Unicode's
# noncharacters (U+FDD0-U+FDEF, the last two of every plane), which XML cannot hold or a writer
# refuses (one U+FFFE in a title broke its section's Atom feed). Removed once, when a page or a
# PDF is read, so the archive never stores them; each output keeps its own gate as well.
_NONCHARACTERS = "".join(chr(plane << 16 | 0xFFFE) + chr(plane << 16 | 0xFFFF) for plane in range(17))
_UNSAFE = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef{_NONCHARACTERS}]")


def clean_text(text: str) -> str:
    """``text`` without the characters no extracted text keeps (above); the rest, whitespace
    included, as it is."""
    return _UNSAFE.sub("", text)


# -- whitespace -----------------------------------------------------------------------------------


def normalize_space(text: str | None) -> str:
    """Fold every run of whitespace (ideographic and no-break spaces included) to one space.

    Characters themselves are kept: full-width letters and Japanese punctuation are content.
    """
    if not text:
        return ""
    return _WS.sub(" ", clean_text(text)).strip()


def normalize_block(text: str | None) -> str:
    """Like ``normalize_space`` but keeps single line breaks (from ``<br>``) inside a block."""
    if not text:
        return ""
    lines = (normalize_space(line) for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


# -- dates ----------------------------------------------------------------------------------------

_ERAS = {"令和": 2018, "平成": 1988, "昭和": 1925}
_MONTHS = {
    m.lower(): i
    for i, names in enumerate(
        [
            ("January", "Jan"),
            ("February", "Feb"),
            ("March", "Mar"),
            ("April", "Apr"),
            ("May",),
            ("June", "Jun"),
            ("July", "Jul"),
            ("August", "Aug"),
            ("September", "Sep", "Sept"),
            ("October", "Oct"),
            ("November", "Nov"),
            ("December", "Dec"),
        ],
        start=1,
    )
    for m in names
}
_NUMERIC_DATE = re.compile(r"(\d{4})\s*[/.\-年]\s*(\d{1,2})\s*[/.\-月]\s*(\d{1,2})")
_ERA_DATE = re.compile(r"(令和|平成|昭和)\s*(\d{1,2}|元)\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日")
_MONTH_FIRST = re.compile(r"([A-Za-z]{3,9})\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})")
_DAY_FIRST = re.compile(r"(\d{1,2})(?:st|nd|rd|th)?\s+([A-Za-z]{3,9})\.?,?\s+(\d{4})")


def iso_date(year: int, month: int, day: int) -> str | None:
    """``YYYY-MM-DD``, or None for a day that does not exist or a year outside 1900-2200."""
    try:
        return dt.date(year, month, day).isoformat() if 1900 <= year <= 2200 else None
    except ValueError:
        return None


def parse_date(text: str | None) -> str | None:
    """An ISO date (``YYYY-MM-DD``) from the ways NPI pages write dates, or None.

    Accepts ``2025/06/30``, ``2025.6.30``, ``2025年6月30日``, ``令和7年6月30日``, ``June 30, 2025``
    and ``30 June 2025``, in full- or half-width digits.
    """
    if not text:
        return None
    text = unicodedata.normalize("NFKC", text)  # safe here: only digits and separators matter
    if m := _NUMERIC_DATE.search(text):
        return iso_date(int(m[1]), int(m[2]), int(m[3]))
    if m := _ERA_DATE.search(text):
        year = 1 if m[2] == "元" else int(m[2])
        return iso_date(_ERAS[m[1]] + year, int(m[3]), int(m[4]))
    if (m := _MONTH_FIRST.search(text)) and m[1].lower() in _MONTHS:
        return iso_date(int(m[3]), _MONTHS[m[1].lower()], int(m[2]))
    if (m := _DAY_FIRST.search(text)) and m[2].lower() in _MONTHS:
        return iso_date(int(m[3]), _MONTHS[m[2].lower()], int(m[1]))
    return None


# -- one folding for search and rules ------------------------------------------------------------
# Search indexes and queries, and watcher rules, all go through these: every rule match is a search
# hit for the same term (tests/test_search_folding.py).

# English words as FTS5 sees them, in the archive's word index and the rules' in-memory one.
WORD_TOKENIZER = "porter unicode61 remove_diacritics 2"
CJK = re.compile(f"[{JAPANESE}]")
CJK_RUN = re.compile(f"[{JAPANESE}]+")
# A space after or before a CJK character (starts with the literal space: the regex engine skips
# to spaces instead of trying a lookbehind at every character).
_SPACE_NEAR_CJK = re.compile(f" (?:(?<=[{JAPANESE}] )|(?=[{JAPANESE}]))")


def fold(text: str) -> str:
    """Text as search indexes it and rules match it: NFKC (full-width ＡＩ is AI, half-width ｶﾀｶﾅ
    is カタカナ), runs of white space one space, and a space next to a Japanese character removed
    (PDF extraction and CMS text break Japanese lines mid-word: 半導 体 is 半導体)."""
    return _SPACE_NEAR_CJK.sub("", " ".join(unicodedata.normalize("NFKC", text).split()))


def word_view(folded: str) -> str:
    """What the English word index sees: CJK characters become spaces (word boundaries). Same
    length as ``folded``, so an offset in one is an offset in the other."""
    return CJK_RUN.sub(lambda m: " " * len(m.group()), folded)


def is_cjk(term: str) -> bool:
    """A term matched as a substring (it has a Japanese/Chinese character), not as words."""
    return CJK.search(term) is not None
