"""Reading a file a user names: the settings file, a rules file, an Apprise config file, a saved
page for ``probe --html``.

One reader for all of them, so that each refuses the same things in the same words (one line
naming the file, raised as the caller's error class), before anything else happens:

- only a regular file: a FIFO was a hang (its ``open`` waits for a writer), ``/dev/zero`` grew to
  24 GB in memory while ignoring Ctrl-C, and both were called "no such file" by the Apprise
  config check. The file is opened ``O_NONBLOCK`` (a FIFO's open returns at once) and its type
  checked on the open descriptor, so nothing is read from anything else;
- at most ``max_bytes``: a few read past the cap tell it apart from a file that fits;
- UTF-8, with or without the byte order mark Notepad writes by default (which TOML refused as
  "Invalid statement (at line 1, column 1)").

``open_regular`` is the same check for a binary file read in place (a WARC file).
"""

from __future__ import annotations

import os
import stat
from typing import BinaryIO

from npi_crawler.errors import NpiError

BOM = b"\xef\xbb\xbf"
_KINDS = {
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a directory",
}


def not_regular(path: str | os.PathLike) -> str | None:
    """What ``path`` is when it exists and is not a regular file ("a FIFO (named pipe)"), else
    None. Follows symbolic links, as opening it would."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return None
    return None if stat.S_ISREG(mode) else _KINDS.get(stat.S_IFMT(mode), "not a regular file")


def open_regular(path: str | os.PathLike, *, what: str, error: type[NpiError]) -> BinaryIO:
    """``path`` opened for reading in binary, when it is a regular file; otherwise ``error`` with
    one line saying what it is instead (``what`` names it: "settings file", "--config")."""
    shown = os.fspath(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise error(f"{what} {shown} does not exist") from None
    except PermissionError:
        raise error(f"{what} {shown} cannot be read (permission denied)") from None
    except OSError as exc:
        raise error(f"{what} {shown} cannot be opened ({exc.strerror})") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = _KINDS.get(stat.S_IFMT(mode), "not a regular file")
        raise error(f"{what} {shown} is {kind}, not a file; give the path of a file")
    return os.fdopen(fd, "rb")


def read_bytes(path: str | os.PathLike, *, what: str, error: type[NpiError], max_bytes: int) -> bytes:
    """The bytes of the regular file at ``path``, at most ``max_bytes``. Every failure is
    ``error`` with one line."""
    shown = os.fspath(path)
    with open_regular(path, what=what, error=error) as f:
        try:
            data = f.read(max_bytes + 1)
        except OSError as exc:
            raise error(f"{what} {shown} cannot be read ({exc.strerror})") from None
    if len(data) > max_bytes:
        raise error(f"{what} {shown} is larger than {max_bytes // 1000} KB; is it the right file?")
    return data


def read_text(path: str | os.PathLike, *, what: str, error: type[NpiError], max_bytes: int) -> str:
    """The text of the regular file at ``path``: at most ``max_bytes``, UTF-8 (a leading BOM
    dropped). Every failure is ``error`` with one line."""
    shown = os.fspath(path)
    data = read_bytes(path, what=what, error=error, max_bytes=max_bytes)
    try:
        return data.removeprefix(BOM).decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise error(f"{what} {shown} is not UTF-8 text (line {line}); save it as UTF-8") from None
