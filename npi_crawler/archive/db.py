"""Opening and closing the archive file, and its transactions.

``ArchiveBase`` holds one SQLite connection (autocommit mode: every write goes through
``atomic()``) and a ``sqlite_utils.Database`` over it for schema work. It is a context manager,
so callers write ``with Archive.open(path) as archive:`` and never close it by hand.

``atomic()`` nests as sqlite-utils' ``Database.atomic`` does: the outermost block is the
transaction, an inner one a SAVEPOINT, so a writer opens its own block whether or not its caller
holds a transaction (the differ's one diff, a crawl's batch) and is atomic either way. ``begin``
and ``commit`` hold one transaction across many writes for a caller that decides when it ends
(``archive.batches.Batches``: a crawl's items).

This module knows files and transactions, not the schema: ``preflight`` and the path checks of
``connect`` share their messages here; migrations.py holds the schema.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import sqlite_utils

from npi_crawler.archive.searchindex import register_functions
from npi_crawler.errors import ArchiveError
from npi_crawler.userfile import not_regular

if TYPE_CHECKING:
    from typing_extensions import Self

BUSY_TIMEOUT_MS = 30_000


STAMP = "%Y-%m-%dT%H:%M:%SZ"  # every time the archive stores: UTC, to the second


def stamp(when: dt.datetime) -> str:
    return when.strftime(STAMP)


def utcnow() -> str:
    return stamp(dt.datetime.now(dt.timezone.utc))


def parse_stamp(text: str | None) -> dt.datetime | None:
    """A time as the archive stores it, back to an aware datetime (None when empty or malformed)."""
    try:
        return dt.datetime.strptime(text, STAMP).replace(tzinfo=dt.timezone.utc) if text else None
    except ValueError:
        return None


def row_id(cur: sqlite3.Cursor) -> int:
    """The rowid an INSERT through ``cur`` gave its row."""
    if cur.lastrowid is None:
        raise sqlite3.InterfaceError("the statement inserted no row")
    return cur.lastrowid


def readonly_uri(path: str | os.PathLike) -> str:
    """A ``file:`` URI opening ``path`` read-only. The path is percent-encoded: a file name with
    ``#``, ``?`` or ``%`` would otherwise name another file (and SQLite would create it)."""
    return f"file:{quote(str(Path(path).resolve()), safe='/')}?mode=ro"


def integrity_check(path: str | os.PathLike, *, quick: bool = False) -> list[str]:
    """``PRAGMA integrity_check`` (or the faster ``quick_check``) on a read-only connection, which
    changes nothing in the file it examines: ``["ok"]`` when sound. Raises sqlite3.DatabaseError
    when the file cannot be read as SQLite at all."""
    conn = sqlite3.connect(readonly_uri(path), uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        return [r[0] for r in conn.execute("PRAGMA quick_check(1)" if quick else "PRAGMA integrity_check")]
    finally:
        conn.close()


def check_path(path: str, *, create: bool) -> None:
    """What a path must be before SQLite opens it: not a folder; an existing file, or (``create``)
    a new one in an existing folder. Raises ArchiveError with one line."""
    file = Path(path)
    if file.is_dir():
        raise ArchiveError(f"{path} is a directory; give --db a file path such as npi.db")
    if kind := not_regular(path):  # a FIFO: SQLite's open waits for a writer, deaf to Ctrl-C
        raise ArchiveError(f"{path} is {kind}, not a file; give --db an archive file such as npi.db")
    if file.exists():
        return
    if not create:
        raise ArchiveError(f"{path} does not exist; run 'npi-crawler crawl --db {path}' first")
    if not file.parent.is_dir():
        raise ArchiveError(f"the folder {file.parent} does not exist; create it or choose another --db")


def not_an_archive(path: str, exc: sqlite3.Error | None = None) -> ArchiveError:
    """The error for a file that is not an npi-crawler archive: not SQLite at all (``exc``), or
    a SQLite file of another program."""
    if exc is not None:
        return ArchiveError(f"{path} is not an npi-crawler archive ({exc}); give --db a new or existing archive file")
    return ArchiveError(f"{path} is a SQLite file but not an npi-crawler archive; choose another --db")


def preflight(path: str, *, quick_check: bool = True) -> None:
    """Check, without writing a byte, that a writing command may use ``path``: a new file in an
    existing folder, an empty file, or an npi-crawler archive, sound (``PRAGMA quick_check``, a
    fraction of a second for thousands of articles) unless ``quick_check`` is False (a run whose
    crawl may not start: the crawl checks it before it starts, ``check_sound``). Runs before the
    run lock is taken, so a refused path leaves nothing behind. Raises ArchiveError with one line."""
    check_path(path, create=True)
    file = Path(path)
    if not file.exists() or file.stat().st_size == 0:
        return
    try:
        conn = sqlite3.connect(readonly_uri(path), uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
        try:  # one connection for both: each one opened alone writes SQLite's shared-memory file anew
            rows = [r[0] for r in conn.execute("PRAGMA quick_check(1)")] if quick_check else ["ok"]
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        if _not_a_database(exc):
            raise not_an_archive(path, exc) from None
        # a read-only file or folder, a lock, a full disk: said as such; anything else: damaged
        raise ArchiveError(sqlite_error_message(exc, path)) from None
    _check_rows(path, rows)
    if tables and "articles" not in tables:
        raise not_an_archive(path)


def check_sound(path: str) -> None:
    """``PRAGMA quick_check`` of an existing archive, before a crawl writes into it: a damaged
    file is one line (ArchiveError), never written."""
    if Path(path).exists() and Path(path).stat().st_size:
        _check_rows(path, integrity_check(path, quick=True))


def _check_rows(path: str, rows: list[str]) -> None:
    if rows != ["ok"]:
        first = " ".join(rows[0].replace("*** in database main ***", "").split())[:300]
        raise ArchiveError(f"{path} is damaged ({first}); run 'npi-crawler doctor --db {path}', then restore a backup")


def _connect(path: str, *, readonly: bool) -> sqlite3.Connection:
    if readonly:
        conn = sqlite3.connect(readonly_uri(path), uri=True, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    else:
        if path != ":memory:" and not Path(path).exists():
            # The archive may hold notification state; keep it readable by its owner only.
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA schema_version").fetchone()  # fails here on a file that is not SQLite
    register_functions(conn)  # the full-text indexes' triggers and the searches call them
    if not readonly:
        if path != ":memory:":
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        # The journals of savepoints (every writer's atomic() inside a crawl's batch, the
        # differ's transaction) in memory: in temporary files they wrote 16 times the archive.
        conn.execute("PRAGMA temp_store = MEMORY")
    return conn


class ArchiveBase:
    """One open archive file. Use ``Archive.open(path)`` (npi_crawler.archive)."""

    def __init__(self, conn: sqlite3.Connection, path: str, *, readonly: bool = False):
        self.conn = conn
        self.db = sqlite_utils.Database(conn)
        self.path = path
        self.readonly = readonly
        self._savepoints = 0  # depth of atomic() blocks inside the open transaction

    @classmethod
    def connect(cls, path: str | os.PathLike, *, create: bool = True, readonly: bool = False) -> Self:
        """The file at ``path`` opened as it is, without schema work (``Archive.open`` adds that):
        created unless ``create`` is False; ``readonly`` writes nothing at all.

        Raises ArchiveError when the file is missing, not SQLite, or cannot be opened."""
        path = os.fspath(path)
        if path != ":memory:":
            check_path(path, create=create and not readonly)
        try:
            conn = _connect(path, readonly=readonly)
        except sqlite3.DatabaseError as exc:
            if not _not_a_database(exc):  # locked, read-only, a full disk: say that, not "not an archive"
                raise ArchiveError(sqlite_error_message(exc, path)) from None
            raise not_an_archive(path, exc) from None
        return cls(conn, path, readonly=readonly)

    def close(self) -> None:
        self.conn.close()

    def check_writable(self) -> None:
        """Fail now, with one line, when the archive cannot be written: another program holds its
        write lock past the busy timeout, or the file (or its folder) is read-only. A write that
        touches no row takes the same locks and permissions as a real one and changes nothing."""
        try:
            with self.atomic() as conn:
                conn.execute("UPDATE migrations SET name = name WHERE 0")
        except sqlite3.Error as exc:
            raise ArchiveError(sqlite_error_message(exc, self.path)) from None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- transactions ---------------------------------------------------------------------------
    @contextmanager
    def atomic(self) -> Iterator[sqlite3.Connection]:
        """One atomic block of writes: a write transaction (IMMEDIATE, so that a concurrent writer
        waits instead of failing), or a SAVEPOINT inside the transaction already open.

        On an error only what is still open is rolled back: when SQLite has already rolled the
        transaction back itself (a RAISE(ROLLBACK) trigger, a full disk), the caller sees the real
        error, not "cannot rollback - no transaction is active" or "no such savepoint"."""
        conn = self.conn
        if not conn.in_transaction:
            self.begin()
            try:
                yield conn
            except BaseException:
                self.rollback()
                raise
            self.commit()
            return
        self._savepoints += 1
        name = f"npi_{self._savepoints}"
        conn.execute(f"SAVEPOINT {name}")
        try:
            yield conn
        except BaseException:
            if conn.in_transaction:
                conn.execute(f"ROLLBACK TO SAVEPOINT {name}")
                conn.execute(f"RELEASE SAVEPOINT {name}")
            raise
        else:
            conn.execute(f"RELEASE SAVEPOINT {name}")
        finally:
            self._savepoints -= 1

    def begin(self) -> None:
        """Open a write transaction that ``commit`` (or ``rollback``) ends; the writes in between
        nest inside it. For a caller that holds one transaction across many writes."""
        self.conn.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        """Commit the open transaction (none open: nothing to do). A COMMIT that fails (a full
        disk) rolls the transaction back and raises: nothing of it is kept."""
        if not self.conn.in_transaction:
            return
        try:
            self.conn.execute("COMMIT")
        except BaseException:
            self.rollback()
            raise

    def rollback(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    @property
    def in_transaction(self) -> bool:
        return self.conn.in_transaction

    # -- reads ----------------------------------------------------------------------------------
    def one(self, sql: str, params: Any = ()) -> Any:
        """The first column of the first row of ``sql`` (None when there is no row)."""
        row = self.conn.execute(sql, params).fetchone()
        return row[0] if row else None

    def rows(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        return list(self.db.query(sql, params))

    def tuples(self, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
        return list(self.conn.execute(sql, params))

    def fetch_states(self, table: str) -> dict[str, tuple[str, str | None, str | None]]:
        """URL -> (status, etag, last_modified) of every row of a table of fetched files
        (``pdf_texts``, ``experts``): what the spider needs for conditional GETs and retries."""
        if table not in ("pdf_texts", "experts"):
            raise ValueError(f"not a table of fetched files: {table}")
        rows = self.conn.execute(f"SELECT url, status, etag, last_modified FROM {table}")
        return {url: (status, etag, lm) for url, status, etag, lm in rows}


def _not_a_database(exc: sqlite3.Error) -> bool:
    return any(words in str(exc) for words in ("not a database", "file is encrypted"))


def _mount_point(path: str | os.PathLike) -> str:
    folder = Path(os.path.realpath(path)).parent
    while not os.path.ismount(folder) and folder != folder.parent:
        folder = folder.parent
    return str(folder)


def disk_full_message(path: str | os.PathLike, detail: str) -> str:
    """One line for a full disk (or quota), naming the file system: what every write path says."""
    return (
        f"the disk holding {os.fspath(path)} (the file system mounted at {_mount_point(path)}) is full ({detail}); "
        "free some space, then run again"
    )


def sqlite_error_message(exc: sqlite3.Error, path: str) -> str:
    """One line for a SQLite error a user can meet, saying what to do."""
    text = " ".join(str(exc).split())
    lowered = text.lower()
    if "disk is full" in lowered or "disk full" in lowered:
        return disk_full_message(path, text)
    if "readonly" in lowered or "read-only" in lowered:
        return f"{path} cannot be written ({text}); check the permissions of the file and its folder"
    if "locked" in lowered or "busy" in lowered:
        return (
            f"{path} is locked by another program ({text}) for longer than {BUSY_TIMEOUT_MS // 1000} s; "
            "close it (a sqlite3 shell, a long query) and run again"
        )
    if "unable to open" in lowered:
        return f"{path} cannot be opened ({text}); check that the file and its folder exist and are readable"
    return f"{path} is damaged ({text}); run 'npi-crawler doctor --db {path}', then restore a backup"
