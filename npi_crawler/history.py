"""An article's stored versions and the unified diffs between them (from ``revisions``)."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass

from npi_crawler.parsing import canonical_url
from npi_crawler.storage import Archive, ArchiveError


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

    def lines(self) -> list[str]:
        """The version as text lines, for diffing: header fields, then one line per block."""
        head = [
            f"title: {self.title or ''}",
            f"published: {self.published or ''}",
            f"authors: {', '.join(self.authors)}",
            f"pdfs: {' '.join(self.pdfs)}",
            "",
        ]
        return head + [b for b in self.body.split("\n\n")]


def versions(archive: Archive, url: str) -> list[Version]:
    """Every stored version of the article at ``url``, oldest first, the current one last."""
    row = archive.db.execute(
        "SELECT url, title, published, body, first_seen, last_changed, removed_at FROM articles "
        "WHERE url = ? OR url = ?",
        [url, canonical_url(url)],
    ).fetchone()
    if row is None:
        raise ArchiveError(
            f"no article with the URL {url} in {archive.path}; check it with 'npi-crawler search'"
        )
    url, title, published, body, first_seen, last_changed, _removed = row
    out: list[Version] = []
    stored = first_seen
    for rev in archive.db.execute(
        "SELECT run_id, replaced_at, title, published, body, pdfs, authors FROM revisions "
        "WHERE article_url = ? ORDER BY id",
        [url],
    ):
        run_id, replaced_at, r_title, r_published, r_body, pdfs, authors = rev
        out.append(
            Version(
                len(out) + 1,
                stored,
                replaced_at,
                run_id,
                r_title,
                r_published,
                r_body or "",
                json.loads(pdfs or "[]"),
                json.loads(authors or "[]"),
            )
        )
        stored = replaced_at
    pdfs = [
        r[0]
        for r in archive.db.execute("SELECT url FROM pdfs WHERE article_url = ? ORDER BY position", [url])
    ]
    authors = [
        r[0]
        for r in archive.db.execute("SELECT name FROM authors WHERE article_url = ? ORDER BY position", [url])
    ]
    out.append(
        Version(
            len(out) + 1,
            stored if out else first_seen,
            None,
            None,
            title,
            published,
            body or "",
            pdfs,
            authors,
        )
    )
    return out


def diff(old: Version, new: Version, url: str = "") -> list[str]:
    return list(
        difflib.unified_diff(
            old.lines(),
            new.lines(),
            fromfile=f"version {old.number} ({old.stored})",
            tofile=f"version {new.number} ({new.stored})",
            lineterm="",
        )
    )


def format_history(archive: Archive, url: str) -> str:
    found = versions(archive, url)
    removed = archive.db.execute(
        "SELECT removed_at, removed_status FROM articles WHERE url = ? OR url = ?", [url, canonical_url(url)]
    ).fetchone()
    lines = [f"{url}: {len(found)} version{'s' if len(found) != 1 else ''}"]
    if removed and removed[0]:
        lines.append(f"removed from the site at {removed[0]} (HTTP {removed[1]})")
    for v in found:
        state = "current" if v.replaced is None else f"replaced {v.replaced} by run {v.run_id}"
        lines.append(f"version {v.number}: stored {v.stored}, {state}: {v.title}")
    for old, new in zip(found, found[1:], strict=False):
        lines.append("")
        lines.extend(diff(old, new))
    return "\n".join(lines)
