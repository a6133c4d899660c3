"""An article's stored versions and what changed between them (from ``revisions``): the same
diff as a ``--changes`` alert shows (monitor/changes.py)."""

from __future__ import annotations

from dataclasses import dataclass

from npi_crawler.archive import Archive
from npi_crawler.errors import ArchiveError
from npi_crawler.monitor.changes import compare
from npi_crawler.site.urls import canonical_url


@dataclass
class Version:
    number: int
    stored: str | None  # when this version was first stored
    replaced: str | None  # when a later version replaced it (None: the current one)
    run_id: int | None  # the run that replaced it
    title: str | None
    published: str | None
    body: str
    pdfs: list[str]
    authors: list[str]


def versions(archive: Archive, url: str) -> list[Version]:
    """Every stored version of the article at ``url``, oldest first, the current one last (the
    same rows as ``export --revisions``)."""
    row = archive.find_article(url, canonical_url(url))
    if row is None:
        raise ArchiveError(f"no article with the URL {url} in {archive.path}; check it with 'npi-crawler search'")
    return [
        Version(
            v["version"],
            v["stored_at"],
            v["replaced_at"],
            v["replaced_run_id"],
            v["title"],
            v["published"],
            v["body"] or "",
            v["pdfs"],
            v["authors"],
        )
        for v in archive.iter_versions(url=row["url"])
    ]


def diff(old: Version, new: Version) -> list[str]:
    """What changed from ``old`` to ``new``, as a ``--changes`` alert says it, under a heading."""
    heading = f"version {old.number} -> {new.number} (stored {new.stored} by run {old.run_id}):"
    return [
        heading,
        *(compare(old, new).lines() or ["(no change in the title, date, authors, PDFs or text)"]),
    ]


def format_history(archive: Archive, url: str) -> str:
    found = versions(archive, url)
    row = archive.find_article(url, canonical_url(url)) or {}
    lines = [f"{url}: {len(found)} version{'s' if len(found) != 1 else ''}"]
    if row.get("removed_at"):
        lines.append(f"removed from the site at {row['removed_at']} (HTTP {row['removed_status']})")
    for v in found:
        state = "current" if v.replaced is None else f"replaced {v.replaced} by run {v.run_id}"
        lines.append(f"version {v.number}: stored {v.stored}, {state}: {v.title}")
    for old, new in zip(found, found[1:], strict=False):
        lines.append("")
        lines.extend(diff(old, new))
    return "\n".join(lines)
