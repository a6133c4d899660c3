"""Atom feeds per section or per watcher rule, built with feedgen from the archive: any feed reader
can follow NPI, including the lists the site offers no feed for."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from feedgen.feed import FeedGenerator

from npi_crawler.archive import Archive
from npi_crawler.archive.db import parse_stamp
from npi_crawler.errors import ArchiveError
from npi_crawler.monitor.messages import match_line
from npi_crawler.rules.model import Rule
from npi_crawler.site import SECTION_NAMES
from npi_crawler.site.urls import list_url

JST = dt.timezone(dt.timedelta(hours=9))
SUMMARY_CHARS = 400

# What XML 1.0 refuses (outside its Char production: control characters, surrogates, U+FFFE,
# U+FFFF) and the other noncharacters Unicode reserves (U+FDD0-U+FDEF, the last two of every
# plane): one such character in a title made lxml refuse the whole feed.
_NONCHARACTERS = "".join(chr(plane << 16 | 0xFFFE) + chr(plane << 16 | 0xFFFF) for plane in range(1, 17))
_NOT_XML = re.compile(f"[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]|[\ufdd0-\ufdef{_NONCHARACTERS}]")


def xml_safe(text: str | None) -> str:
    """The XML gate: ``text`` without the characters an XML document cannot hold (see above).
    Every text the feed and the Datasette pages' meta tags write passes through it."""
    return _NOT_XML.sub("", text or "")


def _when(published: str | None, first_seen: str) -> dt.datetime:
    """Midnight Japan time of the publication date; the first sighting when there is no date."""
    if published:
        return dt.datetime.fromisoformat(published).replace(tzinfo=JST)
    return parse_stamp(first_seen) or dt.datetime.now(dt.timezone.utc)


def summary(body: str | None, limit: int = SUMMARY_CHARS) -> str:
    """The body's first paragraphs, cut at about ``limit`` characters."""
    out = ""
    for block in (body or "").split("\n\n"):
        block = block.strip()
        if not block:
            continue
        if out and len(out) + len(block) > limit:
            break
        out = f"{out}\n\n{block}" if out else block
    return out if len(out) <= limit else out[:limit].rstrip() + "…"


def build_feed(archive: Archive, section: str, *, langs: Iterable[str] = (), limit: int = 50) -> bytes:
    """The Atom document for ``section``: its ``limit`` newest articles, newest first."""
    if section not in SECTION_NAMES:
        raise ArchiveError(f"unknown section {section!r}; choose from {', '.join(SECTION_NAMES)}")
    langs = list(langs)
    rows = list(archive.iter_articles(sections=[section], langs=langs))
    base = _base_url(archive)
    lang = langs[0] if len(langs) == 1 else None
    name_ja, name_en = SECTION_NAMES[section]
    link = list_url(base, lang or "ja", section)
    title = name_en if lang == "en" else name_ja if lang == "ja" else f"{name_en} / {name_ja}"
    return _atom(
        _newest(rows, limit),
        feed_id=link + (f"#{lang}" if lang else ""),
        title=f"Nakasone Peace Institute: {title}",
        subtitle=f"Articles in NPI's {name_en} list, from the npi-crawler archive",
        link=link,
        lang=lang,
    )


def build_rule_feed(archive: Archive, rule: Rule, *, langs: Iterable[str] = (), limit: int = 50) -> bytes:
    """The Atom document of a watcher rule: the ``limit`` newest articles it matches, each
    summary starting with where the first match is and the text around it."""
    from npi_crawler.rules.check import rule_matches

    langs = list(langs)
    matches = rule_matches(archive, rule, langs=langs, limit=limit)
    lines = {doc.url: match_line(match) for doc, match in matches}
    rows = [r for r in archive.iter_articles(langs=langs) if r["url"] in lines]
    base = _base_url(archive)
    terms = ", ".join(rule.any + rule.all)
    return _atom(
        _newest(rows, limit),
        feed_id=f"{base}#npi-crawler-rule={quote(rule.name)}",
        title=f"Nakasone Peace Institute: rule {rule.name}",
        subtitle=f"Articles matching the watcher rule {rule.name!r} ({terms}), from the npi-crawler archive",
        link=base,
        lang=langs[0] if len(langs) == 1 else None,
        lead=lines,
    )


def _base_url(archive: Archive) -> str:
    run = archive.last_run()
    return (run or {}).get("base_url") or "https://npi.or.jp/"


def _newest(rows: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """Newest first by the entry's date (publication date, else first sighting)."""
    return sorted(rows, key=lambda r: _when(r["published"], r["first_seen"]), reverse=True)[:limit]


def _atom(
    rows: list[dict[str, Any]],
    *,
    feed_id: str,
    title: str,
    subtitle: str,
    link: str,
    lang: str | None,
    lead: dict[str, str] | None = None,
) -> bytes:
    """An Atom document of export-shaped ``rows``; ``lead`` puts a line before an entry's summary."""
    fg = FeedGenerator()
    fg.id(xml_safe(feed_id))
    fg.title(xml_safe(title))
    fg.subtitle(xml_safe(subtitle))
    fg.author({"name": "Nakasone Peace Institute (NPI)", "uri": "https://npi.or.jp/"})
    fg.link(href=link, rel="alternate")
    fg.generator("npi-crawler")
    if lang:
        fg.language(lang)
    newest = max((_when(r["published"], r["first_seen"]) for r in rows), default=None)
    fg.updated(newest or dt.datetime.now(dt.timezone.utc))
    for row in rows:
        entry = fg.add_entry(order="append")
        url = xml_safe(row["url"])
        entry.id(url)
        entry.title(xml_safe(row["title"] or row["url"]))
        entry.link(href=url, rel="alternate")
        when = _when(row["published"], row["first_seen"])
        entry.updated(when)
        entry.published(when)
        text = summary(row["body"]) or row["title"]
        entry.summary(xml_safe(f"{lead[row['url']]}\n\n{text}" if lead and row["url"] in lead else text))
        for author in row["authors"]:
            entry.author({"name": xml_safe(author)})
        for slug in row["sections"]:
            entry.category(term=slug, label=SECTION_NAMES.get(slug, (slug, slug))[1])
    return fg.atom_str(pretty=True)
