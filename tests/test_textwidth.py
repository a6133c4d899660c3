"""The terminal: fitting output to its width (a Japanese character takes two columns), wrapping\nlines at word boundaries, and the gate that removes what a terminal would act on."""

from __future__ import annotations

import io
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from npi_crawler.cli.textwidth import TerminalGate, display_width, fit, fit_around, terminal_safe, wrap

# Latin, kana and kanji, full-width forms, a combining accent
TEXT = st.text(alphabet=st.sampled_from("ab c,.[]…半導体の課題ｱＡé\u0301"), max_size=120)


def columns_of(text: str) -> int:
    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text
    )


def test_wide_characters_take_two_columns():
    assert display_width("半導体 AI") == 9 and display_width("ｱＡ") == 3 and display_width("e\u0301") == 1
    assert fit("半導体の課題", 7) == "半導体…" and fit("semiconductors", 6) == "semic…"


@given(TEXT, st.integers(min_value=2, max_value=80))
def test_fit_never_exceeds_the_width_and_keeps_a_prefix(text, columns):
    fitted = fit(text, columns)
    assert columns_of(fitted) <= columns
    assert fitted == text or (fitted.endswith("…") and text.startswith(fitted[:-1]))


@given(TEXT, TEXT, st.integers(min_value=10, max_value=80))
def test_fit_around_keeps_the_anchor_in_view(before, after, columns):
    text = before + "X" + after  # the only X: where the first match of a snippet would be
    fitted = fit_around(text, columns, len(before))
    assert columns_of(fitted) <= columns and "X" in fitted
    assert fitted == text or "…" in fitted


# -- the terminal gate ---------------------------------------------------------------------------

LINE = st.text(alphabet=st.sampled_from("ab c,.[]…半導体の課題ｱＡ、。」 http://x.y/z"), max_size=300)


@given(LINE, st.integers(min_value=8, max_value=120), st.integers(min_value=0, max_value=6))
def test_wrap_fits_keeps_every_word_and_never_breaks_inside_one(text, columns, indent):
    line = " " * indent + text.strip()
    lines = wrap(line, columns)
    for piece in lines:  # too wide only when one unbreakable word is alone on its line
        assert columns_of(piece) <= columns or " " not in piece.strip()
    assert "".join(p.strip() for p in lines).replace(" ", "") == line.replace(" ", "")
    assert all(piece.strip() for piece in lines) or lines == [line]


def test_wrap_hangs_continuations_under_the_value_and_keeps_japanese_marks_on_their_line():
    assert wrap("  requests   126 (29 list pages, 60 article pages, 25 PDFs, 11 expert pages)", 50) == [
        "  requests   126 (29 list pages, 60 article",
        "             pages, 25 PDFs, 11 expert pages)",
    ]
    lines = wrap("match: 経済安全保障と半導体の課題について検討した。次の段落。", 30)
    assert all(columns_of(line) <= 30 for line in lines)
    assert not any(line.strip().startswith(("。", "、")) for line in lines)


HOSTILE = "title\x1b]0;owned\x07 \x1b[2J\x9b31m\r\x00\u202egnp.exe\x7f end\tof\nline"


def test_terminal_safe_removes_what_a_terminal_acts_on_and_keeps_tab_newline_and_bold():
    assert terminal_safe(HOSTILE) == "title]0;owned [2J31mgnp.exe end\tof\nline"
    assert terminal_safe("\x1b[1mbold\x1b[0m 半導体") == "\x1b[1mbold\x1b[0m 半導体"


def test_the_gate_wraps_human_lines_passes_bytes_and_leaves_data_whole():
    out = io.BytesIO()
    stream = io.TextIOWrapper(out, encoding="ascii", write_through=True)
    gate = TerminalGate(stream, columns=20)
    gate.write("one two three four five six " + HOSTILE + " 半導体\n")
    gate.buffer.write(b"\x1b[2J raw bytes\n")  # a page as served: byte for byte
    gate.columns = None  # as whole_lines() sets it for JSON and CSV
    gate.write('{"snippet": "a long line that must stay one line"}\n')
    gate.flush()
    shown = out.getvalue().decode("ascii")
    lines = shown.splitlines()
    assert lines[0] == "one two three four" and "\x1b]" not in shown and "\x07" not in shown
    assert "???" in shown  # Japanese on an ASCII stream: replaced, never a traceback
    assert "\x1b[2J raw bytes" in shown and lines[-1] == '{"snippet": "a long line that must stay one line"}'
    with pytest.raises(TypeError):
        gate.write(b"bytes")  # so that click finds the buffer for bytes
