"""The archive's channel key: what makes a channel's id in ``deliveries`` unguessable.

The outbox must know which channel got which alert (exactly once per channel) without storing the
channel's URL, which holds its secrets. An unsalted hash of the URL was not enough: with the
redacted label (scheme and host), ``json://npiuser:hunter2@127.0.0.1:PORT/hook`` was recovered from
the column in 0.3 s of guessing. A channel's id is now an HMAC-SHA256, under a random key of this
archive, of the URL's digest (``channel_id``). The key lives OUTSIDE the database, in
``<archive>.channel-key`` beside it (mode 0600, 64 hex digits), so a copy of the database alone (a
backup, a file shared with a colleague, Datasette) reveals nothing testable.

The key is made when a channel first needs an id, or when migration 010 rekeys the ids an older
version stored. Keep it with the archive (backups, moves): without it, the channels' ids change,
and an alert a channel already had may be sent to it once more (docs/operations.md).
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import os
import secrets
import stat
from pathlib import Path

from npi_crawler.errors import ArchiveError

KEY_SUFFIX = ".channel-key"
_KEY_HEX = 64
_MEMORY_KEY = secrets.token_bytes(32)  # an archive in memory lives as long as this process


def key_path(db_path: str | os.PathLike) -> Path:
    """``<archive>.channel-key`` beside the archive's real file (a symbolic link to the archive
    finds the same key)."""
    return Path(os.path.realpath(db_path) + KEY_SUFFIX)


def channel_id(key: bytes, fingerprint: str) -> str:
    """A channel's id in ``deliveries``: 16 hex digits of HMAC-SHA256(key, the URL's digest)."""
    return hmac.new(key, fingerprint.encode(), hashlib.sha256).hexdigest()[:16]


def channel_key(db_path: str | os.PathLike, *, create: bool = True) -> bytes:
    """The archive's key, made (0600, never replacing another) when it has none yet; without
    ``create`` (a dry run writes nothing) a key of this process instead. Raises ArchiveError (one
    line) when it cannot be read or made, or is not a key."""
    if os.fspath(db_path) in ("", ":memory:"):
        return _MEMORY_KEY
    path = key_path(db_path)
    key = _read(path)
    if key is None:
        key = _make(path) if create else _MEMORY_KEY
    return key


def _read(path: Path) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ArchiveError(_open_error(path, exc)) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ArchiveError(f"the channel key {path} is not a regular file; remove it, or restore the key from a backup")
        text = os.read(fd, _KEY_HEX + 2).decode("ascii", "replace").strip()
    finally:
        os.close(fd)
    try:
        if len(text) != _KEY_HEX:
            raise ValueError
        return bytes.fromhex(text)
    except ValueError:
        raise ArchiveError(
            f"the channel key {path} is damaged (not {_KEY_HEX} hex digits); restore it from the backup of the archive"
        ) from None


def _open_error(path: Path, exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return f"the channel key {path} is a symbolic link; remove it and run again"
    if exc.errno in (errno.EACCES, errno.EPERM):
        info = path.lstat()
        return (
            f"the channel key {path} cannot be read ({exc.strerror}; owner uid {info.st_uid}); "
            "run as the user who owns the archive"
        )
    return f"cannot read the channel key {path} ({exc.strerror})"


def _make(path: Path) -> bytes:
    """A new key, written whole under a temporary name and linked into place: two processes
    making it at once both end up with the one that was linked first."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, (secrets.token_hex(_KEY_HEX // 2) + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            from npi_crawler.archive.db import disk_full_message

            raise ArchiveError(disk_full_message(path, exc.strerror or str(exc))) from None
        raise ArchiveError(f"cannot create the channel key {path} ({exc.strerror}); check the folder's permissions") from None
    finally:
        try:
            temporary.unlink()
        except OSError:
            pass
    key = _read(path)
    if key is None:
        raise ArchiveError(f"the channel key {path} was removed while it was made; run again")
    return key
