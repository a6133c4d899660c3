"""Fitting table output to the terminal: widths in columns, where a Japanese character takes two.

Only what a person reads on a terminal is fitted. A pipe or a file gets whole lines (for grep,
less -S, a spreadsheet), unless ``COLUMNS`` is set: the usual way to ask for a width.
"""

from __future__ import annotations

import os
import shutil
import sys
import unicodedata
from typing import TextIO

ELLIPSIS = "…"
MIN_COLUMNS = 40  # narrower than this, fitting would leave nothing readable


def char_width(char: str) -> int:
    """Columns a character takes: 2 for East Asian wide and full-width, 0 for combining marks."""
    if unicodedata.combining(char):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def display_width(text: str) -> int:
    return sum(char_width(c) for c in text)


def fit(text: str, columns: int) -> str:
    """``text`` cut to ``columns``, ending with … when something was cut."""
    if display_width(text) <= columns:
        return text
    budget, used, end = columns - 1, 0, 0
    while end < len(text) and used + char_width(text[end]) <= budget:
        used += char_width(text[end])
        end += 1
    return text[:end] + ELLIPSIS


def fit_around(text: str, columns: int, anchor: int) -> str:
    """``text`` cut to ``columns`` keeping ``text[anchor:]`` in view: what comes before it is cut
    to about a third of the width (a snippet's first match stays visible), the rest on the right."""
    if display_width(text) <= columns:
        return text
    start, used = anchor, 0
    while start > 0 and used + char_width(text[start - 1]) <= columns // 3:
        start -= 1
        used += char_width(text[start])
    if start == 0:
        return fit(text, columns)
    return ELLIPSIS + fit(text[start:], columns - 1)


def output_columns(stream: TextIO | None = None) -> int | None:
    """The width to fit table output to: ``COLUMNS`` when set, the terminal's width when
    ``stream`` (default stdout) is a terminal, else None (whole lines)."""
    stream = stream or sys.stdout
    if os.environ.get("COLUMNS", "").strip().isdigit() or stream.isatty():
        return max(shutil.get_terminal_size().columns, MIN_COLUMNS)
    return None
