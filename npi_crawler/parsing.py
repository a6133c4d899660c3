"""Pure functions over NPI's HTML: list pages and article pages to plain data.

Nothing here touches the network, Scrapy or the database, so every function can be tested on a
saved page. Selectors are the ones documented for the real site; each has a fallback, and every
fallback taken or field missed is reported in ``notes`` (stat keys such as ``fallback/title_og``),
so a layout change shows in the crawl stats instead of passing silently.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
import unicodedata
from dataclasses import dataclass, field
from urllib.parse import SplitResult, urljoin, urlsplit, urlunsplit

import lxml.html
from lxml import etree

from npi_crawler.constants import NPI_HOSTS

_WS = re.compile(r"[\s\u200b\u200c\u200d\u2060\ufeff]+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


# -- text and value normalizers ------------------------------------------------------------------


def normalize_space(text: str | None) -> str:
    """Fold every run of whitespace (ideographic and no-break spaces included) to one space.

    Characters themselves are kept: full-width letters and Japanese punctuation are content.
    """
    if not text:
        return ""
    return _WS.sub(" ", _CONTROL.sub("", text)).strip()


def normalize_block(text: str | None) -> str:
    """Like ``normalize_space`` but keeps single line breaks (from ``<br>``) inside a block."""
    if not text:
        return ""
    lines = (normalize_space(line) for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


_ERAS = {"令和": 2018, "平成": 1988, "昭和": 1925}
_MONTHS = {
    m.lower(): i
    for i, names in enumerate(
        [
            ("January", "Jan"),
            ("February", "Feb"),
            ("March", "Mar"),
            ("April", "Apr"),
            ("May",),
            ("June", "Jun"),
            ("July", "Jul"),
            ("August", "Aug"),
            ("September", "Sep", "Sept"),
            ("October", "Oct"),
            ("November", "Nov"),
            ("December", "Dec"),
        ],
        start=1,
    )
    for m in names
}
_NUMERIC_DATE = re.compile(r"(\d{4})\s*[/.\-年]\s*(\d{1,2})\s*[/.\-月]\s*(\d{1,2})")
_ERA_DATE = re.compile(r"(令和|平成|昭和)\s*(\d{1,2}|元)\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日")
_MONTH_FIRST = re.compile(r"([A-Za-z]{3,9})\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})")
_DAY_FIRST = re.compile(r"(\d{1,2})(?:st|nd|rd|th)?\s+([A-Za-z]{3,9})\.?,?\s+(\d{4})")
_URL_DATE = re.compile(r"/(\d{4})/(\d{2})/(\d{2})\d{6}\.html?$")


def _iso(year: int, month: int, day: int) -> str | None:
    try:
        return dt.date(year, month, day).isoformat() if 1900 <= year <= 2200 else None
    except ValueError:
        return None


def parse_date(text: str | None) -> str | None:
    """An ISO date (``YYYY-MM-DD``) from the ways NPI pages write dates, or None.

    Accepts ``2025/06/30``, ``2025.6.30``, ``2025年6月30日``, ``令和7年6月30日``, ``June 30, 2025``
    and ``30 June 2025``, in full- or half-width digits.
    """
    if not text:
        return None
    text = unicodedata.normalize("NFKC", text)  # safe here: only digits and separators matter
    if m := _NUMERIC_DATE.search(text):
        return _iso(int(m[1]), int(m[2]), int(m[3]))
    if m := _ERA_DATE.search(text):
        year = 1 if m[2] == "元" else int(m[2])
        return _iso(_ERAS[m[1]] + year, int(m[3]), int(m[4]))
    if (m := _MONTH_FIRST.search(text)) and m[1].lower() in _MONTHS:
        return _iso(int(m[3]), _MONTHS[m[1].lower()], int(m[2]))
    if (m := _DAY_FIRST.search(text)) and m[2].lower() in _MONTHS:
        return _iso(int(m[3]), _MONTHS[m[2].lower()], int(m[1]))
    return None


def _path(url: str) -> str:
    try:
        return urlsplit(url).path
    except ValueError:  # unbalanced IPv6 brackets: no path to read either
        return ""


def date_from_url(url: str) -> str | None:
    """The date in an article URL such as ``/research/2025/06/30150000.html``."""
    m = _URL_DATE.search(_path(url))
    return _iso(int(m[1]), int(m[2]), int(m[3])) if m else None


def lang_from_url(url: str) -> str:
    path = _path(url)
    return "en" if path == "/en" or path.startswith("/en/") else "ja"


def url_parts(url: str) -> SplitResult | None:
    """``urlsplit(url)`` with its port read, or None for a URL that cannot be read: a port out of
    range or not a number, unbalanced IPv6 brackets, anything else ``urllib`` refuses."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - reading it is the check: it raises on a bad port
    except ValueError:
        return None
    return parts


def canonical_url(url: str) -> str:
    """One spelling per page: lower-case host, ``www.npi.or.jp`` folded into ``npi.or.jp`` (and
    https for it), default ports, user names and fragments dropped, IPv6 hosts in brackets.

    Never raises: a URL that cannot be read (see ``url_parts``) comes back as given, stripped and
    without its fragment; ``resolve_link`` is the check for links."""
    url = url.strip()
    parts = url_parts(url)
    if parts is None:
        return url.partition("#")[0]
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port
    if host in NPI_HOSTS:
        host, scheme = "npi.or.jp", "https"
        port = None
    if ":" in host:  # an IPv6 address: the brackets are part of the URL's syntax
        host = f"[{host}]"
    if port and (scheme, port) not in (("http", 80), ("https", 443)):
        host = f"{host}:{port}"
    return urlunsplit((scheme, host, parts.path or "/", parts.query, ""))


def _is_web_url(url: str) -> bool:
    """An http(s) URL with a host: the only kind of link the crawler follows."""
    parts = url_parts(url)
    return parts is not None and parts.scheme in ("http", "https") and bool(parts.hostname)


class BadLink(ValueError):
    """A link whose URL cannot be read (the href is the message)."""


def resolve_link(href: str, page_url: str) -> str:
    """The canonical absolute URL of a link ``href`` on the page at ``page_url``.

    Raises ``BadLink`` for an href that cannot be read (a port out of range, unbalanced IPv6
    brackets): the caller skips that one link and reports it, and reads the rest of the page."""
    try:
        url = urljoin(page_url, href.strip())
    except ValueError:
        raise BadLink(href) from None
    if url_parts(url) is None:
        raise BadLink(href)
    return canonical_url(url)


# -- list pages -----------------------------------------------------------------------------------


@dataclass
class ListPage:
    entries: list[str]  # absolute article URLs, in page order, without repeats
    pages: list[tuple[str, str]]  # (label, absolute URL) of every pagination link
    notes: list[str] = field(default_factory=list)
    bad_links: list[str] = field(default_factory=list)  # hrefs that could not be read, skipped


_LIST_PAGE_PATH = re.compile(r"/index(?:_\d+)?\.html?$|/$")


# -- bytes to text --------------------------------------------------------------------------------

# Tried in this order on a page that declares no encoding (no charset in Content-Type, no <meta
# charset>, no BOM). Valid UTF-8 is taken as UTF-8; otherwise the legacy Japanese encoding whose
# strict decoding reads as the most Japanese (kana, kanji, Japanese punctuation) wins. General-purpose detectors guess wrong on short
# Japanese pages (charset-normalizer, which Scrapy uses, reads short EUC-JP as Korean cp949).
JAPANESE_ENCODINGS = ("euc_jp", "cp932")
_JAPANESE = re.compile(r"[\u3000-\u30ff\u4e00-\u9fff]")
_HALFWIDTH_KANA = re.compile(r"[\uff61-\uff9f]")


def guess_japanese_encoding(body: bytes) -> str | None:
    """The encoding of an undeclared page: ``utf-8``, ``euc_jp``, ``cp932`` or None (not Japanese
    text in any of them: leave it to the general detector)."""
    try:
        body.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    best, best_score = None, 0
    for encoding in JAPANESE_ENCODINGS:
        try:
            text = body.decode(encoding)
        except UnicodeDecodeError:
            continue
        # EUC-JP bytes read as Shift_JIS decode to half-width katakana: a sign of the wrong guess.
        score = len(_JAPANESE.findall(text)) - 4 * len(_HALFWIDTH_KANA.findall(text))
        if score > best_score:
            best, best_score = encoding, score
    return best


def _tree(html: str, notes: list[str]) -> etree._Element:
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
        notes.append("truncated/parser_limit")
    return root


def _article_link(href: str, page_url: str) -> str | None:
    """The article a list entry's link points to, None for any other link (another scheme, a list
    page, a PDF, an author's profile); raises ``BadLink`` for one that cannot be read."""
    if not href or href.startswith(("#", "javascript:", "mailto:", "tel:")):
        return None
    url = resolve_link(href, page_url)
    if not _is_web_url(url):
        return None
    target = urlsplit(url)
    if _LIST_PAGE_PATH.search(target.path) or target.path.lower().endswith(".pdf"):
        return None
    if "/experts/" in target.path:  # an author's profile in the entry, not an article
        return None
    return url


def _entry_links(root: etree._Element, notes: list[str]) -> list[etree._Element]:
    links = root.xpath(
        '//*[@id="main"]/div[contains(concat(" ", normalize-space(@class), " "), " entry_list_area ")]'
        "/div/div/p/a[@href]"
    )
    if not links:
        links = root.xpath('//div[contains(concat(" ", normalize-space(@class), " "), " box ")]/p/a[@href]')
        if links:
            notes.append("fallback/list_box")
    if not links:
        links = root.xpath(
            '//*[contains(concat(" ", normalize-space(@class), " "), " entry_list_area ")]//a[@href]'
        )
        if links:
            notes.append("fallback/list_area_links")
    return links


def parse_list_page(html: str, url: str) -> ListPage:
    """Entries and pagination of one article-list page. A link that cannot be read is skipped
    and listed in ``bad_links``; it never costs the rest of the page."""
    notes: list[str] = []
    root = _tree(html, notes)
    entries: list[str] = []
    pages: list[tuple[str, str]] = []
    bad: list[str] = []
    for a in _entry_links(root, notes):
        href = a.get("href", "").strip()
        try:
            if article := _article_link(href, url):
                entries.append(article)
        except BadLink:
            bad.append(href)
    if not entries:
        notes.append("miss/list_entries")
    for a in root.xpath('//a[contains(concat(" ", normalize-space(@class), " "), " link_page ")][@href]'):
        try:
            target = resolve_link(a.get("href"), url)
        except BadLink:
            bad.append(a.get("href").strip())
            continue
        if _is_web_url(target):  # not javascript:, mailto: ...
            pages.append((normalize_space(a.text_content()), target))
    return ListPage(entries=list(dict.fromkeys(entries)), pages=pages, notes=notes, bad_links=bad)


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


# -- article pages --------------------------------------------------------------------------------


@dataclass
class ParsedArticle:
    url: str
    lang: str
    title: str | None
    published: str | None
    body: str
    authors: list[tuple[str, str | None]]  # (name, profile URL)
    pdfs: list[str]
    notes: list[str] = field(default_factory=list)


def _has_class(name: str) -> str:
    return f'contains(concat(" ", normalize-space(@class), " "), " {name} ")'


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
    notes.append("cap/title")
    return title[: TITLE_MAX_CHARS - 1].rstrip() + "…"


def _main(root: etree._Element) -> etree._Element:
    found = root.xpath('//*[@id="main"]')
    return found[0] if found else root


def _title(main: etree._Element, root: etree._Element, notes: list[str]) -> str | None:
    headings = main.xpath(f".//h3[{_has_class('ttl_second')}]")
    if headings:
        heading = copy.deepcopy(headings[0])
        for date in heading.xpath(f".//*[{_has_class('date')}]"):
            date.drop_tree()
        for br in heading.iter("br"):
            br.tail = " " + (br.tail or "")
        title = normalize_space(heading.text_content())
        if title:
            return _capped_title(title, notes)
    for xpath, note in (
        ('//meta[@property="og:title"]/@content', "fallback/title_og"),
        ("//title/text()", "fallback/title_tag"),
    ):
        values = root.xpath(xpath)
        title = _strip_site_name(values[0]) if values else ""
        if title:
            notes.append(note)
            return _capped_title(title, notes)
    notes.append("miss/title")
    return None


def _published(main: etree._Element, url: str, notes: list[str]) -> str | None:
    for xpath, note in (
        (f".//h3[{_has_class('ttl_second')}]//*[{_has_class('date')}]", None),
        (
            f".//*[{_has_class('date')}][not(ancestor::*[{_has_class('entry_list_area')}])]",
            "fallback/date_any",
        ),
    ):
        for node in main.xpath(xpath):
            if iso := parse_date(node.text_content()):
                if note:
                    notes.append(note)
                return iso
    if iso := date_from_url(url):
        notes.append("fallback/date_url")
        return iso
    notes.append("miss/date")
    return None


_DROP_TAGS = (
    "head",
    "script",
    "style",
    "noscript",
    "iframe",
    "form",
    "nav",
    "aside",
    "footer",
    "button",
    "svg",
)
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


def extract_body(container: etree._Element) -> str:
    """Clean text of an article body: one block per paragraph, heading or list item, separated
    by a blank line; share links, back link, buttons, side blocks and footer left out."""
    node = copy.deepcopy(container)
    # Author boxes (profile link, name, position) are metadata, not text.
    for link in node.xpath(_EXPERT_LINK):
        name, box = _expert_box(link)
        if box is not None and box is not node and len(normalize_space(box.text_content())) < 120:
            box.drop_tree()
        elif name is not None and name.getparent() is not None:
            name.drop_tree()
    for el in list(node.iter()):
        if not isinstance(el.tag, str) or el.getparent() is None:
            continue
        classes = el.get("class", "")
        if (
            el.tag.lower() in _DROP_TAGS
            or _DROP_CLASS.search(classes)
            or re.search(r"\b(btn_pdf|btn_bluecorner)\b", classes)
        ):
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


def _body(main: etree._Element, notes: list[str]) -> tuple[str, etree._Element]:
    areas = main.xpath(f"./div[{_has_class('detail_area')}]") or main.xpath(
        f".//div[{_has_class('detail_area')}]"
    )
    if areas:
        return extract_body(areas[0]), areas[0]
    notes.append("fallback/body_main")
    node = copy.deepcopy(main)
    for heading in node.xpath(f".//h3[{_has_class('ttl_second')}]"):
        heading.drop_tree()
    return extract_body(node), main


def _pdfs(area: etree._Element, url: str, notes: list[str]) -> list[str]:
    """The PDFs an article links to: its ``a.btn_pdf`` buttons, then any http(s) link to a
    ``.pdf``. A PDF link that cannot be read is skipped with the note ``bad_link/pdf``."""
    links = dict.fromkeys(area.xpath(f".//a[{_has_class('btn_pdf')}]/@href"), True)
    for href in area.xpath(".//a/@href"):
        if ".pdf" in href.lower():
            links.setdefault(href, False)
    pdfs: list[str] = []
    for href, button in links.items():
        if not href.strip():
            continue
        try:
            target = resolve_link(href, url)
        except BadLink:
            notes.append("bad_link/pdf")
            continue
        if _is_web_url(target) and (button or urlsplit(target).path.lower().endswith(".pdf")):
            pdfs.append(target)
    return list(dict.fromkeys(pdfs))


_EXPERT_LINK = f".//a[{_has_class('btn_bluecorner')}][contains(@href, '/experts/')]"


def _expert_box(link: etree._Element) -> tuple[etree._Element | None, etree._Element | None]:
    """The ``.name`` element for a profile link and the box holding both: inside the link, else
    in the smallest enclosing element that holds only this one profile link."""
    names = link.xpath(f".//*[{_has_class('name')}]")
    if names:
        return names[0], link
    box = link.getparent()
    for _ in range(2):
        if box is None or len(box.xpath(_EXPERT_LINK)) != 1:
            break
        names = box.xpath(f".//*[{_has_class('name')}]")
        if names:
            return names[0], box
        box = box.getparent()
    return None, None


def _expert_name(link: etree._Element) -> str:
    name, _box = _expert_box(link)
    return normalize_space(name.text_content() if name is not None else link.text_content())


def _authors(main: etree._Element, url: str, notes: list[str]) -> list[tuple[str, str | None]]:
    """(name, profile URL) of each author; a profile link that cannot be read keeps the name,
    without a URL (note ``bad_link/author``)."""
    authors: dict[str, tuple[str, str | None]] = {}
    for link in main.xpath(_EXPERT_LINK):
        name = _expert_name(link)
        href = link.get("href", "")
        if name and not _LIST_PAGE_PATH.search(href):
            try:
                profile: str | None = resolve_link(href, url)
            except BadLink:
                profile = None
                notes.append("bad_link/author")
            authors.setdefault(name, (name, profile))
    return list(authors.values())


def parse_article(html: str, url: str) -> ParsedArticle:
    """Every field of one article page; misses and fallbacks are listed in ``notes``."""
    notes: list[str] = []
    root = _tree(html, notes)
    main = _main(root)
    if main is root:
        notes.append("fallback/no_main")
    title = _title(main, root, notes)
    published = _published(main, url, notes)
    body, area = _body(main, notes)
    if not body:
        notes.append("miss/body")
    return ParsedArticle(
        url=canonical_url(url),
        lang=lang_from_url(url),
        title=title,
        published=published,
        body=body,
        authors=_authors(main, url, notes),
        pdfs=_pdfs(area, url, notes),
        notes=notes,
    )
