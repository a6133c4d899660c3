"""What ``npi-crawler probe`` (cli/probing.py) shows: one page read with the site profile, every
field with its source.

``fetch_page`` gets one page as a crawl would: the site's robots.txt read first (with Protego,
Scrapy's own robots.txt parser) and obeyed, the crawl's User-Agent, redirects followed on the same
host only, at most ``DOWNLOAD_MAXSIZE`` bytes. ``probe_html`` parses it with ``site.lists`` or
``site.articles`` (the crawl's own functions) and says, for each profile key, the value found,
the selector or fallback that found it, and whether a required key was found by a selector of
the profile at all.
Plain urllib: one request needs no reactor, and the command starts in a fraction of a second.
"""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from npi_crawler import settings as defaults
from npi_crawler.errors import CrawlError
from npi_crawler.site import NPI_HOSTS
from npi_crawler.site.articles import ParsedArticle, read_article
from npi_crawler.site.decoding import decode_page
from npi_crawler.site.lists import ListPage, next_page, parse_list_page
from npi_crawler.site.notes import FALLBACK, is_warning
from npi_crawler.site.profile import REQUIRED_ARTICLE_KEYS, REQUIRED_LIST_KEYS, Profile
from npi_crawler.site.urls import is_list_url

MAX_BYTES = defaults.DOWNLOAD_MAXSIZE
SHOWN_CHARS = 100  # a value longer than this is cut, with "…"
SHOWN_LINKS = 10  # entries and pagination links listed


@dataclass
class Page:
    url: str  # after redirects
    status: int
    body: bytes
    content_type: str | None

    @property
    def text(self) -> str:
        return decode_page(self.body, self.content_type)


def _robots(url: str, user_agent: str, timeout: float) -> object | None:
    """The site's robots.txt parsed (Protego), or None when there is none to obey: like Scrapy, a
    robots.txt that cannot be fetched allows everything, and an error page has no rules."""
    from protego import Protego

    parts = urlsplit(url)
    request = urllib.request.Request(f"{parts.scheme}://{parts.netloc}/robots.txt", headers={"User-Agent": user_agent})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Protego.parse(response.read(MAX_BYTES).decode("utf-8-sig", errors="ignore"))
    except (urllib.error.URLError, OSError, ValueError):
        return None


class _SameSiteRedirects(urllib.request.HTTPRedirectHandler):
    """Redirects within the page's site only, each checked against robots.txt, at most
    REDIRECT_MAX_TIMES of them (as the crawl's middlewares do)."""

    max_redirections = defaults.REDIRECT_MAX_TIMES

    def __init__(self, host: str, robots: object | None, user_agent: str):
        self.hosts = {host} | (set(NPI_HOSTS) if host in NPI_HOSTS else set())
        self.robots, self.user_agent = robots, user_agent

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if (urlsplit(newurl).hostname or "") not in self.hosts:
            raise CrawlError(f"{req.full_url} redirects off the site to {newurl}; probe that URL itself")
        _check_robots(self.robots, newurl, self.user_agent)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _check_robots(robots: object | None, url: str, user_agent: str) -> None:
    if robots is not None and not robots.can_fetch(url, user_agent):  # type: ignore[attr-defined]
        raise CrawlError(f"the site's robots.txt disallows {url} for this crawler; the crawl would not fetch it either")


def fetch_page(url: str, *, user_agent: str, timeout: float) -> Page:
    """One page, fetched as a crawl would fetch it; CrawlError (one line) when it cannot be."""
    if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
        raise CrawlError(f"{url!r} is not an http(s) URL")
    robots = _robots(url, user_agent, timeout)
    _check_robots(robots, url, user_agent)
    opener = urllib.request.build_opener(_SameSiteRedirects(urlsplit(url).hostname or "", robots, user_agent))
    request = urllib.request.Request(url, headers={"User-Agent": user_agent, "Accept-Encoding": "identity"})
    try:
        with opener.open(request, timeout=timeout) as response:
            body = response.read(MAX_BYTES + 1)
            page = Page(response.geturl(), response.status, body, response.headers.get("Content-Type"))
    except urllib.error.HTTPError as exc:
        raise CrawlError(f"{url} answered HTTP {exc.code}; check the URL (probe the list page it is on)") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise CrawlError(f"cannot fetch {url} ({reason}); check the URL and the network") from None
    if len(page.body) > MAX_BYTES:
        raise CrawlError(f"{url} is larger than {MAX_BYTES // 2**20} MiB (DOWNLOAD_MAXSIZE): not an NPI page")
    if page.content_type and "html" not in page.content_type.lower():
        raise CrawlError(f"{url} is not an HTML page (Content-Type {page.content_type})")
    return page


# -- the report -----------------------------------------------------------------------------------


@dataclass
class Field:
    key: str
    value: str  # shortened to one line; "" when nothing was found
    source: str  # the selector that found it, a fallback's note, or "" (nothing)
    required: bool = False

    @property
    def by_selector(self) -> bool:
        return bool(self.source) and not self.source.startswith(FALLBACK)

    @property
    def matched(self) -> bool:
        """Found by a selector of the profile (not by a fallback), with a value."""
        return self.by_selector and bool(self.value)


@dataclass
class Probe:
    url: str
    kind: str  # "list" or "article"
    fields: list[Field]
    notes: list[str]
    links: list[str] = field(default_factory=list)  # a list page's entries and pagination, shown

    @property
    def missed(self) -> list[str]:
        return [f.key for f in self.fields if f.required and not f.matched]


def shorten(text: str, limit: int = SHOWN_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def page_kind(url: str) -> str:
    """``list`` for a list page's URL (``.../index.html``, ``index_2.html``, ``.../``), else ``article``."""
    return "list" if is_list_url(url) else "article"


def probe_html(html: str, url: str, profile: Profile, kind: str | None = None) -> Probe:
    """What the crawl's parser finds on this page with ``profile``, field by field."""
    kind = kind or page_kind(url)
    if kind == "list":
        return _probe_list(parse_list_page(html, url, profile), url)
    return _probe_article(read_article(html, url, profile))


def _probe_list(listing: ListPage, url: str) -> Probe:
    numbered = re.search(r"_(\d+)\.html?$", urlsplit(url).path)
    current = int(numbered[1]) if numbered else 1
    following = next_page(listing, url, current)
    fields = [
        Field("list_entry", f"{len(listing.entries)} entries" if listing.entries else "", listing.sources.get("list_entry", ""), True),
        Field(
            "pagination",
            f"{len(listing.pages)} link(s); next page: {following or 'none'}" if listing.pages else "",
            listing.sources.get("pagination", ""),
        ),
    ]
    links = [f"entry  {u}" for u in listing.entries[:SHOWN_LINKS]]
    if len(listing.entries) > SHOWN_LINKS:
        links.append(f"entry  ... and {len(listing.entries) - SHOWN_LINKS} more")
    links += [f"page   {label or '?'}  {target}" for label, target in listing.pages[:SHOWN_LINKS]]
    links += [f"unreadable link skipped: {shorten(href, 80)}" for href in listing.bad_links[:SHOWN_LINKS]]
    return Probe(url, "list", fields, listing.notes, links)


def _probe_article(parsed: ParsedArticle) -> Probe:
    src, article = parsed.sources, parsed.record
    body = f"{len(article.body)} characters: {shorten(article.body)}" if article.body else ""
    authors = "; ".join(f"{name} <{url or 'unreadable link'}>" for name, url in article.authors)
    fields = [
        Field("article", "the whole page" if src.get("article", "").startswith(FALLBACK) else "found", src.get("article", ""), True),
        Field("title", shorten(article.title or ""), src.get("title", ""), True),
        Field("date", article.published or "", src.get("date", ""), True),
        Field("body", body, src.get("body", ""), True),
        Field("pdf_link", shorten(", ".join(article.pdfs)), src.get("pdf_link", "")),
        Field("author_link", shorten(authors), src.get("author_link", "")),
        Field("author_name", shorten(", ".join(name for name, _ in article.authors)), src.get("author_name", "")),
    ]
    return Probe(article.url, "article", fields, list(article.notes))


def _source_line(f: Field, profile: Profile) -> str:
    """Where a field's value came from, or why there is none."""
    miss = "MISS" if f.required else "none"
    if f.matched:
        return f"from {f.source!r}"
    if f.by_selector:
        return f"{miss}: {f.source!r} matched, but gave nothing"
    tried = ", ".join(repr(t) for t in profile.texts(f.key)) or "no selector"
    if f.source:
        return f"{miss if f.required else 'fallback'}: no selector of '{f.key}' matched (tried {tried}); {f.source} gave the value"
    return f"{miss}: no selector of '{f.key}' matched (tried {tried})"


def format_probe(probe: Probe, profile: Profile, *, fetched: str = "") -> list[str]:
    """The report, one field per line and its source on the next."""
    lines = [f"{probe.kind} page {probe.url}" + (f" ({fetched})" if fetched else "")]
    for f in probe.fields:
        lines.append(f"  {f.key:<12} {f.value or '(nothing)'}")
        lines.append(f"  {'':<12}   {_source_line(f, profile)}")
    if probe.kind == "article":
        lines.append(f"  {'drop':<12} {', '.join(profile.texts('drop')) or '(nothing)'} (left out of the body)")
    lines += [f"  {line}" for line in probe.links]
    # Warnings ask a person to act; notes (documented fallbacks...) are only counted (site.notes).
    warnings = [n for n in probe.notes if is_warning(n)]
    lines.append(f"  {'notes':<12} {', '.join(n for n in probe.notes if not is_warning(n)) or 'none'}")
    lines.append(f"  {'warnings':<12} {', '.join(warnings) or 'none'}")
    required = REQUIRED_LIST_KEYS if probe.kind == "list" else REQUIRED_ARTICLE_KEYS
    verdict = f"missed: {', '.join(probe.missed)}" if probe.missed else "all found by the profile's selectors"
    lines.append(f"  {'required':<12} {', '.join(required)}: {verdict}")
    return lines
