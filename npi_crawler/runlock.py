"""One run at a time per archive: an OS file lock on ``<db>.lock``.

``run_lock(db_path)`` takes a non-blocking ``flock`` on the lock file beside the archive and holds it
for the whole run. A second run on the same archive gets ``RunLocked`` at once (the CLI turns that
into one line and exit code 75, ``EX_TEMPFAIL``: try again later). The kernel releases the lock when
the process ends, however it ends, so a killed run never leaves a stale lock behind; the file itself
stays (it is empty but for who holds it) and is harmless.

The same context manager serves every command that writes the archive (``crawl``, ``watch``,
``notify``): they exclude each other, while readers (``export``, Datasette, ``sqlite3``) need no lock
because the archive is in WAL mode. ``RunLockExtension`` takes the same lock for crawls started by
plain Scrapy or Scrapyd, unless this process already holds it (the CLI does).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

EXIT_LOCKED = 75  # sysexits.h EX_TEMPFAIL: "temporary failure, try again later"


# Lock files this process holds now: Scrapy's extension must not lock again what the CLI holds
# (two flocks of one process on two descriptors of a file exclude each other).
_HELD: set[str] = set()


class RunLocked(Exception):
    """Another process holds the archive's run lock; the message is one line."""

    exit_code = EXIT_LOCKED


class LockUnavailable(Exception):
    """The lock file cannot be created (missing folder, no permission); one line."""


def lock_path(db_path: str | os.PathLike) -> Path:
    return Path(os.fspath(db_path) + ".lock")


def _open(path: Path) -> int:
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except FileNotFoundError:
        raise LockUnavailable(
            f"the folder {path.parent} does not exist; create it or choose another --db"
        ) from None
    except OSError as exc:
        raise LockUnavailable(f"cannot create the run lock {path} ({exc.strerror})") from None


def _holder(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        return os.read(fd, 500).decode("utf-8", "replace").strip()
    except OSError:
        return ""


@contextmanager
def run_lock(db_path: str | os.PathLike, command: str = "crawl") -> Iterator[Path]:
    """Hold the run lock of the archive at ``db_path`` for the ``with`` block.

    Raises ``RunLocked`` at once when another process holds it, ``LockUnavailable`` when the lock
    file cannot be created.
    """
    path = lock_path(db_path)
    fd = _open(path)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            raise RunLocked(
                f"another npi-crawler run is using {os.fspath(db_path)}"
                + (f" ({holder})" if holder else "")
                + "; this one exits without crawling"
            ) from None
        started = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"pid {os.getpid()}, {command} since {started}\n".encode())
        _HELD.add(str(path.resolve()))
        try:
            yield path
        finally:
            _HELD.discard(str(path.resolve()))
            try:
                os.ftruncate(fd, 0)
            except OSError:
                pass
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def lock_holder(db_path: str | os.PathLike) -> str | None:
    """Who holds the run lock now (e.g. ``pid 123, crawl since ...``), or None when nobody does.

    Checks without waiting and without creating the lock file. Note that a process holding the
    lock sees it as held by itself.
    """
    path = lock_path(db_path)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _holder(fd) or "another process"
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def held_here(db_path: str | os.PathLike) -> bool:
    """Whether this process holds the run lock of ``db_path``."""
    return str(lock_path(db_path).resolve()) in _HELD


class RunLockExtension:
    """Scrapy extension: the run lock for crawls not started by ``npi-crawler`` (``scrapy crawl npi``,
    Scrapyd jobs). When another run holds the lock, the crawl does not start: the error is logged
    and the process ends without touching the archive. Off with ``NPI_RUN_LOCK = False``."""

    def __init__(self, db_path: str):
        self._lock = run_lock(db_path, "scrapy crawl")
        self._lock.__enter__()  # raises RunLocked: the crawler is not built, nothing is stored

    @classmethod
    def from_crawler(cls, crawler: Any) -> RunLockExtension:
        from scrapy import signals
        from scrapy.exceptions import NotConfigured

        db_path = crawler.settings.get("NPI_DB_PATH")
        if not crawler.settings.getbool("NPI_RUN_LOCK", True) or not db_path or held_here(db_path):
            raise NotConfigured
        try:
            ext = cls(db_path)
        except (RunLocked, LockUnavailable) as exc:
            import logging

            logging.getLogger(__name__).error("%s", exc)
            raise
        crawler.signals.connect(ext.release, signal=signals.engine_stopped)
        return ext

    def release(self) -> None:
        self._lock.__exit__(None, None, None)
