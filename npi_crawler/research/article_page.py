"""What an article's page shows in Datasette (``npi-crawler serve``): its fields, its authors with
their positions, its PDFs, every stored version with what changed, and the citation meta tags of
its head. Read from the archive only; research/datasette_plugin renders it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from npi_crawler.archive import Archive
from npi_crawler.research.citations import highwire_tags, with_authors
from npi_crawler.research.history import Version, diff, versions
from npi_crawler.site import SECTION_NAMES

_FIELDS = (("title", "title"), ("published", "date"), ("authors", "authors"), ("pdfs", "PDFs"), ("body", "text"))


@dataclass
class ArticlePage:
    url: str
    lang: str
    title: str
    published: str | None
    sections: list[str]  # the lists it is on, named in the article's language
    paragraphs: list[str]
    authors: list[dict[str, Any]]  # name, profile_url, position, expert (its page is archived)
    pdfs: list[dict[str, Any]]  # url, status, pages
    versions: list[dict[str, Any]]  # number, stored, replaced, changed (field names), diff lines
    tags: list[tuple[str, str]]  # the Highwire citation_* meta tags
    first_seen: str
    last_seen: str
    removed_at: str | None = None
    served: bool = False  # a WARC record of the page exists (the page as served can be shown)


def changes(old: Version, new: Version) -> list[str]:
    """What differs between two versions, by field (title, date, authors, PDFs, text)."""
    return [label for name, label in _FIELDS if getattr(old, name) != getattr(new, name)]


def article_page(archive: Archive, url: str) -> ArticlePage | None:
    """The page of the article stored under ``url`` (its key), removed or not; None if none."""
    row = archive.find_article(url)
    if row is None:
        return None
    article = next(with_authors(archive, archive.iter_articles(url=url)))
    lang = "en" if row["lang"] == "en" else "ja"
    experts = archive.article_authors([url])[url]
    statuses = archive.pdf_statuses(article["pdfs"])
    found = versions(archive, url)
    history: list[dict[str, Any]] = [
        {"number": v.number, "stored": v.stored, "replaced": v.replaced, "title": v.title, "changed": [], "diff": []}
        for v in found
    ]
    for entry, old, new in zip(history[1:], found, found[1:], strict=False):
        entry.update(changed=changes(old, new), diff=diff(old, new))
    return ArticlePage(
        url=url,
        lang=row["lang"],
        title=row["title"] or url,
        published=row["published"],
        sections=[SECTION_NAMES[s][lang == "en"] if s in SECTION_NAMES else s for s in article["sections"]],
        paragraphs=[p for p in (row["body"] or "").split("\n\n") if p.strip()],
        authors=[
            {"name": a["name"], "profile_url": a["profile_url"], "position": a["title"], "expert": a["expert_name"] is not None}
            for a in experts
        ],
        pdfs=[{"url": u, "status": statuses.get(u, ("not fetched", None))[0], "pages": statuses.get(u, (None, None))[1]} for u in article["pdfs"]],
        versions=history,
        tags=highwire_tags(article),
        first_seen=row["first_seen"],
        last_seen=row["last_seen"],
        removed_at=row["removed_at"],
        served=archive.last_warc_response(url) is not None,
    )
