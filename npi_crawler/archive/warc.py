"""The pages as they were served: WARC 1.1 files written with warcio, read back by pointer.

Each HTTP exchange the crawl keeps is appended as three gzip records (one gzip member each, so
any WARC tool can seek to a record): the ``response`` (status line, headers, payload), the
``request`` that asked for it, and a ``metadata`` record naming the run. A 304 answer to a
conditional GET is a ``revisit`` record (profile *server-not-modified*) pointing to the response
it confirms. Every file starts with a ``warcinfo`` record (software, run).

Durability. A file being written is named ``….warc.gz.open`` and held with an exclusive
``flock``; an exchange is built in memory, appended with one ``write`` and fsynced before its
pointer is returned, so the archive only stores pointers to records that are on disk. At rotation
(by size) and close the file is fsynced and renamed to ``….warc.gz``. A process killed mid-write
leaves an ``.open`` file whose last gzip member may be torn; ``recover`` (run by every new
writer) cuts such a file back to its last complete record and gives it its final name.

Payloads are what the crawler received after its HTTP client undid the transfer: the de-chunked,
decompressed body. Headers that describe the transfer rather than the content
(``Transfer-Encoding``, ``Content-Length``) are rewritten to match the stored payload, so a replay
tool serves a consistent response; everything else is kept as served. Request records never hold
credentials (``Authorization``, ``Proxy-Authorization``, ``Cookie`` are left out): the files are
safe to hand to anyone.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import io
import os
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from npi_crawler import __version__
from npi_crawler.archive.records import WarcPointer, payload_digest
from npi_crawler.errors import ArchiveError
from npi_crawler.userfile import open_regular

WARC_VERSION = "1.1"
DEFAULT_MAX_SIZE = 100_000_000  # bytes per file before rotating (see docs/research.md)
OPEN_SUFFIX = ".open"
SUFFIX = ".warc.gz"
SERVER_NOT_MODIFIED = "http://netpreserve.org/warc/1.1/revisit/server-not-modified"
IDENTICAL_PAYLOAD = "http://netpreserve.org/warc/1.1/revisit/identical-payload-digest"
_TRANSFER_HEADERS = {"transfer-encoding", "content-length"}
# A proxy's or a site's credentials in a request record would be handed to anyone given the file.
_SECRET_HEADERS = {"authorization", "proxy-authorization", "cookie"}

Headers = Iterable[tuple[str, str]] | Mapping[str, str]


class WarcError(ArchiveError):
    """A WARC record cannot be written or read back; the message is one line."""


def default_warc_dir(db_path: str | os.PathLike) -> Path:
    """Where the WARC files of the archive at ``db_path`` go unless told: ``<stem>-warc/`` beside
    it (``npi.db`` -> ``npi-warc/``)."""
    path = Path(db_path)
    return path.with_name(path.stem + "-warc")


def check_warc_dir(directory: str | os.PathLike) -> None:
    """Check, without creating anything, that ``directory`` is (or can be made) a folder this
    process writes WARC files in. Raises WarcError with one line."""
    path = Path(directory)
    advice = "choose another --warc-dir (or --no-warc)"
    if path.exists() and not path.is_dir():
        raise WarcError(f"the WARC folder {path} is a file; {advice}")
    existing = path
    while not existing.exists():  # the nearest folder that exists must let us create the rest
        existing = existing.parent
    if not existing.is_dir():
        raise WarcError(f"the WARC folder {path} cannot be made: {existing} is a file; {advice}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise WarcError(f"the WARC folder {path} cannot be written (permission denied on {existing}); {advice}")


@dataclass
class ArchivedResponse:
    """An HTTP response as read back from a WARC record, its payload digest checked."""

    url: str
    date: str
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


def _header_list(headers: Headers) -> list[tuple[str, str]]:
    items = headers.items() if isinstance(headers, Mapping) else headers
    return [(str(k), str(v)) for k, v in items]


def _response_headers(status: int, reason: str | None, headers: Headers, body: bytes) -> StatusAndHeaders:
    kept = [(k, v) for k, v in _header_list(headers) if k.lower() not in _TRANSFER_HEADERS]
    kept.append(("Content-Length", str(len(body))))
    reason = reason or _reason(status)
    return StatusAndHeaders(f"{status} {reason}".strip(), kept, protocol="HTTP/1.1")


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _request_headers(method: str, url: str, headers: Headers) -> StatusAndHeaders:
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    fields = [(k, v) for k, v in _header_list(headers) if k.lower() not in _SECRET_HEADERS]
    if not any(k.lower() == "host" for k, _ in fields):
        fields.insert(0, ("Host", parts.netloc))
    return StatusAndHeaders(f"{method} {target} HTTP/1.1", fields, is_http_request=True)


def _warc_fields(fields: Mapping[str, Any]) -> bytes:
    return b"".join(f"{k}: {v}\r\n".encode() for k, v in fields.items() if v is not None and v != "")


class WarcWriter:
    """Appends exchanges to gzip WARC 1.1 files ``{prefix}-{UTC time}-{serial}.warc.gz`` under
    ``directory``, rotating to a new file before one would exceed ``max_size`` bytes. One writer
    per crawl run; a new writer never appends to an earlier file. Use as a context manager."""

    def __init__(
        self,
        directory: str | os.PathLike,
        *,
        run_id: int | None = None,
        prefix: str = "npi",
        max_size: int = DEFAULT_MAX_SIZE,
        info: Mapping[str, Any] | None = None,
    ):
        self.directory = Path(directory)
        self.run_id = run_id
        self.prefix = prefix
        self.max_size = max_size
        self.info = dict(info or {})
        self.files: list[str] = []  # final names of the files this writer made
        self.bytes_written = 0  # by this writer, in all its files
        self._fd: int | None = None
        self._name = ""
        self._size = 0
        self._serial = 0
        self._exchanges = 0
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WarcError(
                f"cannot create the WARC folder {self.directory} ({exc}); choose another --warc-dir"
            ) from None
        self.recovered = recover(self.directory)

    # -- records ----------------------------------------------------------------------------------
    def write_response(
        self,
        url: str,
        *,
        status: int,
        headers: Headers,
        body: bytes,
        reason: str | None = None,
        method: str = "GET",
        request_headers: Headers = (),
        metadata: Mapping[str, Any] | None = None,
    ) -> WarcPointer:
        """Append a response, its request and a metadata record; return the response's pointer
        once all three are on disk."""
        builder = _builder()
        response = builder.create_warc_record(
            url,
            "response",
            payload=io.BytesIO(body),
            length=len(body),
            http_headers=_response_headers(status, reason, headers, body),
        )
        request = builder.create_warc_record(
            url, "request", http_headers=_request_headers(method, url, request_headers)
        )
        return self._append(builder, response, request, metadata)

    def write_revisit(
        self,
        url: str,
        *,
        refers_to: WarcPointer,
        headers: Headers,
        status: int = 304,
        reason: str | None = None,
        method: str = "GET",
        request_headers: Headers = (),
        metadata: Mapping[str, Any] | None = None,
        profile: str = SERVER_NOT_MODIFIED,
        body: bytes | None = None,
    ) -> WarcPointer:
        """Append a ``revisit`` record, its request and a metadata record: for a 304 (the server
        said the page is as it was in the response at ``refers_to``), or with ``profile``
        IDENTICAL_PAYLOAD for a 200 whose ``body`` has the digest of that response (its headers
        are stored, its payload is not written again)."""
        if profile == IDENTICAL_PAYLOAD and (
            body is None or payload_digest(body) != refers_to.payload_digest
        ):
            raise ValueError("an identical-payload revisit needs the body, with the digest of refers_to")
        builder = _builder()
        revisit = builder.create_revisit_record(
            url,
            refers_to.payload_digest,
            url,
            refers_to.date,
            http_headers=_response_headers(status, reason, headers, body or b""),
        )
        revisit.rec_headers.replace_header("WARC-Profile", profile)
        revisit.rec_headers.add_header("WARC-Refers-To", refers_to.record_id)
        request = builder.create_warc_record(
            url, "request", http_headers=_request_headers(method, url, request_headers)
        )
        return self._append(builder, revisit, request, metadata)

    def _append(self, builder: WARCWriter, first, request, metadata: Mapping[str, Any] | None) -> WarcPointer:
        record_id = first.rec_headers.get_header("WARC-Record-ID")
        date = first.rec_headers.get_header("WARC-Date")
        fields = _warc_fields(
            {"software": f"npi-crawler/{__version__}", "run-id": self.run_id, **(metadata or {})}
        )
        meta = builder.create_warc_record(
            first.rec_headers.get_header("WARC-Target-URI"),
            "metadata",
            payload=io.BytesIO(fields),
            length=len(fields),
        )
        for record in (request, meta):  # tied to the response as Heritrix does
            record.rec_headers.replace_header("WARC-Date", date)
            record.rec_headers.add_header("WARC-Concurrent-To", record_id)
        builder.write_record(first)
        length = builder.out.tell()
        builder.write_record(request)
        builder.write_record(meta)
        offset = self._write(builder.out.getvalue())
        digest = first.rec_headers.get_header("WARC-Payload-Digest")
        status = int(first.http_headers.get_statuscode())
        refers_to = first.rec_headers.get_header("WARC-Refers-To")
        return WarcPointer(
            self._final_name, offset, length, digest, record_id, date, first.rec_type, status, refers_to,
            directory=str(self.directory), run_id=self.run_id,
        )

    # -- files ------------------------------------------------------------------------------------
    @property
    def _final_name(self) -> str:
        return self._name[: -len(OPEN_SUFFIX)]

    def _write(self, data: bytes) -> int:
        """Append ``data`` (whole records) to the current file, first rotating when the file
        already holds an exchange and would grow past ``max_size``; fsync; return its offset."""
        if self._fd is not None and self._exchanges and self._size + len(data) > self.max_size:
            self._close_file()
        if self._fd is None:
            self._open_file()
        offset = self._append_bytes(data)
        self._exchanges += 1
        return offset

    def _append_bytes(self, data: bytes) -> int:
        fd, offset = self._fd, self._size
        if fd is None:
            raise WarcError("no WARC file is open")
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
        self._size += len(data)
        self.bytes_written += len(data)
        return offset

    def _open_file(self) -> None:
        while True:
            self._serial += 1
            stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d%H%M%S")
            final = f"{self.prefix}-{stamp}-{self._serial:05d}{SUFFIX}"
            if (self.directory / final).exists():
                continue
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND
            try:
                fd = os.open(self.directory / (final + OPEN_SUFFIX), flags, 0o644)
            except FileExistsError:
                continue
            except OSError as exc:
                raise WarcError(
                    f"cannot write in the WARC folder {self.directory} ({exc}); choose another --warc-dir"
                ) from None
            break
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # tells recover() this file is live
        self._fd, self._name, self._size, self._exchanges = fd, final + OPEN_SUFFIX, 0, 0
        _fsync_dir(self.directory)
        info = {
            "software": f"npi-crawler/{__version__} (warcio)",
            "format": "WARC File Format 1.1",
            "conformsTo": "https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/",
            "isPartOf": f"npi-crawler run {self.run_id}" if self.run_id is not None else None,
            **self.info,
        }
        builder = _builder()
        builder.write_record(builder.create_warcinfo_record(final, {k: v for k, v in info.items() if v}))
        self._append_bytes(builder.out.getvalue())
        self.files.append(final)

    def _close_file(self) -> None:
        if self._fd is None:
            return
        os.fsync(self._fd)
        os.replace(self.directory / self._name, self.directory / self._final_name)
        os.close(self._fd)  # releases the flock only once the final name is in place
        self._fd = None
        _fsync_dir(self.directory)

    def close(self) -> None:
        self._close_file()

    def __enter__(self) -> WarcWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _builder() -> WARCWriter:
    """A warcio writer into a memory buffer: records are built whole, then appended at once."""
    return WARCWriter(io.BytesIO(), gzip=True, warc_version=WARC_VERSION)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- after a crash --------------------------------------------------------------------------------


def complete_length(path: str | os.PathLike, chunk: int = 1 << 20) -> int:
    """Bytes of ``path`` up to the end of its last complete gzip member (= WARC record)."""
    good = 0  # where the last complete member ends
    fed = 0  # file offset after the bytes fed to the current decompressor
    decomp = zlib.decompressobj(wbits=31)
    pending = b""
    with open(path, "rb") as fh:
        while data := pending or fh.read(chunk):
            pending = b""
            try:
                decomp.decompress(data)
            except zlib.error:
                return good
            fed += len(data)
            if decomp.eof:  # a member ended: the rest of ``data`` starts the next one
                pending = decomp.unused_data
                good = fed = fed - len(pending)
                decomp = zlib.decompressobj(wbits=31)
    return good


def recover(directory: str | os.PathLike) -> list[tuple[str, int]]:
    """Finish the ``.open`` files a killed writer left in ``directory``: cut each back to its
    last complete record and give it its final name (an empty one is removed). Files held by a
    live writer are left alone. Returns (final name, bytes cut) for each file finished."""
    done = []
    directory = Path(directory)
    for path in sorted(directory.glob(f"*{SUFFIX}{OPEN_SUFFIX}")):
        fd = os.open(path, os.O_RDWR)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live writer's file
            size = os.fstat(fd).st_size
            good = complete_length(path)
            if good < size:
                os.ftruncate(fd, good)
                os.fsync(fd)
            final = path.name[: -len(OPEN_SUFFIX)]
            if good == 0:
                path.unlink()
            else:
                os.replace(path, directory / final)
            done.append((final, size - good))
        finally:
            os.close(fd)
    if done:
        _fsync_dir(directory)
    return done


# -- reading --------------------------------------------------------------------------------------


def _locate(directory: Path, filename: str) -> Path:
    if "/" in filename or "\\" in filename or filename.startswith("."):
        raise WarcError(f"not a WARC file name: {filename!r}")
    for candidate in (directory / filename, directory / (filename + OPEN_SUFFIX)):
        if candidate.exists():
            return candidate
    raise WarcError(
        f"the WARC file {filename} is not in {directory}; give --warc-dir the folder the crawl wrote to"
    )


def read_record(directory: str | os.PathLike, pointer: WarcPointer) -> ArchivedResponse:
    """The record at ``pointer`` (of the pointer's ``record_type``), checked: its id is the
    pointer's, and its payload digest matches the payload (a response) and the pointer (either
    kind; a revisit holds no payload, its digest is the response's it confirms). Raises WarcError
    when the record is missing, damaged or another one."""
    path = _locate(Path(directory), pointer.filename)
    # Only a regular file (a directory, a FIFO that would hang), and only bytes that are in it:
    # the pointer comes from the archive, which a damaged or edited file may make say anything.
    with open_regular(path, what="the WARC file", error=WarcError) as fh:
        size = os.fstat(fh.fileno()).st_size
        offset, length = pointer.offset, pointer.length
        if not (isinstance(offset, int) and isinstance(length, int)) or offset < 0 or length <= 0:
            raise WarcError(
                f"the archive's record of {pointer.record_id} says offset {offset!r}, length {length!r} in "
                f"{pointer.filename}: its warc_records row is damaged"
            )
        if offset + length > size:
            raise WarcError(
                f"{pointer.filename} ({size} bytes) ends before the record at offset {offset} ({length} bytes): "
                "the file was cut short, or the archive's record of it is damaged"
            )
        fh.seek(offset)
        data = fh.read(length)
    try:
        record = next(iter(ArchiveIterator(io.BytesIO(data))))
        body = record.raw_stream.read()
    except Exception as exc:  # warcio raises several kinds for damaged data
        raise WarcError(
            f"{pointer.filename} has no readable record at offset {pointer.offset} ({exc})"
        ) from None
    headers = record.rec_headers
    if record.rec_type != pointer.record_type or headers.get_header("WARC-Record-ID") != pointer.record_id:
        raise WarcError(
            f"{pointer.filename} at offset {pointer.offset} is not the {pointer.record_type} record {pointer.record_id}"
        )
    digest = payload_digest(body) if record.rec_type == "response" else pointer.payload_digest
    if digest != headers.get_header("WARC-Payload-Digest") or digest != pointer.payload_digest:
        raise WarcError(
            f"{pointer.filename} at offset {pointer.offset}: the payload does not match its digest"
        )
    http = record.http_headers
    return ArchivedResponse(
        url=headers.get_header("WARC-Target-URI"),
        date=headers.get_header("WARC-Date"),
        status=int(http.get_statuscode()),
        reason=http.statusline.split(" ", 1)[1] if " " in http.statusline else "",
        headers=list(http.headers),
        body=body,
    )


def read_response(directory: str | os.PathLike, pointer: WarcPointer) -> ArchivedResponse:
    """The HTTP response stored at ``pointer``, its payload digest checked against the record's
    and the pointer's. Raises WarcError when the record is missing, damaged or not a response."""
    if pointer.record_type != "response":
        raise WarcError(f"the record {pointer.record_id} is a {pointer.record_type}, not a response")
    return read_record(directory, pointer)
