"""One run at a time per archive: an OS file lock on ``<db>.lock``.

``run_lock(db_path)`` takes a non-blocking ``flock`` on the lock file beside the archive and holds it
for the whole run. A second run on the same archive gets ``RunLocked`` at once (the CLI turns that
into one line and exit code 75, ``EX_TEMPFAIL``: try again later). The kernel releases the lock when
the process ends, however it ends, so a killed run never leaves a stale lock behind; the file itself
stays (it is empty but for who holds it) and is harmless.

The same context manager serves every command that writes the archive (``crawl``, ``watch``,
``notify``): they exclude each other, while readers (``export``, Datasette, ``sqlite3``) need no lock
because the archive is in WAL mode. ``RunLockExtension`` takes the same lock for crawls started by
plain Scrapy or Scrapyd (npi_crawler.extensions), unless this process already holds it (the CLI does).
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from npi_crawler.archive.db import disk_full_message, utcnow
from npi_crawler.errors import LockUnavailable, RunLocked

# Lock files this process holds now: Scrapy's extension must not lock again what the CLI holds
# (two flocks of one process on two descriptors of a file exclude each other).
_HELD: set[str] = set()


def lock_path(db_path: str | os.PathLike) -> Path:
    """``<archive>.lock`` beside the archive's real file: two paths (symlinks, ``./``) to one
    archive share one lock."""
    return Path(os.path.realpath(db_path) + ".lock")


def _open(path: Path) -> int:
    try:
        # O_NOFOLLOW: a symlink planted at the lock's name must not make us truncate its target.
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except FileNotFoundError:
        raise LockUnavailable(
            f"the folder {path.parent} does not exist; create it or choose another --db"
        ) from None
    except OSError as exc:
        raise LockUnavailable(_open_error(path, exc)) from None


def _open_error(path: Path, exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return f"the run lock {path} is a symbolic link; remove it and run again"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return _disk_full(path, exc)
    if exc.errno in (errno.EACCES, errno.EPERM) and path.exists():
        info = path.lstat()
        return (
            f"the run lock {path} cannot be opened for writing ({exc.strerror}; owner uid {info.st_uid}, "
            f"mode {stat.S_IMODE(info.st_mode):04o}); remove it, or run as the user who owns it"
        )
    if exc.errno == errno.EISDIR:
        return f"the run lock {path} is a directory; remove it and run again"
    return f"cannot create the run lock {path} ({exc.strerror})"


def lock_problem(db_path: str | os.PathLike) -> str | None:
    """Why a run could not take the run lock of ``db_path`` (its file cannot be opened for
    writing: another user's, a symbolic link, a directory), in the words the run would use; None
    when it can. Creates nothing: doctor's check."""
    path = lock_path(db_path)
    try:
        os.close(os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC))
    except FileNotFoundError:
        return None  # the first run creates it (doctor checks the folder is writable)
    except OSError as exc:
        return _open_error(path, exc)
    return None


def _disk_full(path: str | os.PathLike, exc: OSError) -> str:
    return disk_full_message(path, exc.strerror or "no space left")


def _holder(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        return os.read(fd, 500).decode("utf-8", "replace").strip()
    except OSError:
        return ""


def _write_holder(fd: int, db_path: str | os.PathLike, command: str) -> None:
    """Who holds the lock, for the run that is refused. A disk too full for these few bytes is too
    full for the run's first write: one line now rather than a traceback later."""
    started = utcnow()
    try:
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"pid {os.getpid()}, {command} since {started}\n".encode())
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise LockUnavailable(_disk_full(db_path, exc)) from None
        raise LockUnavailable(f"cannot write the run lock {lock_path(db_path)} ({exc.strerror})") from None


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
        _write_holder(fd, db_path, command)
        _HELD.add(str(path))
        try:
            yield path
        finally:
            _HELD.discard(str(path))
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
    return str(lock_path(db_path)) in _HELD
