"""An article page to every field of it: title, date, body, authors, PDFs.

Nothing here touches the network, Scrapy or the database, so every function can be tested on a
saved page. Selectors are the profile's (the ones documented for the real site); each field has
built-in fallbacks, and every fallback taken or field missed is reported in ``notes``
(``site.notes``), so a layout change shows in the crawl stats instead of passing silently.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import lxml.html
from lxml import etree

from npi_crawler.archive.records import ArticleRecord, Author
from npi_crawler.site.notes import (
    BAD_LINK_AUTHOR,
    BAD_LINK_PDF,
    CAP_TITLE,
    FALLBACK_BODY_EXTRACTOR,
    FALLBACK_BODY_MAIN,
    FALLBACK_DATE_ANY,
    FALLBACK_DATE_URL,
    FALLBACK_NO_MAIN,
    FALLBACK_TITLE_OG,
    FALLBACK_TITLE_TAG,
    MISS_BODY,
    MISS_DATE,
    MISS_TITLE,
    SOURCE_LINK_TEXT,
    SOURCE_PDF_HREF,
    nomatch,
)
from npi_crawler.site.profile import DEFAULT_PROFILE, Profile
from npi_crawler.site.text import normalize_block, normalize_space, parse_date
from npi_crawler.site.tree import elements, first_links, has_class, html_tree, links_in
from npi_crawler.site.urls import (
    LIST_PAGE_PATH,
    BadLink,
    canonical_url,
    date_from_url,
    is_web_url,
    lang_from_url,
    resolve_link,
    site_url,
)


@dataclass
class ParsedArticle:
    """An article page's record, and where each field came from (what ``probe`` shows)."""

    record: ArticleRecord
    sources: dict[str, str] = field(default_factory=dict)  # profile key -> selector or fallback


_SITE_WORDS = ("研究所", "Institute", "NPI")
_SUFFIX_SEPARATOR = re.compile(r"[|｜\-–—]")
# Longer than any real title: NPI's run to about 150 characters. A longer one is stored cut to
# this, with the note cap/title (a warning of the run), so one hostile page cannot fill alerts.
TITLE_MAX_CHARS = 1000


def _strip_site_name(title: str) -> str:
    """The title without a trailing site name: ``Title | 中曽根康弘世界平和研究所``, ``Title - NPI``.

    The cut is at the first separator (``| ｜ - – —``) that has no ``|``/``｜`` after it and a site
    word after it. Found with two scans from the end, in linear time: a regex that backtracks over
    the title is quadratic in it (a 32 KB title of "- " took 15-24 s)."""
    last_bar = max(title.rfind("|"), title.rfind("｜"))
    last_word = max(title.rfind(word) for word in _SITE_WORDS)
    cut = _SUFFIX_SEPARATOR.search(title, max(last_bar, 0), max(last_word, 0))
    return normalize_space(title[: cut.start()] if cut else title)


def _capped_title(title: str, notes: list[str]) -> str:
    if len(title) <= TITLE_MAX_CHARS:
        return title
    notes.append(CAP_TITLE)
    return title[: TITLE_MAX_CHARS - 1].rstrip() + "…"




def _container(root: etree._Element, profile: Profile, notes: list[str], sources: dict[str, str]) -> etree._Element:
    """The element the article's keys look inside: the first ``article`` match, else the page."""
    for selector in profile.selectors["article"]:
        if found := elements(selector.select(root)):
            sources["article"] = selector.text
            return found[0]
    notes += [nomatch("article"), FALLBACK_NO_MAIN]
    sources["article"] = FALLBACK_NO_MAIN
    return root


def _inline_text(node: Any, skip: set[etree._Element]) -> str:
    """The text of a title match: ``<br>`` is a space; elements in ``skip`` (dates) are left out."""
    if isinstance(node, str):
        return normalize_space(node)
    parts: list[str] = []

    def walk(el: etree._Element) -> None:
        if not isinstance(el.tag, str) or el in skip:  # a comment's text is no content either
            return
        parts.append(" " if el.tag.lower() == "br" else "")
        parts.append(el.text or "")
        for child in el:
            walk(child)
            parts.append(child.tail or "")

    walk(node)
    return normalize_space("".join(parts))


_TITLE_FALLBACKS = (
    ('//meta[@property="og:title"]/@content', FALLBACK_TITLE_OG),
    ("//title/text()", FALLBACK_TITLE_TAG),
)


def _title(
    main: etree._Element, root: etree._Element, profile: Profile, notes: list[str], sources: dict[str, str]
) -> str | None:
    dates = set(elements(profile.every("date", main)))
    for selector in profile.selectors["title"]:
        for node in selector.select(main):
            if title := _inline_text(node, dates):
                sources["title"] = selector.text
                return _capped_title(title, notes)
    notes.append(nomatch("title"))
    for xpath, note in _TITLE_FALLBACKS:
        values = root.xpath(xpath)
        title = _strip_site_name(values[0]) if values else ""
        if title:
            notes.append(note)
            sources["title"] = note
            return _capped_title(title, notes)
    notes.append(MISS_TITLE)
    return None


def _date_of(node: Any) -> str | None:
    if isinstance(node, str):
        return parse_date(node)
    return parse_date(node.get("datetime")) or parse_date(node.text_content())


_DATE_ANY = f".//*[{has_class('date')}][not(ancestor::*[{has_class('entry_list_area')}])]"


def _published(main: etree._Element, url: str, profile: Profile, notes: list[str], sources: dict[str, str]) -> str | None:
    for selector in profile.selectors["date"]:
        for node in selector.select(main):
            if iso := _date_of(node):
                sources["date"] = selector.text
                return iso
    notes.append(nomatch("date"))
    for node in main.xpath(_DATE_ANY):
        if iso := parse_date(node.text_content()):
            notes.append(FALLBACK_DATE_ANY)
            sources["date"] = FALLBACK_DATE_ANY
            return iso
    if iso := date_from_url(url):
        notes.append(FALLBACK_DATE_URL)
        sources["date"] = FALLBACK_DATE_URL
        return iso
    notes.append(MISS_DATE)
    return None


# Never text, whatever the profile's ``drop`` says; the site's own boilerplate is in ``drop``.
_DROP_TAGS = ("head", "script", "style", "noscript", "iframe", "form", "button", "svg")
_DROP_CLASS = re.compile(
    r"(^|[\s_-])(share|sns|social|btn_back|back|pagetop|breadcrumb|side|related)([\s_-]|$)"
)
_BLOCK_TAGS = frozenset(
    "p div h1 h2 h3 h4 h5 h6 li ul ol dl dt dd blockquote pre table tbody thead tr td th "
    "section article figure figcaption header hr address center".split()
)
_ARROWS = "<>＜＞«»‹›〈〉|｜ "
_BOILERPLATE_BLOCK = re.compile(
    r"^(?:back to (?:the )?previous page|back|前のページ(?:へ|に)戻る|(?:一覧に|一覧へ)?戻る|facebook|"
    r"twitter|x|line|share|シェア|ツイート|いいね|pdf|pdfはこちら|download(?: the)? pdf|"
    r"go to (?:the )?article list|(?:記事)?一覧(?:へ|を見る|はこちら)|page ?top|ページ(?:の)?トップへ|"
    r"copyright\b.*|©.*|nakasone peace institute \(npi\)|公益財団法人 ?中曽根康弘世界平和研究所)$",
    re.I,
)
_SIDE_HEADING = re.compile(
    r"^(?:latest articles (?:on|in|from)\b|other research activities$|(?:その他の研究活動|関連記事)$)"
    r"|(?:最新|新着)(?:の)?記事$",
    re.I,
)


def _blocks(el: etree._Element, out: list[str]) -> None:
    buffer: list[str] = []

    def text(value: str | None) -> str:
        # A line break in the HTML source is just a space; only <br> breaks a line.
        return (value or "").replace("\r", " ").replace("\n", " ")

    def flush() -> None:
        text = normalize_block("".join(buffer))
        buffer.clear()
        if text:
            out.append(text)

    buffer.append(text(el.text))
    for child in el:
        if not isinstance(child.tag, str):  # comments, processing instructions
            buffer.append(text(child.tail))
            continue
        tag = child.tag.lower()
        if tag == "br":
            buffer.append("\n")
        elif tag in _BLOCK_TAGS or any(
            isinstance(d.tag, str) and d.tag.lower() in _BLOCK_TAGS for d in child.iterdescendants()
        ):
            flush()
            _blocks(child, out)
        else:
            for br in child.iter("br"):
                br.tail = "\ue000" + (br.tail or "")  # survives text(), becomes a line break
            buffer.append(text(child.text_content()).replace("\ue000", "\n"))
        buffer.append(text(child.tail))
    flush()


def extract_body(container: etree._Element, profile: Profile = DEFAULT_PROFILE) -> str:
    """Clean text of an article body: one block per paragraph, heading or list item, separated
    by a blank line; author boxes, what ``profile``'s ``drop`` selects (share links, buttons, side
    blocks, footer), and side blocks found by their heading left out."""
    node = copy.deepcopy(container)
    # Author boxes (profile link, name, position) are metadata, not text.
    links = [el for el, _href in links_in(profile.every("author_link", node)) if el is not None]
    counts = _link_counts(links)
    for link in links:
        name, box, _selector = _expert_box(link, counts, profile)
        if box is not None and box is not node and len(normalize_space(box.text_content())) < 120:
            box.drop_tree()
        elif name is not None and name.getparent() is not None:
            name.drop_tree()
    for el in elements(profile.every("drop", node)):
        if el is not node and el.getparent() is not None:
            el.drop_tree()
    for el in list(node.iter()):
        if not isinstance(el.tag, str) or el.getparent() is None:
            continue
        if el.tag.lower() in _DROP_TAGS or _DROP_CLASS.search(el.get("class", "")):
            el.drop_tree()
    blocks: list[str] = []
    _blocks(node, blocks)
    body: list[str] = []
    for block in blocks:
        bare = block.strip(_ARROWS)
        if len(bare) < 80 and _SIDE_HEADING.search(bare):
            break  # everything after a side block's heading is navigation
        if not _BOILERPLATE_BLOCK.match(bare):
            body.append(block)
    return "\n\n".join(body)


# Past this size a page is not an article (NPI's are a few hundred KB) and the extractor, linear
# in the page at about 0.5 s per MB, is not run on it.
EXTRACTOR_MAX_CHARS = 2_000_000


def last_resort_body(html: str, profile: Profile = DEFAULT_PROFILE) -> str:
    """The body as readability-lxml finds it (the block of the page that reads most like
    prose), cleaned like any body; "" when it finds nothing. Only for pages where every body
    selector missed: on the redesigned replica pages it gave the oracle's body on 119 of 120
    (benchmarks/body_extractors.py)."""
    if len(html) > EXTRACTOR_MAX_CHARS:
        return ""
    from readability import Document  # only here: the CLI and a clean crawl never need it

    try:
        summary = Document(html).summary(html_partial=True)
        return extract_body(lxml.html.fromstring(summary), profile) if summary.strip() else ""
    except Exception:  # readability raises its own and lxml's errors on pages it cannot read
        return ""


def _body(
    main: etree._Element, html: str, profile: Profile, notes: list[str], sources: dict[str, str]
) -> tuple[str, etree._Element]:
    """The body's text, and the element PDFs are looked for in."""
    for selector in profile.selectors["body"]:
        if areas := elements(selector.select(main)):
            sources["body"] = selector.text
            return extract_body(areas[0], profile), areas[0]
    notes.append(nomatch("body"))
    if body := last_resort_body(html, profile):
        notes.append(FALLBACK_BODY_EXTRACTOR)
        sources["body"] = FALLBACK_BODY_EXTRACTOR
        return body, main
    notes.append(FALLBACK_BODY_MAIN)
    sources["body"] = FALLBACK_BODY_MAIN
    node = copy.deepcopy(main)
    for heading in elements(profile.every("title", node)):
        if heading is not node and heading.getparent() is not None:
            heading.drop_tree()
    return extract_body(node, profile), main


def _pdfs(
    main: etree._Element, area: etree._Element, url: str, profile: Profile, notes: list[str], sources: dict[str, str]
) -> list[str]:
    """The PDFs an article links to: the ``pdf_link`` matches in the article, then any http(s)
    link to a ``.pdf`` in its body (``area``). A PDF link that cannot be read is skipped with the
    note ``bad_link/pdf``."""
    found, selector = first_links(profile, "pdf_link", main)
    links = dict.fromkeys((href for _el, href in found), True)
    if selector is not None:
        sources["pdf_link"] = selector.text
    for href in area.xpath(".//a/@href"):
        if ".pdf" in href.lower():
            links.setdefault(href, False)
    pdfs: list[str] = []
    for href, listed in links.items():
        if not href.strip():
            continue
        try:
            target = resolve_link(href, url)
        except BadLink:
            notes.append(BAD_LINK_PDF)
            continue
        if is_web_url(target) and (listed or urlsplit(target).path.lower().endswith(".pdf")):
            pdfs.append(target)
            sources.setdefault("pdf_link", SOURCE_PDF_HREF)
    return pdfs  # the record drops repeats


def _within(el: etree._Element, box: etree._Element) -> bool:
    return el is box or any(a is box for a in el.iterancestors())


def _link_counts(links: list[etree._Element]) -> dict[etree._Element, int]:
    """How many of ``links`` each element holds: one walk up from each link, so that a page of
    thousands of author links costs links x depth, not links x links."""
    counts: dict[etree._Element, int] = {}
    for link in links:
        for el in (link, *link.iterancestors()):
            counts[el] = counts.get(el, 0) + 1
    return counts


def _expert_box(
    link: etree._Element, counts: dict[etree._Element, int], profile: Profile
) -> tuple[etree._Element | None, etree._Element | None, str | None]:
    """The ``author_name`` element for an author link, the box holding both, and the selector
    that found the name: inside the link, else in the smallest enclosing element (two levels up
    at most) that holds only this one author link (``counts`` from ``_link_counts``)."""
    box: etree._Element | None = link
    for level in range(3):
        if box is None or (level and counts.get(box, 0) != 1):
            break
        for selector in profile.selectors["author_name"]:
            for name in elements(selector.select(box)):
                if _within(name, box):
                    return name, box, selector.text
        box = box.getparent()
    return None, None, None


def _authors(
    main: etree._Element, url: str, profile: Profile, notes: list[str], sources: dict[str, str]
) -> list[Author]:
    """(name, profile URL) of each author; a profile link that cannot be read keeps the name,
    without a URL (note ``bad_link/author``)."""
    found, selector = first_links(profile, "author_link", main)
    links = [el for el, _href in found if el is not None]
    if selector is not None:
        sources["author_link"] = selector.text
    authors: dict[str, Author] = {}
    counts = _link_counts(links)
    for link in links:
        href = link.get("href", "")
        if LIST_PAGE_PATH.search(href):
            continue
        name_el, _box, name_selector = _expert_box(link, counts, profile)
        if name_el is None and nomatch("author_name") not in notes:
            notes.append(nomatch("author_name"))
        sources.setdefault("author_name", name_selector or SOURCE_LINK_TEXT)
        name = normalize_space((name_el if name_el is not None else link).text_content())
        if name:
            try:
                profile_url: str | None = resolve_link(href, url)
            except BadLink:
                profile_url = None
                notes.append(BAD_LINK_AUTHOR)
            authors.setdefault(name, Author(name, profile_url))
    return list(authors.values())


def parse_article(html: str, url: str, profile: Profile = DEFAULT_PROFILE, *, base_url: str | None = None) -> ArticleRecord:
    """Every field of one article page, found with ``profile``'s selectors; selectors that
    matched nothing, fallbacks taken and fields missed are listed in ``notes``. With ``base_url``
    (a crawl's), the page's own URL and its links are given as that crawl requests them
    (``site.urls.site_url``: on a replica's host)."""
    return read_article(html, url, profile, base_url=base_url).record


def read_article(html: str, url: str, profile: Profile = DEFAULT_PROFILE, *, base_url: str | None = None) -> ParsedArticle:
    """``parse_article``'s record, with the selector or fallback that found each field."""
    notes: list[str] = []
    sources: dict[str, str] = {}
    root = html_tree(html, notes)
    main = _container(root, profile, notes, sources)
    title = _title(main, root, profile, notes, sources)
    published = _published(main, url, profile, notes, sources)
    body, area = _body(main, html, profile, notes, sources)
    if not body:
        notes.append(MISS_BODY)
    authors = _authors(main, url, profile, notes, sources)
    pdfs = _pdfs(main, area, url, profile, notes, sources)

    def crawled(link: str) -> str:
        return site_url(link, base_url) if base_url else link

    record = ArticleRecord(
        url=crawled(canonical_url(url)),
        lang=lang_from_url(url),
        title=title,
        published=published,
        body=body,
        authors=tuple(Author(name, crawled(link) if link else None) for name, link in authors),
        pdfs=tuple(crawled(pdf) for pdf in pdfs),
        notes=tuple(notes),
    )
    return ParsedArticle(record, sources)
