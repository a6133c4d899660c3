"""A crawl's writes in few transactions (issue 19).

One transaction per item wrote each article's B-tree pages and FTS5 segments to the WAL again at
every commit: a first crawl wrote 16-57 times what it left on disk. ``Batches`` holds one write
transaction open across many items and commits it every ``items`` items or ``seconds`` seconds
(and whenever its owner says: the end of the run, a stop). Each item's writes are one SAVEPOINT
inside it (the writers' own ``atomic()`` blocks nest there), so a failing item undoes only itself
and an open batch only ever holds whole items.

What a kill loses is the open batch: never half an item, and nothing the next run does not fetch
again (the spider reads what the archive holds when it starts). The owner (npi_crawler.runstate)
is the only writer of its connection during the crawl; other processes keep reading the last
committed state (WAL), and another writer waits at most ``seconds`` for the write lock.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

from npi_crawler.archive.db import ArchiveBase

A = TypeVar("A", bound=ArchiveBase)
# The connection that holds the batches keeps more pages in memory and lets its WAL grow further
# before a checkpoint copies it into the file: with SQLite's defaults (2 MiB, 1,000 pages) a batch
# spilled pages to the WAL and wrote them again, and each checkpoint rewrote the pages the next
# batch changed again. 5,000 articles (no WARC): 54 -> 39 MB written for a 15 MB archive.
CACHE_KIB = 16 * 1024
CHECKPOINT_PAGES = 4000


class Batches(Generic[A]):
    """Items written into ``archive`` in batches of at most ``items`` items or ``seconds`` seconds."""

    def __init__(
        self, archive: A, *, items: int, seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.archive = archive
        archive.conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        archive.conn.execute(f"PRAGMA wal_autocheckpoint = {CHECKPOINT_PAGES}")
        self.items = max(1, items)
        self.seconds = seconds
        self.clock = clock
        self.pending = 0  # items written in the open batch
        self.committed = 0  # batches committed so far
        self._opened = 0.0

    @contextmanager
    def item(self) -> Iterator[A]:
        """The writes of one item: in the open batch (begun here when none is), kept or undone
        together. The batch is committed after the item when it is full or old enough."""
        archive = self.archive
        if not archive.in_transaction:
            archive.begin()  # a lock held elsewhere past the busy timeout fails here
            self.pending, self._opened = 0, self.clock()
        with archive.atomic():
            yield archive
        self.pending += 1
        if self.due():
            self.commit()

    def due(self) -> bool:
        """The open batch is full, or older than ``seconds``."""
        if not self.archive.in_transaction:
            return False
        return self.pending >= self.items or self.clock() - self._opened >= self.seconds

    def commit(self) -> int:
        """Commit the open batch; returns how many items it held. A COMMIT that fails (a full
        disk) rolls the batch back and raises: ``settle`` then counts what was lost."""
        if not self.archive.in_transaction:
            return 0
        held = self.pending
        self.archive.commit()
        self.pending = 0
        self.committed += 1
        return held

    def settle(self) -> int:
        """After an error: how many committed-looking items SQLite has rolled back with the
        transaction (a COMMIT or a write that failed beyond its savepoint), counted once."""
        if self.archive.in_transaction:
            return 0
        lost, self.pending = self.pending, 0
        return lost
