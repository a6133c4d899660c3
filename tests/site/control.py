"""Changing the replica while it is served: publish, edit and remove articles.

The same three operations serve the tests (in process, on ``ReplicaServer.site``), the benchmarks
and a person trying the watcher offline: ``python -m tests.site publish|edit|remove`` posts them to
a running replica's control endpoint, ``POST /__replica__/<operation>`` with a JSON body. The
crawler never sees that endpoint (no page links to it) and robots.txt is unchanged.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from .model import SECTIONS, Article, Site, add_unique, make_article

CONTROL_PREFIX = "/__replica__/"
OPERATIONS = ("publish", "edit", "remove")


class ControlError(ValueError):
    """A control request the replica cannot carry out; the message says why (HTTP 400)."""


def _path_of(url_or_path: str) -> str:
    return urlsplit(url_or_path).path or url_or_path


def _date(text: str | None, site: Site) -> tuple[int, int, int]:
    """``YYYY-MM-DD`` (or ``YYYY/MM/DD``), else the day after the site's newest article."""
    if text:
        try:
            day = dt.date.fromisoformat(text.replace("/", "-"))
        except ValueError:
            raise ControlError(f"date {text!r} is not YYYY-MM-DD") from None
    else:
        newest = max((a.published for a in site.articles.values()), default="2026-01-01")
        day = dt.date.fromisoformat(newest) + dt.timedelta(days=1)
    return day.year, day.month, day.day


def publish(
    site: Site,
    *,
    lang: str = "ja",
    sections: list[str] | tuple[str, ...] = ("policy",),
    title: str | None = None,
    date: str | None = None,
    pdfs: int = 0,
    seed: int = 7,
) -> Article:
    """A new article on ``site``, dated ``date`` (default: after every other article, so it is
    first on its lists; an older date files it further down, as a back-dated article is)."""
    if lang not in ("ja", "en"):
        raise ControlError(f"lang {lang!r} is not ja or en")
    unknown = [s for s in sections if s not in SECTIONS]
    if not sections or unknown:
        raise ControlError(f"sections must be some of {', '.join(SECTIONS)}")
    n = 5000 + len(site.articles)
    article = make_article(random.Random(seed * 100_003 + n), lang, n, _date(date, site), list(sections))
    if title:
        article.title = title
    prefix = "/en" if lang == "en" else ""
    article.pdfs = [f"{prefix}/research/data/{n:05d}{i}.pdf" for i in range(max(0, pdfs))]
    article.pdf_texts = {pdf: f"NPI report {n} page {i}" for i, pdf in enumerate(article.pdfs)}
    return add_unique(site, article)


def edit(site: Site, url: str, *, title: str | None = None, append: str | None = None) -> Article:
    """Change a live article's title and/or append a paragraph (a new ETag and Last-Modified)."""
    path = _path_of(url)
    if path not in site.articles or path in site.removed:
        raise ControlError(f"no live article at {path}")
    if title is None and append is None:
        raise ControlError("say what to change: a title, or a paragraph to append")
    return site.edit(path, title=title, append=append)


def remove(site: Site, url: str) -> Article:
    """Take an article off the site: its page answers 404 and it leaves every list."""
    path = _path_of(url)
    if path not in site.articles or path in site.removed:
        raise ControlError(f"no live article at {path}")
    site.remove(path)
    return site.articles[path]


def apply(site: Site, operation: str, fields: dict[str, Any]) -> Article:
    """One control request, as the endpoint receives it."""
    try:
        if operation == "publish":
            sections = fields.get("sections") or [fields.get("section") or "policy"]
            return publish(
                site,
                lang=fields.get("lang") or "ja",
                sections=list(sections),
                title=fields.get("title"),
                date=fields.get("date"),
                pdfs=int(fields.get("pdfs") or 0),
            )
        if operation == "edit":
            return edit(site, fields.get("url") or "", title=fields.get("title"), append=fields.get("append"))
        if operation == "remove":
            return remove(site, fields.get("url") or "")
    except (TypeError, KeyError) as exc:
        raise ControlError(f"bad request ({exc})") from None
    raise ControlError(f"unknown operation {operation!r}; use one of {', '.join(OPERATIONS)}")


def describe(article: Article, base_url: str) -> dict[str, Any]:
    return {
        "url": base_url.rstrip("/") + article.path,
        "title": article.title,
        "published": article.published,
        "sections": article.sections,
        "version": article.version,
    }


def send(replica_url: str, operation: str, fields: dict[str, Any], timeout: float = 10) -> dict[str, Any]:
    """Post one operation to a running replica; its answer (the article) as a dict. Raises
    ControlError with the replica's reason, or OSError when no replica answers."""
    request = urllib.request.Request(
        replica_url.rstrip("/") + CONTROL_PREFIX + operation,
        data=json.dumps({k: v for k, v in fields.items() if v is not None}).encode("utf-8"),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        raise ControlError(json.loads(exc.read() or b"{}").get("error") or f"HTTP {exc.code}") from None
