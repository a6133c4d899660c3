"""What ``npi-crawler probe`` (cli/probing.py) shows: one page read with the site profile, every
field with its source.

``fetch_page`` gets one page as a crawl would: the site's robots.txt read first (with Protego,
Scrapy's own robots.txt parser) and obeyed, the crawl's User-Agent, redirects followed on the same
host and to http(s) only, at most ``DOWNLOAD_MAXSIZE`` bytes, all within one deadline. ``probe_html`` parses it with ``site.lists`` or
``site.articles`` (the crawl's own functions) and says, for each profile key, the value found,
the selector or fallback that found it, and whether a required key was found by a selector of
the profile at all.
Plain urllib: one request needs no reactor, and the command starts in a fraction of a second.
"""

from __future__ import annotations

import http.client
import re
import socket
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from npi_crawler import settings as defaults
from npi_crawler.errors import CrawlError
from npi_crawler.site import NPI_HOSTS
from npi_crawler.site.articles import ParsedArticle, read_article
from npi_crawler.site.decoding import decode_page
from npi_crawler.site.lists import ListPage, next_page, parse_list_page
from npi_crawler.site.notes import FALLBACK, is_warning
from npi_crawler.site.profile import REQUIRED_ARTICLE_KEYS, REQUIRED_LIST_KEYS, Profile
from npi_crawler.site.urls import canonical_url, is_list_url

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


# -- the address ----------------------------------------------------------------------------------

_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@")


def shown(url: str) -> str:
    """``url`` as a message may show it: without a user name or password (``user:secret@``)."""
    return _USERINFO.sub(r"\1", url)


def url_problem(url: str) -> str | None:
    """Why ``url`` is not an address probe can fetch, or None: urllib reads a port of 99999 as
    another port and a bad IPv6 host as a traceback, so they are refused before any request."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "it cannot be read (an unclosed '[' of an IPv6 address?)"
    if parts.scheme not in ("http", "https"):
        return "it is not an http(s) URL"
    try:
        port = parts.port
    except ValueError:  # 99999, 8x
        port = 0
    if port == 0:
        return "its port is not a number from 1 to 65535"
    if not parts.hostname:
        return "it names no host"
    return None


# -- one deadline for the whole fetch -------------------------------------------------------------


class Deadline:
    """``--timeout`` as a bound on everything a probe fetches (robots.txt, redirects, the page).

    A socket's timeout bounds each read, and a server sending one byte a second answers every
    read in time: it ran past --timeout 10 for minutes. At the deadline a timer shuts every
    connection of the fetch down, and whatever was waiting on one returns at once."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        self.expired = False
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        with self._lock:
            for sock in self._sockets:
                sock.close()
            self._sockets.clear()

    def remaining(self) -> float:
        return max(0.001, self.at - time.monotonic())

    def connect(self, address: Any, timeout: Any = None, source_address: Any = None) -> socket.socket:
        """``socket.create_connection`` within the deadline, and watched until it ends."""
        sock = socket.create_connection(address, self.remaining(), source_address)
        with self._lock:
            # A copy of the descriptor: TLS takes the original over (it detaches it), the
            # connection stays one, and a shutdown through either ends it.
            self._sockets.append(sock.dup())
            if self.expired:
                self._shutdown(self._sockets[-1])
        return sock

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                self._shutdown(sock)

    @staticmethod
    def _shutdown(sock: socket.socket) -> None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:  # closed already
            pass

    def error(self, url: str) -> CrawlError:
        return CrawlError(
            f"{shown(url)} did not answer in full within {self.seconds:g} s (--timeout); "
            "try again later or give a longer --timeout"
        )


class _WithinDeadline:
    """A urllib handler's connections made through ``Deadline.connect``."""

    deadline: Deadline

    def do_open(self, http_class: Any, req: Any, **kwargs: Any) -> Any:
        def connection(*args: Any, **kw: Any) -> http.client.HTTPConnection:
            conn = http_class(*args, **{**kw, "timeout": self.deadline.remaining()})
            conn._create_connection = self.deadline.connect  # the one seam http.client offers
            return conn

        return super().do_open(connection, req, **kwargs)  # type: ignore[misc]


class _HTTPHandler(_WithinDeadline, urllib.request.HTTPHandler):
    pass


class _HTTPSHandler(_WithinDeadline, urllib.request.HTTPSHandler):
    pass


def _opener(deadline: Deadline, *handlers: urllib.request.BaseHandler) -> urllib.request.OpenerDirector:
    plain, tls = _HTTPHandler(), _HTTPSHandler()
    plain.deadline = tls.deadline = deadline
    return urllib.request.build_opener(plain, tls, *handlers)


# -- the fetch ------------------------------------------------------------------------------------


def _robots(url: str, user_agent: str, deadline: Deadline) -> object | None:
    """The site's robots.txt parsed (Protego), or None when there is none to obey: like Scrapy, a
    robots.txt that cannot be fetched allows everything, and an error page has no rules. One that
    has not come by the deadline ends the probe: its rules are unknown."""
    from protego import Protego

    parts = urlsplit(url)
    request = urllib.request.Request(f"{parts.scheme}://{parts.netloc}/robots.txt", headers={"User-Agent": user_agent})
    try:
        with _opener(deadline).open(request, timeout=deadline.remaining()) as response:
            return Protego.parse(response.read(MAX_BYTES).decode("utf-8-sig", errors="ignore"))
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException):
        if deadline.expired:
            raise deadline.error(url) from None
        return None


class _SameSiteRedirects(urllib.request.HTTPRedirectHandler):
    """Redirects within the page's site and to http(s) only, each checked against robots.txt, at
    most REDIRECT_MAX_TIMES of them (as the crawl's middlewares do)."""

    max_redirections = defaults.REDIRECT_MAX_TIMES

    def __init__(self, host: str, robots: object | None, user_agent: str):
        self.hosts = {host} | (set(NPI_HOSTS) if host in NPI_HOSTS else set())
        self.robots, self.user_agent = robots, user_agent

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if url_problem(newurl):  # urllib would follow ftp: on the same host
            raise CrawlError(f"{shown(req.full_url)} redirects to {shown(newurl)}, which is not http(s); the crawl would not follow it")
        if (urlsplit(newurl).hostname or "") not in self.hosts:
            raise CrawlError(f"{shown(req.full_url)} redirects off the site to {shown(newurl)}; probe that URL itself")
        _check_robots(self.robots, newurl, self.user_agent)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _check_robots(robots: object | None, url: str, user_agent: str) -> None:
    if robots is not None and not robots.can_fetch(url, user_agent):  # type: ignore[attr-defined]
        raise CrawlError(f"the site's robots.txt disallows {shown(url)} for this crawler; the crawl would not fetch it either")


def fetch_page(url: str, *, user_agent: str, timeout: float) -> Page:
    """One page, fetched as a crawl would fetch it (its canonical URL: no user name or password,
    no query on a page), all of it within ``timeout`` seconds; CrawlError (one line) when it
    cannot be."""
    if problem := url_problem(url):
        raise CrawlError(f"{shown(url)!r} is not a URL probe can fetch: {problem}")
    url = canonical_url(url)
    with Deadline(timeout) as deadline:
        robots = _robots(url, user_agent, deadline)
        _check_robots(robots, url, user_agent)
        opener = _opener(deadline, _SameSiteRedirects(urlsplit(url).hostname or "", robots, user_agent))
        request = urllib.request.Request(url, headers={"User-Agent": user_agent, "Accept-Encoding": "identity"})
        page, missing = _read(opener, request, deadline)
    if missing:
        raise CrawlError(
            f"{url} sent {len(page.body):,} of {len(page.body) + missing:,} bytes (Content-Length): "
            "the connection closed early; probe again"
        )
    if len(page.body) > MAX_BYTES:
        raise CrawlError(f"{url} is larger than {MAX_BYTES // 2**20} MiB (DOWNLOAD_MAXSIZE): not an NPI page")
    if page.content_type and "html" not in page.content_type.lower():
        raise CrawlError(f"{url} is not an HTML page (Content-Type {page.content_type})")
    return page


def _read(opener: urllib.request.OpenerDirector, request: urllib.request.Request, deadline: Deadline) -> tuple[Page, int]:
    """The page, and how many bytes its Content-Length promised that never came."""
    url = request.full_url
    try:
        with opener.open(request, timeout=deadline.remaining()) as response:
            body = response.read(MAX_BYTES + 1)
            page = Page(shown(response.geturl()), response.status, body, response.headers.get("Content-Type"))
            missing = (response.length or 0) if len(body) <= MAX_BYTES else 0
    except urllib.error.HTTPError as exc:
        raise CrawlError(f"{url} answered HTTP {exc.code}; check the URL (probe the list page it is on)") from None
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
        if deadline.expired:
            raise deadline.error(url) from None
        reason = getattr(exc, "reason", None) or exc
        raise CrawlError(f"cannot fetch {url} ({reason}); check the URL and the network") from None
    if deadline.expired and missing:
        raise deadline.error(url)
    return page, missing


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
