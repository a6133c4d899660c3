"""Fitting search output to a terminal: widths where a Japanese character takes two columns."""

from __future__ import annotations

import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from npi_crawler.cli.textwidth import display_width, fit, fit_around

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
