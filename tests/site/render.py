"""Renders the replica's pages from the model, in the markup the real NPI site uses.

Structure follows ``shared/npi-site.md``: list entries at ``#main > div.entry_list_area > div > div
> p > a``, pagination ``a.link_page``, article heading ``h3.ttl_second.b30`` with ``div.date``,
body in ``#main > div.detail_area``, PDFs ``a.btn_pdf``, authors ``a.btn_bluecorner`` with
``div.name.b05``, share links, a back link, "Latest Articles on ..." side blocks and the footer.
"""

from __future__ import annotations

import hashlib
import html
import re
from dataclasses import dataclass
from email.utils import formatdate

from .model import BROKEN_PDF, SECTION_NAMES, SECTIONS, Article, Expert, Site

SITE_NAME = {"ja": "中曽根康弘世界平和研究所", "en": "Nakasone Peace Institute"}
BACK = {"ja": "&lt; 前のページへ戻る", "en": "&lt; Back to previous page"}
LATEST = {"ja": "{}の最新記事", "en": "Latest Articles on {}"}
GO_LIST = {"ja": "記事一覧へ &gt;", "en": "Go to Article List &gt;"}
OTHER = {"ja": "その他の研究活動", "en": "Other research activities"}


@dataclass
class Page:
    status: int
    body: bytes
    content_type: str = "text/html; charset=UTF-8"
    etag: str | None = None
    last_modified: str | None = None


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _prefix(lang: str) -> str:
    return "/en" if lang == "en" else ""


def _head(lang: str, title: str) -> str:
    return f"""<!DOCTYPE html>
<html lang="{lang}">
<head>
<meta charset="UTF-8">
<title>{_e(title)} | {SITE_NAME[lang]}</title>
<meta property="og:title" content="{_e(title)} | {SITE_NAME[lang]}">
<meta property="og:site_name" content="{SITE_NAME[lang]}">
<link rel="stylesheet" href="/common/css/style.css">
</head>
<body>
<div id="wrapper">
<header id="header"><div class="logo"><a href="{_prefix(lang)}/">{SITE_NAME[lang]}</a></div>
<nav class="gnav"><ul>
{"".join(f'<li><a href="{_prefix(lang)}/research/{s}/index.html">{SECTION_NAMES[lang][s]}</a></li>' for s in SECTIONS)}
<li><a href="{_prefix(lang)}/experts/index.html">{"Experts" if lang == "en" else "研究員"}</a></li>
</ul></nav></header>
<div id="contents">
"""


def _foot(lang: str) -> str:
    name = "Nakasone Peace Institute (NPI)" if lang == "en" else "公益財団法人 中曽根康弘世界平和研究所"
    return f"""</div>
<footer id="footer">
<p class="footer_name">{name}</p>
<p class="copyright">Copyright &copy;Nakasone Peace Institute, All Rights Reserved.</p>
</footer>
</div>
</body>
</html>
"""


def _side(site: Site, lang: str, sections: list[str]) -> str:
    blocks = []
    for section in dict.fromkeys([*sections, "policy"]):
        items = site.list_entries(lang, section)[:3]
        links = "".join(
            f'<li><a href="{a.path}"><span class="date">{a.date}</span>{_e(a.title)}</a></li>' for a in items
        )
        blocks.append(
            f"""<div class="side_box">
<h4 class="side_ttl">{LATEST[lang].format(SECTION_NAMES[lang][section])}</h4>
<ul class="side_list">{links}</ul>
<p class="btn_more"><a class="btn_bluecorner" href="{_prefix(lang)}/research/{section}/index.html">{GO_LIST[lang]}</a></p>
</div>"""
        )
    blocks.append(
        f"""<div class="side_box"><h4 class="side_ttl">{OTHER[lang]}</h4>
<ul><li><a href="{_prefix(lang)}/event/index.html">{"Events" if lang == "en" else "イベント"}</a></li></ul></div>"""
    )
    return '<div id="side">\n' + "\n".join(blocks) + "\n</div>\n"


def list_page_url(lang: str, section: str, page: int) -> str:
    name = "index.html" if page == 1 else f"index_{page}.html"
    return f"{_prefix(lang)}/research/{section}/{name}"


def _past_the_end(site: Site, lang: str, section: str, page: int, last: list[Article]) -> list[Article]:
    """What an endless pager (``Site.endless_pager``) lists on a page past the real last one."""
    if site.endless_pager == "repeat":
        return last
    prefix = _prefix(lang)
    return [
        Article(f"{prefix}/research/2099/01/{page:04d}{i:04d}.html", f"Page {page} item {i}", "2099/01/01", [section], [])
        for i in range(len(last) or 1)
    ]


def render_list(site: Site, lang: str, section: str, page: int) -> Page | None:
    pages = site.list_pages(lang, section)
    count = max(len(pages), page) + 1 if site.endless_pager else len(pages)  # an endless pager links one further
    if not 1 <= page <= count:
        return None
    name = SECTION_NAMES[lang][section]
    if site.layout in ("redesign", "redesign_lists"):
        return Page(200, (_head(lang, name) + _redesigned_list(lang, section, pages, page) + _foot(lang)).encode())
    listed = pages[page - 1] if page <= len(pages) else _past_the_end(site, lang, section, page, pages[-1])
    entries = "\n".join(
        f"""<div class="box">
<p class="date">{a.date}</p>
<p><a href="{a.path}">{_e(a.title)}</a></p>
</div>"""
        for a in listed
    )
    pager = []
    for number in range(max(1, page - 5) if site.endless_pager else 1, count + 1):  # a window, like real pagers
        if number == page:
            pager.append(f'<span class="current_page">{number}</span>')
        elif number % 2:  # mix root-relative and relative links, as hand-made templates do
            pager.append(f'<a class="link_page" href="{list_page_url(lang, section, number)}">{number}</a>')
        else:
            rel = list_page_url(lang, section, number).rsplit("/", 1)[1]
            pager.append(f'<a class="link_page" href="{rel}">{number}</a>')
    body = f"""<div id="main">
<p class="breadcrumb"><a href="{_prefix(lang)}/">HOME</a> &gt; {name}</p>
<h2 class="ttl_first">{name}</h2>
<div class="entry_list_area">
<div class="entry_list">
{entries}
</div>
</div>
<div class="pagination">{"".join(pager)}</div>
</div>
"""
    return _validated(Page(200, (_head(lang, name) + body + _side(site, lang, [section]) + _foot(lang)).encode()))


def _validated(page: Page) -> Page:
    """The page with the ETag a static web server gives it (its bytes' hash): a conditional GET of
    an unchanged list page or robots.txt answers 304, as the real site's static files would."""
    page.etag = '"' + hashlib.sha1(page.body).hexdigest()[:16] + '"'
    return page


# The redesign (``Site.layout``): the same content in new markup that none of the default selectors
# (nor their fallbacks: no #main, .box, .entry_list_area, .date, og:title) finds. ``REDESIGN_SELECTORS``
# names it, as an operator would in the settings file's [selectors] table after `npi-crawler probe`.
REDESIGN_SELECTORS = {
    "list_entry": ["section.cards a.card__link"],
    "pagination": ["nav.pager a.pager__link"],
    "article": ["main.l-main article.post"],
    "title": ["h1.post-title"],
    "date": ["header time"],
    "body": ["div.post-body"],
    "pdf_link": ["a.file-link"],
    "author_link": ["a.author"],
    "author_name": [".author-name"],
    "drop": [],
}


def _redesigned_list(lang: str, section: str, pages: list[list[Article]], page: int) -> str:
    entries = "".join(
        f'<article class="card"><p class="card__meta">{a.date.replace("/", ".")}</p>'
        f'<a class="card__link" href="{a.path}">{_e(a.title)}</a></article>'
        for a in pages[page - 1]
    )
    pager = "".join(
        f'<span class="pager__current">{n}</span>'
        if n == page
        else f'<a class="pager__link" href="{list_page_url(lang, section, n)}">{n}</a>'
        for n in range(1, len(pages) + 1)
    )
    return (
        f'<main class="l-main"><h1>{SECTION_NAMES[lang][section]}</h1><section class="cards">{entries}</section>'
        f'<nav class="pager">{pager}</nav></main>'
    )


def _redesigned_article(site: Site, article: Article) -> str:
    lang = article.lang
    time_html = (
        f'<time datetime="{article.published}">{article.date.replace("/", ".")}</time>' if article.show_date else ""
    )
    files = "".join(f'<a class="file-link" href="{p}">PDF</a>' for p in article.pdfs)
    authors = "".join(
        f'<li><a class="author" href="{path}"><span class="author-name">{_e(name)}</span>'
        f'<span class="author-role">{"Senior Research Fellow" if lang == "en" else "上席研究員"}</span></a></li>'
        for name, path in article.authors
    )
    related = "".join(
        f'<li><a href="{a.path}">{_e(a.title)}</a></li>' for a in site.list_entries(lang, article.sections[0])[:3]
    )
    label = SECTION_NAMES[lang][article.sections[0]]
    return f"""<main class="l-main">
<nav class="crumbs"><a href="{_prefix(lang)}/">HOME</a> / <a href="{_prefix(lang)}/research/{article.sections[0]}/index.html">{label}</a></nav>
<article class="post">
<header><p class="post-meta">{time_html}<span class="post-cat">{label}</span></p><h1 class="post-title">{_e(article.title)}</h1></header>
<ul class="share"><li><a href="https://www.facebook.com/sharer/sharer.php">Facebook</a></li><li><a href="https://twitter.com/share">X</a></li></ul>
<div class="post-body">{"".join(_block_html(k, t) for k, t in article.blocks)}</div>
<div class="post-files">{files}</div>
<ul class="post-authors">{authors}</ul>
</article>
<section class="related"><h2>{LATEST[lang].format(label)}</h2><ul>{related}</ul></section>
</main>"""


def _block_html(kind: str, text: str) -> str:
    if kind == "li":
        return f"<ul><li>{_e(text)}</li></ul>"
    if kind in ("h2", "h4"):
        return f"<{kind}>{_e(text)}</{kind}>"
    return f"<p>{_e(text)}</p>"


def render_article(site: Site, article: Article) -> Page:
    lang = article.lang
    label = SECTION_NAMES[lang][article.sections[0]]
    if site.layout in ("redesign", "redesign-articles"):
        page = _head(lang, article.title).replace(f"<title>{_e(article.title)} |", "<title>")
        page = re.sub(r'<meta property="og:title"[^>]*>', "", page)
        return Page(200, (page + _redesigned_article(site, article) + _foot(lang)).encode())
    blocks = [_block_html(k, t) for k, t in article.blocks]
    # The opening paragraphs sit in div.b0, as on the real site.
    lead = 0
    while lead < len(article.blocks) and article.blocks[lead][0] == "p":
        lead += 1
    lead = max(lead, 1)
    body_html = '<div class="b0">' + "".join(blocks[:lead]) + "</div>\n" + "\n".join(blocks[lead:])
    if article.empty_paragraph:
        body_html = body_html.replace("</div>\n", "<p>&nbsp;</p><p>\u3000</p></div>\n", 1)
    pdf_html = "".join(
        f'<p class="b20"><a class="btn_pdf" href="{p}" target="_blank">PDF{"" if lang == "en" else "はこちら"}</a></p>'
        for p in article.pdfs
    )
    author_html = "".join(
        f"""<div class="expert_box"><a class="btn_bluecorner" href="{path}">
<div class="photo"><img src="/common/img/expert.jpg" alt=""></div>
<div class="name b05">{_e(name)}</div><div class="post">{"Senior Research Fellow" if lang == "en" else "上席研究員"}</div></a></div>"""
        if not site.plain_author_links
        else f'<p class="expert_link"><a class="btn_bluecorner" href="{path}">{_e(name)}</a></p>'
        for name, path in article.authors
    )
    date_html = f'<div class="date">{article.date}</div>' if article.show_date else ""
    title_inner = article.title_html if article.title_html is not None else _e(article.title)
    share = """<ul class="sns_share">
<li class="fb"><a href="https://www.facebook.com/sharer/sharer.php">Facebook</a></li>
<li class="tw"><a href="https://twitter.com/share">Twitter</a></li>
<li class="line"><a href="https://social-plugins.line.me/lineit/share">LINE</a></li>
</ul>"""
    main = f"""<div id="main">
<p class="cat_label"><a href="{_prefix(lang)}/research/{article.sections[0]}/index.html">{label}</a></p>
{share}
<h3 class="ttl_second b30">{date_html}<div>{title_inner}</div></h3>
<div class="detail_area">
{body_html}
{pdf_html}
{author_html}
</div>
<p class="btn_back"><a href="javascript:history.back();">{BACK[lang]}</a></p>
</div>
"""
    page = _head(lang, article.title) + main + _side(site, lang, article.sections) + _foot(lang)
    modified = 1_700_000_000 + sum(map(ord, article.path)) * 10 + article.version * 3600
    body = page.encode()
    return Page(
        200,
        body,
        etag='"' + hashlib.sha1(body).hexdigest()[:16] + '"',
        last_modified=formatdate(modified, usegmt=True),
    )


EXPERT_HEADINGS = {"ja": ("略歴", "専門分野"), "en": ("Profile", "Areas of Expertise")}


def render_expert(expert: Expert) -> Page:
    """An expert's page: the layout another public crawler of the site relies on (position in
    ``#main > div:nth-child(1) > div > h3 > div.date``, areas in ``#main > p:nth-child(5)``)."""
    lang = expert.lang
    bio, areas = EXPERT_HEADINGS[lang]
    separator = "、" if lang == "ja" else ", "
    position = f'<div class="date">{_e(expert.title)}</div>' if expert.shows_position else ""
    main = f"""<div id="main">
<div class="expert_detail"><div class="expert_head">
<div class="photo"><img src="/common/img/expert.jpg" alt=""></div>
<h3 class="ttl_second b30">{position}<div class="name b05">{_e(expert.name)}</div></h3>
</div></div>
<h4 class="ttl_third">{bio}</h4>
<p>{_e(expert.biography)}</p>
<h4 class="ttl_third">{areas}</h4>
<p>{_e(separator.join(expert.areas))}</p>
<p class="btn_back"><a href="javascript:history.back();">{BACK[lang]}</a></p>
</div>
"""
    body = (_head(lang, expert.name) + main + _foot(lang)).encode()
    return Page(200, body, etag='"' + hashlib.sha1(body).hexdigest()[:16] + '"')


def minimal_pdf(text: str) -> bytes:
    """A small, valid one-page PDF whose text layer holds ``text`` (ASCII)."""
    safe = (
        text.encode("ascii", "replace").decode().replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    )
    stream = f"BT /F1 12 Tf 72 720 Td ({safe}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, obj in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + obj + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


LIST_RE = re.compile(r"^(/en)?/research/([a-z]+)/index(?:_(\d+))?\.html$")


def render(site: Site, path: str) -> Page:
    """The response the replica gives for ``path`` in the site's current state."""
    path = path.split("?", 1)[0].split("#", 1)[0]
    if path == "/robots.txt":
        return _validated(Page(200, site.robots.encode(), "text/plain"))
    m = LIST_RE.match(path)
    if m and m.group(2) in SECTIONS:
        lang = "en" if m.group(1) else "ja"
        page = render_list(site, lang, m.group(2), int(m.group(3) or 1))
        if page:
            return page
    if path in site.articles and path not in site.removed:
        return render_article(site, site.articles[path])
    for article in site.live():
        if path in article.pdfs:
            text = article.pdf_texts.get(path, "NPI")
            body = minimal_pdf(text)[:60] + b"\x00garbage" if text == BROKEN_PDF else minimal_pdf(text)
            modified = formatdate(1_700_000_000 + sum(map(ord, path)) * 10, usegmt=True)
            etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
            return Page(200, body, "application/pdf", etag=etag, last_modified=modified)
    expert = site.expert(path) if "/experts/" in path else None
    if expert is not None:
        return render_expert(expert)
    if path in ("/", "/en/", "/index.html", "/en/index.html"):
        lang = "en" if path.startswith("/en") else "ja"
        return Page(200, (_head(lang, SITE_NAME[lang]) + '<div id="main"></div>' + _foot(lang)).encode())
    return Page(404, b"<html><body><h1>404 Not Found</h1></body></html>")
