"""The terminal: what the commands write passes one gate (``TerminalGate``) that removes the
characters a terminal acts on and fits human output to its width, where a Japanese character takes
two columns.

Only what a person reads on a terminal is fitted. A pipe or a file gets whole lines (for grep,
less -S, a spreadsheet), unless ``COLUMNS`` is set: the usual way to ask for a width. Data (JSON,
CSV, citations) is never wrapped (``whole_lines``).
"""

from __future__ import annotations

import io
import os
import re
import shutil
import sys
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

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


def _pad(text: str, width: int, align: str) -> str:
    space = " " * (width - display_width(text))
    return space + text if align == ">" else text + space


def fit_table(rows: list[list[str]], align: str, columns: int | None, indent: int = 2) -> list[str]:
    """A table (``rows[0]`` its header) as lines: columns two spaces apart, each aligned as
    ``align`` says (``<`` or ``>`` per column). When it is wider than ``columns``, the columns
    that do not fit go on the next line of the same row (and the next), under the first column's
    values: every row stays together, every column stays aligned."""
    widths = [max(display_width(row[i]) for row in rows) for i in range(len(rows[0]))]
    bands: list[list[int]] = [[]]
    x, hang = indent, indent + widths[0] + 2
    for i, width in enumerate(widths):
        if bands[-1] and columns and x + 2 + width > columns:
            bands.append([])
            x = hang - 2
        x += (2 if bands[-1] else 0) + width
        bands[-1].append(i)
    lines = []
    for row in rows:
        for n, band in enumerate(bands):
            cells = "  ".join(_pad(row[i], widths[i], align[i]) for i in band)
            lines.append((" " * (indent if n == 0 else hang) + cells).rstrip())
    return lines


def output_columns(stream: TextIO | None = None) -> int | None:
    """The width to fit table output to: ``COLUMNS`` when set, the terminal's width when
    ``stream`` (default stdout) is a terminal, else None (whole lines)."""
    stream = stream or sys.stdout
    if os.environ.get("COLUMNS", "").strip().isdigit() or stream.isatty():
        return max(shutil.get_terminal_size().columns, MIN_COLUMNS)
    return None


# -- the terminal gate ----------------------------------------------------------------------------
# Text from the archive (titles, PDF text, error messages of a site) reaches the terminal: one
# ESC ] 0 ; ... BEL retitles the window, ESC [ 2 J clears it. Every text the commands write to
# stdout and stderr passes this gate: C0 controls but tab and newline, DEL, the C1 controls and the
# bidirectional overrides and isolates (which reorder what a line shows) are removed. What stays
# is the bold on/off that click.style writes for the command itself.
_STYLE = ("\x1b[1m", "\x1b[0m")
_SGR = re.compile(r"\x1b\[[01]m")
_UNSAFE = re.compile("\x1b\\[[01]m|[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# A line never starts with closing punctuation or a small kana (Japanese line breaking, kinsoku).
_NO_LINE_START = set("、。，．,.!?！？:;：；)]}」』）〕］｝〉》ー・々ゝゞヽヾっゃゅょァィゥェォッャュョ…")


def terminal_safe(text: str) -> str:
    """``text`` without the characters a terminal acts on (see above)."""
    return _UNSAFE.sub(lambda m: m[0] if m[0] in _STYLE else "", text)


def visible_width(text: str) -> int:
    """Columns ``text`` takes on a terminal, click's bold on/off taking none."""
    return display_width(_SGR.sub("", text))


def _hanging_indent(line: str, columns: int) -> int:
    """Where a wrapped line's continuations start: under the value of a ``label   value`` line
    (after its first run of two or more spaces), else two columns in from the line's indent."""
    indent = len(line) - len(line.lstrip(" "))
    m = re.search(r"\S {2,}(?=\S)", line[indent:])
    hang = display_width(line[: indent + m.end()]) if m else indent + 2
    return hang if hang <= columns // 2 else min(indent + 2, columns // 2)


def _cut(text: str, budget: int) -> int:
    """Where to cut ``text`` so that its head fits ``budget`` columns: after a space, or between
    two characters of which one is wide (Japanese breaks anywhere but before its closing marks and
    small kana), never inside the leading indent. When no head fits: at the first break (a URL is never broken
    inside; the terminal wraps it), or nowhere."""
    used, best, started = 0, 0, False
    for i, char in enumerate(text):
        wide = char_width(char) == 2 or (i > 0 and char_width(text[i - 1]) == 2)
        if started and char != " " and (text[i - 1] == " " or (wide and char not in _NO_LINE_START)):
            if used > budget:
                return best or i
            best = i
        used += char_width(char)
        started = started or char != " "
    return best if used > budget and best else len(text)


def wrap(line: str, columns: int) -> list[str]:
    """A line cut into lines of at most ``columns`` at word boundaries, wide characters counting
    two; continuations hang under the line's value. A word wider than the line stays whole."""
    if visible_width(line) <= columns:
        return [line]
    line = _SGR.sub("", line)
    hang = _hanging_indent(line, columns)
    out: list[str] = []
    rest = line
    while rest:
        prefix = " " * hang if out else ""
        budget = columns - len(prefix)
        cut = len(rest) if display_width(rest) <= budget else _cut(rest, budget)
        out.append(prefix + rest[:cut].rstrip(" "))
        rest = rest[cut:].lstrip(" ")
    return out


class TerminalGate(io.TextIOBase):
    """A text stream in front of stdout or stderr: every write passes ``terminal_safe``; with
    ``columns``, every whole line is also wrapped to that width (a command that writes data
    (JSON, CSV, citations) calls ``whole_lines`` first). Bytes go to ``buffer`` untouched (a page
    as served, a feed: byte for byte). Characters the stream's encoding lacks become ``?``
    rather than a traceback."""

    def __init__(self, stream: TextIO, columns: int | None = None):
        self.stream = stream
        self.columns = columns
        self._pending = ""

    # What click checks before it writes (an "ascii" stream it rewraps).
    encoding = "utf-8"
    # What click compares with the errors it asks for ("strict" in open_file and its text
    # streams): anything else and click writes to ``buffer``, past the gate. The gate itself
    # never raises on a character the stream cannot encode (``_emit``).
    errors = "strict"

    @property
    def buffer(self) -> Any:
        return getattr(self.stream, "buffer", None)

    @property
    def unfiltered(self) -> TextIO:
        """The stream itself, for what the command writes of its own (the progress line's ESC [ K)."""
        return self.stream

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        safe = terminal_safe(text)
        if self.columns:
            lines = (self._pending + safe).split("\n")
            self._pending = lines.pop()
            safe = "".join(part + "\n" for line in lines for part in wrap(line, self.columns))
        self._emit(safe)
        return len(text)

    def flush(self) -> None:
        if self._pending:
            self._emit(self._pending)  # a line without its newline yet (a prompt): as it is
            self._pending = ""
        self.stream.flush()

    def _emit(self, text: str) -> None:
        if not text:
            return
        try:
            self.stream.write(text)
        except UnicodeEncodeError:
            encoding = getattr(self.stream, "encoding", None) or "ascii"
            self.stream.write(text.encode(encoding, "replace").decode(encoding))


def whole_lines() -> None:
    """This command writes data (JSON, CSV, citations): no wrapping of its standard output."""
    if isinstance(sys.stdout, TerminalGate):
        sys.stdout.flush()
        sys.stdout.columns = None


@contextmanager
def terminal_gate() -> Iterator[None]:
    """Put the gate in front of stdout (wrapping to ``output_columns``) and stderr (its one-line
    errors are never wrapped) while a command runs."""
    saved = sys.stdout, sys.stderr
    sys.stdout = TerminalGate(saved[0], output_columns(saved[0]))
    sys.stderr = TerminalGate(saved[1])
    try:
        yield
    finally:
        for gate in (sys.stdout, sys.stderr):
            if isinstance(gate, TerminalGate):
                gate.flush()
        sys.stdout, sys.stderr = saved
