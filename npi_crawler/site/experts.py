"""Pure parsing of an expert's page (``/experts/….html``, ``/en/experts/….html``): who wrote an
article, with the position the institute gives them.

What is known of the real page (see shared/npi-site.md and another public crawler of the site):
the name in ``div.name.b05``; the position in a ``div.date`` inside the ``h3`` heading of the
first block of ``#main`` (the slot an article uses for its date); paragraphs after it, among them
the areas of expertise. Each field has a fallback, and every fallback taken or field missed is
listed in ``notes`` (``fallback/expert_name_title``, ``miss/expert_title``...), as for articles.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from lxml import etree

from npi_crawler.site.notes import (
    FALLBACK_EXPERT_NAME_CLASS,
    FALLBACK_EXPERT_NAME_TITLE,
    FALLBACK_EXPERT_TITLE_POST,
    FALLBACK_NO_MAIN,
    MISS_EXPERT_NAME,
    MISS_EXPERT_TITLE,
)
from npi_crawler.site.text import normalize_space
from npi_crawler.site.tree import has_class, html_tree
from npi_crawler.site.urls import canonical_url, lang_from_url

# Headings of the sections of an expert page: what follows them, by language.
_AREA_HEADING = re.compile(
    r"専門|研究分野|研究領域|expertise|research (?:area|field|interest)|specialt", re.I
)
_BIO_HEADING = re.compile(r"略歴|経歴|プロフィール|profile|biography|career", re.I)
_NAVIGATION = re.compile(r"\b(btn_\w+|back|sns_share|side_\w+)\b")  # a back link, share buttons...
_MAX_TITLE = 120  # longer text in the title slot is a paragraph, not a position


def _main(root: etree._Element) -> etree._Element:
    found = root.xpath('//*[@id="main"]')
    return found[0] if found else root


def _strip_site_name(title: str) -> str:
    """``山田 花子 | 中曽根康弘世界平和研究所`` -> ``山田 花子``: a name holds no bar."""
    return normalize_space(re.split(r"[|｜]", title, maxsplit=1)[0])


@dataclass
class ParsedExpert:
    url: str
    lang: str  # "ja" or "en", from the URL
    name: str | None
    title: str | None  # position and affiliation as the page gives them, e.g. 上席研究員
    areas: str | None = None  # areas of expertise, as one line
    biography: str | None = None  # the career paragraph(s), blocks separated by a blank line
    notes: list[str] = field(default_factory=list)


def _text(el: etree._Element) -> str:
    return normalize_space(el.text_content())


def _name(main: etree._Element, root: etree._Element, notes: list[str]) -> str | None:
    for el in main.xpath(f".//*[{has_class('name')}][{has_class('b05')}]") + main.xpath(
        f".//*[{has_class('name')}]"
    ):
        if name := _text(el):
            if not el.get("class", "").split().count("b05"):
                notes.append(FALLBACK_EXPERT_NAME_CLASS)
            return name
    for title in root.xpath('//meta[@property="og:title"]/@content') + root.xpath("//title/text()"):
        if name := _strip_site_name(title):
            notes.append(FALLBACK_EXPERT_NAME_TITLE)
            return name
    notes.append(MISS_EXPERT_NAME)
    return None


def _title(main: etree._Element, notes: list[str]) -> str | None:
    for el in main.xpath(f".//h3//div[{has_class('date')}]"):
        if (text := _text(el)) and len(text) <= _MAX_TITLE:
            return text
    for el in main.xpath(f".//*[{has_class('post')} or {has_class('position')}]"):
        if (text := _text(el)) and len(text) <= _MAX_TITLE:
            notes.append(FALLBACK_EXPERT_TITLE_POST)
            return text
    notes.append(MISS_EXPERT_TITLE)
    return None


def _section(main: etree._Element, heading: re.Pattern[str]) -> str | None:
    """The paragraphs after the first heading matching ``heading``, up to the next heading."""
    for h in main.xpath(".//h2 | .//h3 | .//h4 | .//h5 | .//dt"):
        if not heading.search(_text(h)) or len(_text(h)) > 40:
            continue
        blocks = []
        for sibling in h.itersiblings():
            if not isinstance(sibling.tag, str):
                continue
            if sibling.tag.lower() in ("h2", "h3", "h4", "h5", "dt") or _NAVIGATION.search(
                sibling.get("class", "")
            ):
                break
            if text := normalize_space(sibling.text_content()):
                blocks.append(text)
        return "\n\n".join(blocks) or None
    return None


def parse_expert_page(html: str, url: str) -> ParsedExpert:
    """Name, position, areas and biography of one expert page; misses are in ``notes``."""
    notes: list[str] = []
    root = html_tree(html, notes)  # the same parser as articles: a truncated page is noted
    main = _main(root)
    if main is root:
        notes.append(FALLBACK_NO_MAIN)
    name = _name(main, root, notes)
    return ParsedExpert(
        url=canonical_url(url),
        lang=lang_from_url(url),
        name=name,
        title=_title(main, notes),
        areas=_section(main, _AREA_HEADING),
        biography=_section(main, _BIO_HEADING),
        notes=notes,
    )
