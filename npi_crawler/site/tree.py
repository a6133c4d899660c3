"""A page parsed with lxml, and the link helpers every page reader (lists, articles, experts) shares."""

from __future__ import annotations

from typing import Any

import lxml.html
from lxml import etree

from npi_crawler.site.notes import TRUNCATED_PARSER_LIMIT
from npi_crawler.site.profile import Profile, Selector


def has_class(name: str) -> str:
    """An XPath predicate: the element has the class ``name`` (among others)."""
    return f'contains(concat(" ", normalize-space(@class), " "), " {name} ")'


def html_tree(html: str, notes: list[str]) -> etree._Element:
    """The parsed page. libxml2 stops at its resource limits (elements nested 256 deep, a text
    node over 10 MB) and drops the rest of the page: noted as ``truncated/parser_limit``."""
    if not html or not html.strip():
        return lxml.html.fromstring("<html></html>")
    parser = lxml.html.HTMLParser()
    try:
        try:
            root = lxml.html.fromstring(html, parser=parser)
        except ValueError:
            # lxml refuses str input that declares an encoding; the text is already decoded.
            root = lxml.html.fromstring(html.encode("utf-8", "replace"), parser=parser)
    except etree.ParserError:  # nothing parseable at all
        return lxml.html.fromstring("<html></html>")
    if any(error.type_name == "ERR_RESOURCE_LIMIT" for error in parser.error_log):
        notes.append(TRUNCATED_PARSER_LIMIT)
    return root


def elements(found: list[Any]) -> list[etree._Element]:
    """The elements of a selector's matches (an XPath may also select strings)."""
    return [f for f in found if not isinstance(f, str)]


def links_in(found: list[Any]) -> list[tuple[etree._Element | None, str]]:
    """(element, href) of what a link key's selector matched: an element with an href, else the
    first link inside it; or an href an XPath selected as a string."""
    links: list[tuple[etree._Element | None, str]] = []
    for item in found:
        if isinstance(item, str):
            links.append((None, item.strip()))
            continue
        if item.get("href") is None:
            inner = item.xpath(".//a[@href]")
            item = inner[0] if inner else None
        if item is not None:
            links.append((item, item.get("href", "").strip()))
    return links


def first_links(
    profile: Profile, key: str, node: etree._Element
) -> tuple[list[tuple[etree._Element | None, str]], Selector | None]:
    """The links of the first selector of ``key`` that finds any under ``node``."""
    for selector in profile.selectors[key]:
        if links := links_in(selector.select(node)):
            return links, selector
    return [], None
