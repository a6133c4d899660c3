"""Atom feeds per section, built with feedgen from the archive: any feed reader can follow NPI,
including the lists the site offers no feed for."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from urllib.parse import urljoin

from feedgen.feed import FeedGenerator

from npi_crawler.archive import Archive
from npi_crawler.constants import SECTION_NAMES
from npi_crawler.errors import ArchiveError

JST = dt.timezone(dt.timedelta(hours=9))
SUMMARY_CHARS = 400


def _when(published: str | None, first_seen: str) -> dt.datetime:
    """Midnight Japan time of the publication date; the first sighting when there is no date."""
    if published:
        return dt.datetime.fromisoformat(published).replace(tzinfo=JST)
    return dt.datetime.strptime(first_seen, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)


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
    # newest first by the entry's date (publication date, else first sighting)
    rows.sort(key=lambda r: _when(r["published"], r["first_seen"]), reverse=True)
    rows = rows[:limit]
    run = archive.last_run()
    base = (run or {}).get("base_url") or "https://npi.or.jp/"
    lang = langs[0] if len(langs) == 1 else None
    name_ja, name_en = SECTION_NAMES[section]
    list_url = urljoin(base, f"{'en/' if lang == 'en' else ''}research/{section}/index.html")

    fg = FeedGenerator()
    fg.id(list_url + (f"#{lang}" if lang else ""))
    title = name_en if lang == "en" else name_ja if lang == "ja" else f"{name_en} / {name_ja}"
    fg.title(f"Nakasone Peace Institute: {title}")
    fg.subtitle(f"Articles in NPI's {name_en} list, from the npi-crawler archive")
    fg.author({"name": "Nakasone Peace Institute (NPI)", "uri": "https://npi.or.jp/"})
    fg.link(href=list_url, rel="alternate")
    fg.generator("npi-crawler")
    if lang:
        fg.language(lang)
    newest = max((_when(r["published"], r["first_seen"]) for r in rows), default=None)
    fg.updated(newest or dt.datetime.now(dt.timezone.utc))
    for row in rows:
        entry = fg.add_entry(order="append")
        entry.id(row["url"])
        entry.title(row["title"] or row["url"])
        entry.link(href=row["url"], rel="alternate")
        when = _when(row["published"], row["first_seen"])
        entry.updated(when)
        entry.published(when)
        entry.summary(summary(row["body"]) or row["title"])
        for author in row["authors"]:
            entry.author({"name": author})
        for slug in row["sections"]:
            entry.category(term=slug, label=SECTION_NAMES.get(slug, (slug, slug))[1])
    return fg.atom_str(pretty=True)
