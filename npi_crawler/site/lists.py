"""An article-list page (``/research/<section>/index.html``) to its entries and pagination.

Found with the profile's ``list_entry`` and ``pagination`` selectors; when no ``list_entry``
selector matches, the built-in fallbacks below, each noted. A link that cannot be read is
skipped and listed, never the end of the page.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from lxml import etree

from npi_crawler.site.notes import FALLBACK_LIST_AREA_LINKS, FALLBACK_LIST_BOX, MISS_LIST_ENTRIES, nomatch
from npi_crawler.site.profile import DEFAULT_PROFILE, Profile
from npi_crawler.site.text import normalize_space
from npi_crawler.site.tree import first_links, has_class, html_tree
from npi_crawler.site.urls import LIST_PAGE_PATH, BadLink, canonical_url, is_web_url, resolve_link


@dataclass
class ListPage:
    entries: list[str]  # absolute article URLs, in page order, without repeats
    pages: list[tuple[str, str]]  # (label, absolute URL) of every pagination link
    notes: list[str] = field(default_factory=list)
    bad_links: list[str] = field(default_factory=list)  # hrefs that could not be read, skipped
    # profile key -> the selector (or fallback note) that found it, for `npi-crawler probe`
    sources: dict[str, str] = field(default_factory=dict)


def _article_link(href: str, page_url: str) -> str | None:
    """The article a list entry's link points to, None for any other link (another scheme, a list
    page, a PDF, an author's profile); raises ``BadLink`` for one that cannot be read."""
    if not href or href.startswith(("#", "javascript:", "mailto:", "tel:")):
        return None
    url = resolve_link(href, page_url)
    if not is_web_url(url):
        return None
    target = urlsplit(url)
    if LIST_PAGE_PATH.search(target.path) or target.path.lower().endswith(".pdf"):
        return None
    if "/experts/" in target.path:  # an author's profile in the entry, not an article
        return None
    return url


_LIST_FALLBACKS = (
    (f"//div[{has_class('box')}]/p/a[@href]", FALLBACK_LIST_BOX),
    (f"//*[{has_class('entry_list_area')}]//a[@href]", FALLBACK_LIST_AREA_LINKS),
)


def _entry_links(root: etree._Element, profile: Profile, notes: list[str], sources: dict[str, str]) -> list[str]:
    links, selector = first_links(profile, "list_entry", root)
    if selector is not None:
        sources["list_entry"] = selector.text
        return [href for _el, href in links]
    notes.append(nomatch("list_entry"))
    for xpath, note in _LIST_FALLBACKS:
        hrefs = [a.get("href", "").strip() for a in root.xpath(xpath)]
        if hrefs:
            notes.append(note)
            sources["list_entry"] = note
            return hrefs
    return []


def parse_list_page(html: str, url: str, profile: Profile = DEFAULT_PROFILE) -> ListPage:
    """Entries and pagination of one article-list page, found with ``profile``'s selectors. A
    link that cannot be read is skipped and listed in ``bad_links``; it never costs the rest of
    the page."""
    notes: list[str] = []
    sources: dict[str, str] = {}
    root = html_tree(html, notes)
    entries: list[str] = []
    pages: list[tuple[str, str]] = []
    bad: list[str] = []
    for href in _entry_links(root, profile, notes, sources):
        try:
            if article := _article_link(href, url):
                entries.append(article)
        except BadLink:
            bad.append(href)
    if not entries:
        notes.append(MISS_LIST_ENTRIES)
    links, selector = first_links(profile, "pagination", root)
    if selector is not None:
        sources["pagination"] = selector.text
    for a, href in links:
        try:
            target = resolve_link(href, url)
        except BadLink:
            bad.append(href)
            continue
        if is_web_url(target):  # not javascript:, mailto: ...
            pages.append((normalize_space(a.text_content()) if a is not None else "", target))
    return ListPage(
        entries=list(dict.fromkeys(entries)), pages=pages, notes=notes, bad_links=bad, sources=sources
    )


def page_number(label: str) -> int | None:
    """The page number a pagination link shows: ``2``, ``[2]``, ``Page 2``, ``２``."""
    m = re.fullmatch(r"\D{0,8}?(\d{1,4})\D{0,3}", unicodedata.normalize("NFKC", label).strip())
    return int(m[1]) if m else None


def next_page(list_page: ListPage, current_url: str, current_number: int) -> str | None:
    """The URL of the page after ``current_number``, from the numbered pagination links.

    Falls back to a "next"-labelled link when the pager has no numbers.
    """
    current = canonical_url(current_url)
    for label, target in list_page.pages:
        if page_number(label) == current_number + 1 and target != current:
            return target
    for label, target in list_page.pages:
        if re.search(r"next|次|›|»|>|＞", label, re.I) and target != current:
            return target
    return None
