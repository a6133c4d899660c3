"""The site's URLs: one spelling per page, links read safely, the list pages' addresses.

Standard library only (no lxml): the archive's readers (``history``, ``cite``) canonicalize the
URL a user types with these functions, and must start fast.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import SplitResult, urljoin, urlsplit, urlunsplit

from npi_crawler.site import NPI_HOSTS
from npi_crawler.site.text import iso_date

_URL_DATE = re.compile(r"/(\d{4})/(\d{2})/(\d{2})\d{6}\.html?$")
# A list page: .../index.html, .../index_2.html or a folder (.../).
LIST_PAGE_PATH = re.compile(r"/index(?:_\d+)?\.html?$|/$")
# A page of the site: NPI is static files (Movable Type's output), so a query on a page changes
# nothing the server sends; a link with one (``….html?utm_source=list``) is the same article.
_PAGE_PATH = re.compile(r"\.html?$|/$", re.IGNORECASE)
# Parameters that say where a click came from, never which document: campaign tags (utm_*,
# Mailchimp's, HubSpot's, Marketo's) and the click ids of ad and social networks.
_TRACKING = re.compile(
    r"utm_\w*|fbclid|gclid|gclsrc|dclid|gbraid|wbraid|msclkid|yclid|twclid|ttclid|li_fat_id|igshid|"
    r"mc_cid|mc_eid|_ga|_gl|_hsenc|_hsmi|mkt_tok|oly_anon_id|oly_enc_id|vero_id|wickedid|s_cid",
    re.IGNORECASE,
)


def list_url(base_url: str, lang: str, section: str, page: int = 1) -> str:
    """The address of page ``page`` of ``section``'s article list in ``lang`` on the site at
    ``base_url`` (npi.or.jp or a replica): ``…/en/research/policy/index.html``, ``…/index_2.html``."""
    name = "index.html" if page == 1 else f"index_{page}.html"
    return urljoin(base_url, f"{'en/' if lang == 'en' else ''}research/{section}/{name}")


def path_of(url: str) -> str:
    """The URL's path, "" for a URL that cannot be read."""
    try:
        return urlsplit(url).path
    except ValueError:  # unbalanced IPv6 brackets: no path to read either
        return ""


def date_from_url(url: str) -> str | None:
    """The date in an article URL such as ``/research/2025/06/30150000.html``."""
    m = _URL_DATE.search(path_of(url))
    return iso_date(int(m[1]), int(m[2]), int(m[3])) if m else None


def lang_from_url(url: str) -> str:
    path = path_of(url)
    return "en" if path == "/en" or path.startswith("/en/") else "ja"


def is_list_url(url: str) -> bool:
    """A list page's URL: ``.../index.html``, ``.../index_2.html`` or a folder (``.../``)."""
    return bool(LIST_PAGE_PATH.search(path_of(url)))


def url_parts(url: str) -> SplitResult | None:
    """``urlsplit(url)`` with its port read, or None for a URL that cannot be read: a port out of
    range or not a number, unbalanced IPv6 brackets, anything else ``urllib`` refuses."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - reading it is the check: it raises on a bad port
    except ValueError:
        return None
    return parts


def _query(path: str, query: str) -> str:
    """What of ``query`` names the document at ``path``: nothing for a page (``_PAGE_PATH``),
    else every parameter but the tracking ones, in their order and spelling."""
    if not query or _PAGE_PATH.search(path):
        return ""
    return "&".join(p for p in query.split("&") if p and not _TRACKING.fullmatch(p.partition("=")[0]))


def canonical_url(url: str) -> str:
    """One spelling per page: lower-case host, ``www.npi.or.jp`` folded into ``npi.or.jp`` (and
    https for it), default ports, user names and fragments dropped, IPv6 hosts in brackets; the
    query of a page (``.html``, a folder) dropped, and tracking parameters (``utm_*``,
    ``fbclid``...) of any other URL, such as a PDF's.

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
    path = parts.path or "/"
    return urlunsplit((scheme, host, path, _query(path, parts.query), ""))


def site_url(url: str, base_url: str) -> str:
    """``url`` canonical, and when it is on the NPI hosts while ``base_url`` is not (a replica or
    mirror given as ``--base-url``), pointed at the base URL's host: such a site is crawled whole,
    even where a page links to npi.or.jp absolutely."""
    url = canonical_url(url)
    parts, base = url_parts(url), url_parts(base_url)
    if parts and base and parts.hostname in NPI_HOSTS and base.hostname not in NPI_HOSTS:
        return urlunsplit((base.scheme, base.netloc, parts.path, parts.query, ""))
    return url


def host_allowed(url: str, allowed_domains: Iterable[str]) -> bool:
    """The rule of Scrapy's OffsiteMiddleware: the URL's host is an allowed domain or under one.

    (Not ``scrapy.utils.url.url_is_from_any_domain``: it compares the netloc, port and user
    included, so ``127.0.0.1:8000`` would not be ``127.0.0.1``.)"""
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:  # a malformed URL is on no allowed host
        return False
    return bool(host) and any(host == d or host.endswith("." + d) for d in (d.lower() for d in allowed_domains))


def is_web_url(url: str) -> bool:
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
