"""What a selector of the operator's costs, checked when the profile is loaded (issue 23.12).

An XPath can be quadratic in the page: ``xpath://*[count(//*) > 0]`` took 66 s on each page of
20,000 elements, and a crawl evaluating it ignored SIGTERM for as long (libxml2 cannot be
interrupted, and Python's signal handlers wait for it). So every selector the settings name is
tried, before anything is fetched, on a page shaped like NPI's (menus, a list of entries, an
article with paragraphs, lists, a table and author boxes) of 64 elements, then twice as many,
up to ``SAMPLE_ELEMENTS``, each step evaluated as the parser evaluates it (``author_name`` from
each author box); one that takes more than ``BUDGET_SECONDS`` of CPU at any size is refused.
Doubling stops at the first size over the budget, so the check itself takes a fraction of a
second even for a selector that would take minutes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import cache
from typing import Any

import lxml.html
from lxml import etree

# An NPI page has a few hundred to a few thousand elements; 20,000 is the hostile probe's page.
SAMPLE_ELEMENTS = 20_000
BUDGET_SECONDS = 1.0
# From a page of 64 elements up, doubling: a selector whose cost grows as the cube of the page
# (count(//*[count(//*) > 0])) passes the budget at one step by at most 8 times.
SIZES = (*(64 << k for k in range(9)), SAMPLE_ELEMENTS)

# One unit of the sample: a list entry, a paragraph with inline markup, a list item, a table
# row, an author box and a menu link, in the places NPI's pages have them (21 elements).
_UNIT = {
    "menu": '<li><a href="/research/policy/index.html">政策提言</a></li>',
    "entries": '<div class="box"><p class="date">2025/06/30</p><p><a href="/research/2025/06/30150000.html">'
    "経済安全保障 <span>報告</span></a></p></div>",
    "body": '<p>　本文 <a href="/research/data/x.pdf">PDF</a> <strong>半導体</strong><br>続き</p>'
    "<ul><li>項目 <em>a</em></li></ul><table><tr><td>1</td><td>2</td></tr></table>",
    "authors": '<div class="author"><a class="btn_bluecorner" href="/experts/abc.html">'
    '<div class="name b05">山田 花子</div></a></div>',
}
_UNIT_ELEMENTS = 21


@cache
def sample_page(elements: int) -> etree._Element:
    """A page shaped like NPI's with about ``elements`` elements, parsed as pages are."""
    units = max(1, elements // _UNIT_ELEMENTS)
    part = {name: html * units for name, html in _UNIT.items()}
    html = f"""<!DOCTYPE html><html><head><title>研究 | 中曽根康弘世界平和研究所</title>
<meta property="og:title" content="研究 | NPI"></head><body>
<header><nav><ul>{part["menu"]}</ul></nav></header>
<div id="main"><h3 class="ttl_second b30"><div class="date">2025/06/30</div><div>題名</div></h3>
<div class="entry_list_area"><div><div>{part["entries"]}</div></div></div>
<div class="detail_area"><div class="b0">{part["body"]}</div>
<p class="b20"><a class="btn_pdf" href="/research/data/x.pdf">PDF</a></p>{part["authors"]}</div>
<p class="link_page"><a class="link_page" href="index_2.html">2</a></p></div>
<aside><p>Latest articles</p></aside><footer><p>Copyright</p></footer></body></html>"""
    return lxml.html.fromstring(html)


@cache
def _scopes(key: str, elements: int) -> tuple[etree._Element, ...]:
    """Where the parser evaluates ``key``'s selectors on the sample page: an author's name in each
    author link, then in the box around it and the one around that while they hold that link
    alone (site.articles._expert_box); every other key once, on the page."""
    root = sample_page(elements)
    if key != "author_name":
        return (root,)
    links = root.xpath("//a[@class='btn_bluecorner']")
    holding: dict[etree._Element, int] = {}
    for link in links:
        for el in (link, *link.iterancestors()):
            holding[el] = holding.get(el, 0) + 1
    boxes = ((link, link.getparent(), link.getparent().getparent()) for link in links)
    return tuple(el for levels in boxes for el in levels if holding.get(el) == 1)


def cpu_seconds(select: Callable[[etree._Element], Any], key: str, elements: int) -> float:
    """CPU seconds ``select`` takes on the sample page of ``elements``, evaluated as for ``key``."""
    scopes = _scopes(key, elements)
    start = time.thread_time()
    for scope in scopes:
        try:
            select(scope)
        except etree.XPathError:  # compiled and checked already; the cost is what is measured
            pass
    return time.thread_time() - start


def too_slow(select: Callable[[etree._Element], Any], key: str) -> tuple[float, int] | None:
    """(CPU seconds, elements) of the first sample size at which ``select`` takes more than
    ``BUDGET_SECONDS``, or None when it stays within it up to ``SAMPLE_ELEMENTS``."""
    for elements in SIZES:
        if (seconds := cpu_seconds(select, key, elements)) > BUDGET_SECONDS:
            return seconds, elements
    return None
