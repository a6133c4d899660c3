"""The site profile: every selector the parser uses, as data a user can override.

A profile maps each key of ``KEYS`` to a list of selectors tried in order; the first that matches
something wins, and only when none does the parser takes its built-in fallbacks (``og:title``, the
date in the URL, ...). ``DEFAULT_SELECTORS`` is the markup documented for npi.or.jp; the settings
file's ``[selectors]`` table (or the Scrapy setting ``NPI_SELECTORS``, a dict) replaces keys one by
one. A selector is CSS (lxml's cssselect, HTML rules) or, after the prefix ``xpath:``, an XPath 1.0
expression, which may also select an attribute or text (``xpath://time/@datetime``).

Every selector is compiled, and evaluated once on an empty page, when the profile is loaded: one
that does not compile is a ``SettingsError`` (one line, exit 2) before anything is fetched. A
selector the settings name is also timed on a page of NPI's shape of up to 20,000 elements
(``site.cost``): one that costs more than a second of CPU there is refused the same way.

When every selector of a key matches nothing on a page, the parser notes ``nomatch/<key>``
(``site.notes.nomatch``) in the page's ``parse_notes`` (and the stat ``npi/parse/nomatch/<key>``):
the layout alarm and ``probe`` name the key from it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import cssselect
from lxml import etree
from lxml.cssselect import CSSSelector

from npi_crawler.errors import SettingsError
from npi_crawler.site.cost import BUDGET_SECONDS, SAMPLE_ELEMENTS, too_slow

XPATH_PREFIX = "xpath:"

# key -> (where its selectors are evaluated, what they select). In the order a page is read.
KEYS: dict[str, str] = {
    "list_entry": "list page: each entry's link to its article (or an element holding it)",
    "pagination": "list page: the links to the list's other pages (their text is the page number)",
    "article": "article page: the element holding the article; the keys below look inside it",
    "title": "in the article: the title (date elements inside it are left out)",
    "date": "in the article: the publication date (its datetime attribute, else its text)",
    "body": "in the article: the element holding the body text",
    "pdf_link": "in the article: links to its PDFs (then any link to a .pdf in the body)",
    "author_link": "in the article: links to the authors' profile pages",
    "author_name": "in an author link (or the box around it): the author's name",
    "drop": "in the body: boilerplate left out of the text (every match, not the first)",
}

DEFAULT_SELECTORS: dict[str, tuple[str, ...]] = {
    "list_entry": ("#main > div.entry_list_area > div > div > p > a[href]",),
    "pagination": ("a.link_page[href]",),
    "article": ("#main",),
    "title": ("h3.ttl_second",),
    "date": ("h3.ttl_second .date",),
    "body": ("#main > div.detail_area", "div.detail_area"),
    "pdf_link": ("a.btn_pdf[href]",),
    "author_link": ('a.btn_bluecorner[href*="/experts/"]',),
    "author_name": (".name",),
    "drop": ("nav", "aside", "footer", ".btn_pdf", ".btn_bluecorner"),
}

# A page without these is read through fallbacks: ``probe`` exits non-zero when one misses.
REQUIRED_LIST_KEYS = ("list_entry",)
REQUIRED_ARTICLE_KEYS = ("article", "title", "date", "body")
_EMPTY_ALLOWED = frozenset({"drop"})  # `drop = []`: leave out no more than the built-in rules
_PROBE_PAGE = etree.fromstring("<html><body><p class='x'>x</p></body></html>")


@dataclass(frozen=True)
class Selector:
    """One selector as written (``text``) and compiled."""

    text: str
    compiled: etree.XPath

    def select(self, node: etree._Element) -> list[Any]:
        """Elements (or, for an XPath, strings) matched under ``node``, in document order."""
        try:
            found = self.compiled(node)
        except etree.XPathError:  # checked on a probe page at load; a page may still surprise
            return []
        if isinstance(found, list):
            return [f for f in found if not isinstance(f, str) or f.strip()]
        return [found] if isinstance(found, str) and found.strip() else []


@dataclass(frozen=True)
class Profile:
    """Every key's selectors, and which keys the user overrode."""

    selectors: Mapping[str, tuple[Selector, ...]]
    overridden: frozenset[str] = frozenset()

    def first(self, key: str, node: etree._Element) -> tuple[list[Any], Selector | None]:
        """What the first selector of ``key`` that matches anything under ``node`` matches."""
        for selector in self.selectors[key]:
            found = selector.select(node)
            if found:
                return found, selector
        return [], None

    def every(self, key: str, node: etree._Element) -> list[Any]:
        """What any selector of ``key`` matches under ``node`` (repeats once)."""
        found: dict[Any, None] = {}
        for selector in self.selectors[key]:
            found.update(dict.fromkeys(selector.select(node)))
        return list(found)

    def texts(self, key: str) -> list[str]:
        return [s.text for s in self.selectors[key]]


# XPath 1.0's functions and node tests: libxml2 looks a function up only when a step reaches it,
# so an unknown one (a typo) would pass the trial run on an empty page and fail on every real one.
_XPATH_FUNCTIONS = frozenset(
    "last position count id local-name namespace-uri name string concat starts-with contains "
    "substring-before substring-after substring string-length normalize-space translate boolean "
    "not true false lang number sum floor ceiling round node text comment processing-instruction".split()
)
_STRING_LITERAL = re.compile(r"'[^']*'|\"[^\"]*\"")
_FUNCTION_CALL = re.compile(r"(?<![\w:@$.-])([A-Za-z_][\w.-]*(?::[A-Za-z_][\w.-]*)?)\s*\(")


def _unknown_function(expression: str) -> str | None:
    calls = _FUNCTION_CALL.findall(_STRING_LITERAL.sub("''", expression))
    return next((name for name in calls if name not in _XPATH_FUNCTIONS), None)


def compile_selector(text: str, where: str) -> Selector:
    """``text`` compiled (CSS, or XPath after ``xpath:``), or SettingsError naming ``where``."""
    if text.startswith(XPATH_PREFIX):
        expression, kind = text[len(XPATH_PREFIX) :].strip(), "XPath"
        build: Any = etree.XPath
    else:
        expression, kind = text.strip(), "CSS selector"

        def build(css: str) -> etree.XPath:
            return CSSSelector(css, translator="html")

    if not expression:
        raise SettingsError(f"{where}: an empty selector; write CSS, or XPath after {XPATH_PREFIX!r}")
    try:
        compiled = build(expression)
        compiled(_PROBE_PAGE)  # unknown prefixes and variables fail only when run
        if kind == "XPath" and (name := _unknown_function(expression)):
            raise etree.XPathEvalError(f"unknown function {name}()")
    except (cssselect.SelectorError, etree.XPathError) as exc:
        hint = f"; XPath needs the prefix {XPATH_PREFIX!r}" if kind == "CSS selector" and text.lstrip().startswith("/") else ""
        raise SettingsError(f"{where}: {text!r} is not a valid {kind} ({exc}){hint}") from None
    return Selector(text=text, compiled=compiled)


def _selector_texts(value: Any, key: str, where: str) -> list[str]:
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, (list, tuple)) or not all(isinstance(t, str) for t in texts):
        raise SettingsError(f"{where} '{key}': must be a list of selectors (strings)")
    if not texts and key not in _EMPTY_ALLOWED:
        raise SettingsError(f"{where} '{key}': must list at least one selector")
    return list(texts)


@cache
def _cost_problem(key: str, text: str) -> str | None:
    """Why ``key``'s selector ``text`` is too slow to run on every page, or None. Kept per
    process: the CLI, the crawl's check and the spider load the same table."""
    if slow := too_slow(compile_selector(text, key).compiled, key):
        seconds, elements = slow
        return (
            f"{text!r} is too slow: {seconds:.1f} s of CPU on a page of {elements:,} elements, and at most "
            f"{BUDGET_SECONDS:g} s is allowed on pages of up to {SAMPLE_ELEMENTS:,}; make it narrower (an id or "
            "a class, a relative path './/', no count() or // inside a condition)"
        )
    return None


def load_profile(overrides: Mapping[str, Any] | None = None, where: str = "[selectors]") -> Profile:
    """The default profile with ``overrides`` (key -> selector or list of selectors) replacing
    whole keys. Raises SettingsError, naming ``where`` and the key, for an unknown key, a value
    that is not a list of strings, a selector that does not compile or one too slow to run on
    every page (``site.cost``)."""
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(KEYS))
    if unknown:
        raise SettingsError(f"{where}: unknown key '{unknown[0]}'; the keys are {', '.join(KEYS)}")
    selectors = {}
    for key, defaults in DEFAULT_SELECTORS.items():
        texts: Iterable[str] = _selector_texts(overrides[key], key, where) if key in overrides else defaults
        selectors[key] = tuple(compile_selector(t, f"{where} '{key}'") for t in texts)
        for text in texts if key in overrides else ():
            if problem := _cost_problem(key, text):
                raise SettingsError(f"{where} '{key}': {problem}")
    return Profile(selectors=selectors, overridden=frozenset(overrides))


def profile_setting(value: Any) -> Profile:
    """The profile the Scrapy setting ``NPI_SELECTORS`` asks for: a dict, or its JSON text as
    ``-s NPI_SELECTORS='{"title": ["h1"]}'`` gives it."""
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else {}
        except ValueError as exc:
            raise SettingsError(f"NPI_SELECTORS is not a JSON object ({exc}); write {{\"key\": [\"selector\"]}}") from None
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        raise SettingsError("NPI_SELECTORS must be a dict of profile key -> list of selectors")
    return load_profile(value, where="NPI_SELECTORS")


DEFAULT_PROFILE = load_profile()
