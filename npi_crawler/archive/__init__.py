"""The archive: one SQLite file, its schema and every read and write of it.

This package is the only place with SQL. ``Archive`` joins one class per concern, all over one
connection: runs, articles, PDFs, the differ's events, the outbox, full-text queries and experts.

    with Archive.open("npi.db") as archive:               # created and migrated when needed
        archive.store_article(item, run_id=run_id)
    with Archive.open("npi.db", readonly=True) as archive:  # what read-only commands use
        rows = list(archive.iter_articles(langs=["en"]))
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from npi_crawler.archive.alertdata import AlertData
from npi_crawler.archive.articles import ArticleStore, StoreResult, article_filters, content_hash
from npi_crawler.archive.checks import CheckStore
from npi_crawler.archive.db import BUSY_TIMEOUT_MS, integrity_check, utcnow
from npi_crawler.archive.events import EventStore
from npi_crawler.archive.experts import ExpertStore
from npi_crawler.archive.fulltext import FullText
from npi_crawler.archive.migrations import (
    MIGRATIONS,
    SCHEMA_VERSION,
    applied_migrations,
    check_readable,
    migrate_archive,
)
from npi_crawler.archive.outbox import Outbox
from npi_crawler.archive.pdfs import PdfStore
from npi_crawler.archive.runs import ParseHealth, RunStore
from npi_crawler.archive.warcrecords import WarcRecordStore
from npi_crawler.archive.watch import WatchStore
from npi_crawler.errors import ArchiveError

if TYPE_CHECKING:
    from typing_extensions import Self


class Archive(
    RunStore,
    ArticleStore,
    PdfStore,
    EventStore,
    WatchStore,
    Outbox,
    AlertData,
    FullText,
    WarcRecordStore,
    ExpertStore,
    CheckStore,
):
    """An NPI archive in one SQLite file. Open with ``Archive.open(path)``; use it in ``with``."""

    @classmethod
    def open(
        cls, path: str | os.PathLike, *, create: bool = True, migrate: bool = True, readonly: bool = False
    ) -> Self:
        """Open the archive at ``path``: created (unless ``create`` is False) and brought to this
        version's schema (unless ``migrate`` is False). ``readonly`` opens it without writing a
        byte (no creation, no migration): what read-only commands use; the schema is then checked
        instead of migrated (unless ``migrate`` is False: doctor examines any state).

        Raises ArchiveError when the file is missing, not an archive, or cannot be opened.
        """
        archive = cls.connect(path, create=create, readonly=readonly)
        try:
            if migrate and readonly:
                check_readable(archive, MIGRATIONS)
            elif migrate:
                migrate_archive(archive, MIGRATIONS)
        except BaseException:
            archive.close()
            raise
        return archive

    def applied_migrations(self) -> list[str]:
        return applied_migrations(self)

    def migrate(self) -> list[str]:
        return migrate_archive(self, MIGRATIONS)


__all__ = [
    "BUSY_TIMEOUT_MS",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Archive",
    "ArchiveError",
    "ParseHealth",
    "StoreResult",
    "article_filters",
    "content_hash",
    "integrity_check",
    "utcnow",
]
