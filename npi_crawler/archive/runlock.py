"""One run at a time per archive: an OS file lock on ``<db>.lock`` and on the archive file itself.

``run_lock(db_path)`` takes a non-blocking ``flock`` on the lock file beside the archive, then on the
archive file (its device and inode: a hard link of the archive in another folder has another lock
file, but the same file), and holds both for the whole run. A second run on the same archive gets ``RunLocked`` at once (the CLI turns that
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
# Descriptors of archive files whose close waits until SQLite lets go of the file (_release).
_DEFERRED: list[int] = []


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


def _open_archive(db_path: str | os.PathLike) -> int | None:
    """The archive file itself, read-only (None while it does not exist: the first run of a new
    archive holds the lock file only). Never created here, never followed if a symbolic link is
    planted there after ``realpath``, never waited on (a FIFO)."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        return os.open(os.path.realpath(db_path), flags)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise LockUnavailable(f"cannot open {os.fspath(db_path)} to lock it ({exc.strerror})") from None


def _same_file_open_elsewhere(fd: int) -> bool:
    """Whether another descriptor of this process (one of SQLite's) refers to ``fd``'s file.
    True when the process's descriptors cannot be listed: keeping one open is harmless."""
    info = os.fstat(fd)
    for folder in ("/proc/self/fd", "/dev/fd"):
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            other = int(name)
            if other == fd or other in _DEFERRED:
                continue
            try:
                found = os.stat(f"{folder}/{name}")
            except OSError:  # closed meanwhile, or the listing's own descriptor
                continue
            if (found.st_dev, found.st_ino) == (info.st_dev, info.st_ino):
                return True
        return False
    return True


def _release(fd: int) -> None:
    """Close ``fd``, a descriptor of the archive file, once SQLite has let go of the file: closing
    any descriptor of a file drops every POSIX lock the process holds on it, SQLite's own among
    them (the read lock that keeps another process from deleting the WAL under this one). Until
    then it stays open, unlocked, and a later call closes it (as SQLite's unix VFS does)."""
    _DEFERRED.append(fd)
    for held in list(_DEFERRED):
        if not _same_file_open_elsewhere(held):
            _DEFERRED.remove(held)
            os.close(held)


def _lock_archive(db_path: str | os.PathLike) -> int | None:
    """An exclusive flock on the archive file itself, or RunLocked: another run holds it through
    another name of the file (a hard link), whose lock file is elsewhere."""
    fd = _open_archive(db_path)
    if fd is None:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        _release(fd)
        raise RunLocked(
            f"another npi-crawler run is using {os.fspath(db_path)} through another name of the same file "
            "(a hard link); this one exits without crawling"
        ) from None
    return fd


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

    Raises ``RunLocked`` at once when another process holds it (through this name of the archive
    or another), ``LockUnavailable`` when the lock file cannot be created.
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
        try:
            archive = _lock_archive(db_path)
        except BaseException:
            fcntl.flock(fd, fcntl.LOCK_UN)
            raise
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
            if archive is not None:
                fcntl.flock(archive, fcntl.LOCK_UN)
                _release(archive)
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
        fd = None
    if fd is not None:
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return _holder(fd) or "another process"
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
    return _archive_holder(db_path)


def _archive_holder(db_path: str | os.PathLike) -> str | None:
    """"another process ..." when a run holds the archive file through another of its names."""
    try:
        archive = _open_archive(db_path)
    except LockUnavailable:
        return None
    if archive is None:
        return None
    try:
        fcntl.flock(archive, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return "another process, through another name of the same file (a hard link)"
    else:
        fcntl.flock(archive, fcntl.LOCK_UN)
    finally:
        _release(archive)
    return None


def held_here(db_path: str | os.PathLike) -> bool:
    """Whether this process holds the run lock of ``db_path``."""
    return str(lock_path(db_path)) in _HELD
