"""WARC files: written with warcio, read back by pointer and by warcio's own iterator, after
rotation, damage and a SIGKILL in the middle of a write."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator

from npi_crawler.archive.records import WarcPointer
from npi_crawler.archive.warc import (
    IDENTICAL_PAYLOAD,
    OPEN_SUFFIX,
    WarcError,
    WarcWriter,
    payload_digest,
    read_response,
    recover,
)
from tests.site import generate_site
from tests.site.render import render

ROOT = Path(__file__).resolve().parent.parent
NAME = re.compile(r"^npi-\d{14}-\d{5}\.warc\.gz$")


def _pages(n: int = 12) -> list[tuple[str, bytes, list[tuple[str, str]]]]:
    site = generate_site(seed=5, n_articles=max(n, 10))
    pages = []
    for path in list(site.articles)[:n]:
        page = render(site, path)
        headers = [
            ("Content-Type", page.content_type),
            ("ETag", page.etag),
            ("Last-Modified", page.last_modified),
        ]
        pages.append(("https://npi.or.jp" + path, page.body, headers))
    return pages


def _records(directory: Path) -> list[tuple[str, str, str | None, bytes]]:
    """(file, type, target URI, raw payload) of every record, in file order, digests checked."""
    out = []
    for path in sorted(directory.glob("*.warc.gz")):
        with open(path, "rb") as fh:
            for record in ArchiveIterator(fh):
                payload = record.raw_stream.read()
                if record.rec_type == "response":
                    assert record.rec_headers.get_header("WARC-Payload-Digest") == payload_digest(payload)
                uri = record.rec_headers.get_header("WARC-Target-URI")
                out.append((path.name, record.rec_type, uri, payload))
    return out


def test_exchanges_read_back_by_pointer_and_by_warcio(tmp_path):
    pages = _pages()
    with WarcWriter(tmp_path, run_id=3, info={"http-header-user-agent": "npi-crawler/test"}) as writer:
        pointers = [
            writer.write_response(
                url,
                status=200,
                headers=[*headers, ("Transfer-Encoding", "chunked"), ("Content-Length", "1")],
                body=body,
                request_headers={"User-Agent": "npi-crawler/test"},
                metadata={"via": "https://npi.or.jp/research/policy/index.html"},
            )
            for url, body, headers in pages
        ]
        revisit = writer.write_revisit(
            pages[0][0], refers_to=pointers[0], headers=[("ETag", pages[0][2][1][1])]
        )
        assert list(tmp_path.iterdir()) == [tmp_path / (writer.files[0] + OPEN_SUFFIX)]
    assert [p.name for p in tmp_path.iterdir()] == writer.files and NAME.match(writer.files[0])

    for pointer, (url, body, headers) in zip(pointers, pages, strict=True):
        response = read_response(tmp_path, pointer)
        assert (response.url, response.status, response.reason, response.body) == (url, 200, "OK", body)
        assert response.header("etag") == dict(headers)["ETag"]
        # Framing headers describe the stored payload, not the transfer it came in.
        assert response.header("Content-Length") == str(len(body))
        assert response.header("Transfer-Encoding") is None
        assert pointer.payload_digest == payload_digest(body)

    records = _records(tmp_path)
    assert [r[1] for r in records[:4]] == ["warcinfo", "response", "request", "metadata"]
    assert [r[1] for r in records].count("response") == len(pages)
    assert b"isPartOf: npi-crawler run 3" in records[0][3]
    assert b"http-header-user-agent: npi-crawler/test" in records[0][3]
    assert b"run-id: 3\r\nvia: https://npi.or.jp/research/policy/index.html" in records[3][3]
    assert records[-3][1:3] == ("revisit", pages[0][0])
    with open(tmp_path / revisit.filename, "rb") as fh:
        fh.seek(revisit.offset)
        record = next(iter(ArchiveIterator(fh)))
        assert record.rec_headers.get_header("WARC-Refers-To") == pointers[0].record_id
        assert record.rec_headers.get_header("WARC-Profile").endswith("/revisit/server-not-modified")
        assert record.http_headers.get_statuscode() == "304"


def test_an_unchanged_200_is_a_revisit_without_the_payload(tmp_path):
    url, body, headers = _pages(1)[0]
    with WarcWriter(tmp_path) as writer:
        first = writer.write_response(url, status=200, headers=headers, body=body)
        again = writer.write_revisit(
            url, refers_to=first, status=200, headers=headers, profile=IDENTICAL_PAYLOAD, body=body
        )
        with pytest.raises(ValueError, match="needs the body, with the digest of refers_to"):
            writer.write_revisit(url, refers_to=first, headers=headers, profile=IDENTICAL_PAYLOAD, body=b"x")
    with open(tmp_path / again.filename, "rb") as fh:
        fh.seek(again.offset)
        record = next(iter(ArchiveIterator(fh)))
        assert record.rec_type == "revisit" and record.raw_stream.read() == b""
        assert record.rec_headers.get_header("WARC-Profile") == IDENTICAL_PAYLOAD
        assert record.http_headers.get_statuscode() == "200"
        assert record.http_headers.get_header("Content-Length") == str(len(body))
    assert again.payload_digest == first.payload_digest and again.length < first.length // 2


def test_files_rotate_by_size_and_never_split_an_exchange(tmp_path):
    pages = _pages(30)
    with WarcWriter(tmp_path, max_size=20_000) as writer:
        pointers = [writer.write_response(u, status=200, headers=h, body=b) for u, b, h in pages]
    sizes = {p.name: p.stat().st_size for p in tmp_path.iterdir()}
    assert len(sizes) > 2 and all(NAME.match(name) for name in sizes)
    assert [int(n.split("-")[2][:5]) for n in writer.files] == list(range(1, len(writer.files) + 1))
    assert max(sizes.values()) <= 20_000
    for pointer in pointers:
        assert read_response(tmp_path, pointer).body
    files = [f for f, kind, *_ in _records(tmp_path) if kind == "warcinfo"]
    assert files == writer.files  # each file starts with its own warcinfo record


def test_a_damaged_or_missing_record_is_one_clear_error(tmp_path):
    url, body, headers = _pages(1)[0]
    with WarcWriter(tmp_path) as writer:
        pointer = writer.write_response(url, status=200, headers=headers, body=body)
    with pytest.raises(WarcError, match="is not in .*; give --warc-dir the folder the crawl wrote to"):
        read_response(tmp_path / "elsewhere", pointer)
    with pytest.raises(WarcError, match="not a WARC file name"):
        read_response(tmp_path, WarcPointer("../x.warc.gz", 0, 10, "sha1:X", "<urn:x>", ""))
    with pytest.raises(WarcError, match="is not the response record"):
        read_response(
            tmp_path, WarcPointer(pointer.filename, pointer.offset, pointer.length, "x", "<urn:other>", "")
        )
    wrong = dataclasses.replace(pointer, payload_digest=payload_digest(b"another page"))
    with pytest.raises(WarcError, match="does not match its digest"):
        read_response(tmp_path, wrong)
    path = tmp_path / pointer.filename
    data = bytearray(path.read_bytes())
    data[pointer.offset + pointer.length // 2] ^= 0xFF  # one flipped byte inside the record
    path.write_bytes(bytes(data))
    with pytest.raises(WarcError, match=f"{pointer.filename}.* offset {pointer.offset}"):
        read_response(tmp_path, pointer)


def test_recover_cuts_a_torn_record_and_leaves_live_files_alone(tmp_path):
    pages = _pages(4)
    with WarcWriter(tmp_path / "a") as writer:
        pointers = [writer.write_response(u, status=200, headers=h, body=b) for u, b, h in pages]
    whole = tmp_path / "a" / writer.files[0]
    torn = tmp_path / "b" / (writer.files[0] + OPEN_SUFFIX)
    torn.parent.mkdir()
    cut = pointers[-1].offset + pointers[-1].length // 2  # half of the last response
    torn.write_bytes(whole.read_bytes()[:cut])

    live = WarcWriter(tmp_path / "b")  # recovers b's leftover at start ...
    assert live.recovered == [(writer.files[0], cut - pointers[-1].offset)]
    live.write_response(*pages[0][:1], status=200, headers=pages[0][2], body=pages[0][1])
    assert recover(tmp_path / "b") == []  # ... but never the file a live writer holds
    assert (tmp_path / "b" / (live.files[0] + OPEN_SUFFIX)).exists()
    live.close()

    kept = [r for r in _records(tmp_path / "b") if r[0] == writer.files[0]]
    assert [r[2] for r in kept if r[1] == "response"] == [p[0] for p in pages[:-1]]
    for pointer in pointers[:-1]:
        assert read_response(tmp_path / "b", pointer).body


# A writer that a test kills: its disk is slow (writes of 4 KB with a pause), so a SIGKILL lands
# in the middle of an exchange; it prints each pointer once the writer has returned it.
CHILD = """
import dataclasses, json, os, random, sys, time
from npi_crawler.archive.warc import WarcWriter
real_write = os.write
def slow_write(fd, data):
    time.sleep(0.0005)
    return real_write(fd, bytes(data[:4096]))
os.write = slow_write
rng = random.Random(int(sys.argv[2]))
with WarcWriter(sys.argv[1], run_id=1, max_size=400_000) as writer:
    for i in range(100_000):
        body = rng.randbytes(rng.randint(2_000, 60_000))
        url = f"https://npi.or.jp/research/2024/01/{i:08d}.html"
        pointer = writer.write_response(url, status=200, headers=[("Content-Type", "text/html")], body=body)
        print(json.dumps(dataclasses.asdict(pointer)), flush=True)
"""


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_writer_killed_mid_write_leaves_every_returned_record_readable(tmp_path, seed):
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path), str(seed)],
        stdout=subprocess.PIPE,
        cwd=ROOT,
        text=True,
    )
    pointers = []
    try:
        while len(pointers) < 15 + 5 * seed:
            line = proc.stdout.readline()
            assert line, "the writer died on its own"
            pointers.append(WarcPointer(**json.loads(line)))
        time.sleep(0.003 * seed)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    pointers += [WarcPointer(**json.loads(line)) for line in proc.stdout.read().splitlines()]

    # As the kill left it: warcio reads every record the writer returned, digests matching. Only
    # the last record of the .open file may be torn, and warcio yields it without complaint
    # (a short payload): the digest tells, and recover() removes it.
    snapshot = tmp_path.with_name(tmp_path.name + "-as-killed")
    shutil.copytree(tmp_path, snapshot)
    for path in sorted(snapshot.iterdir()):
        with open(path, "rb") as fh:
            walked = [(r.rec_type, r.rec_headers, r.raw_stream.read()) for r in ArchiveIterator(fh)]
        for i, (kind, headers, payload) in enumerate(walked):
            intact = kind != "response" or headers.get_header("WARC-Payload-Digest") == payload_digest(
                payload
            )
            assert intact or (path.name.endswith(OPEN_SUFFIX) and i == len(walked) - 1)
    for pointer in pointers:
        response = read_response(snapshot, pointer)
        assert response.body and payload_digest(response.body) == pointer.payload_digest

    cut = recover(tmp_path)  # what the next writer does first
    assert not list(tmp_path.glob(f"*{OPEN_SUFFIX}"))
    records = _records(tmp_path)  # iterates every file to its end: no torn record is left
    responses = {uri for _f, kind, uri, _p in records if kind == "response"}
    assert {f"https://npi.or.jp/research/2024/01/{i:08d}.html" for i in range(len(pointers))} <= responses
    for pointer in pointers:
        assert read_response(tmp_path, pointer).body
    assert len(cut) <= 1  # only the file being written when the kill came


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


BIN = Path(sys.executable).parent


@pytest.mark.skipif(
    not (BIN / "wb-manager").exists(),
    reason="pywb is not installed (optional, not in the test extra: it pins pyOpenSSL<26.2, werkzeug==3.1.7, redis==2.10.6)",
)
def test_pywb_indexes_and_replays_an_archived_page_on_loopback(tmp_path):
    site = generate_site(seed=5, n_articles=10)
    article = next(iter(site.articles.values()))
    page = render(site, article.path)
    url = "https://npi.or.jp" + article.path
    with WarcWriter(tmp_path / "warcs") as writer:
        pointer = writer.write_response(
            url, status=200, headers=[("Content-Type", page.content_type)], body=page.body
        )
    run = {"cwd": tmp_path, "check": True, "capture_output": True, "timeout": 120}
    subprocess.run([BIN / "wb-manager", "init", "npi"], **run)
    subprocess.run([BIN / "wb-manager", "add", "npi", tmp_path / "warcs" / writer.files[0]], **run)
    index = (tmp_path / "collections/npi/indexes/index.cdxj").read_text()
    fields = json.loads(index.split(" ", 2)[2])  # pywb's own index finds the record we point to
    assert (fields["filename"], int(fields["offset"]), int(fields["length"])) == (
        pointer.filename,
        pointer.offset,
        pointer.length,
    )
    assert "sha1:" + fields["digest"] == pointer.payload_digest

    port = _free_port()
    server = subprocess.Popen(
        [BIN / "wayback", "--bind", "127.0.0.1", "-p", str(port)],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        stamp = re.sub(r"\D", "", pointer.date)[:14]
        replay = f"http://127.0.0.1:{port}/npi/{stamp}id_/{url}"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(replay, timeout=10) as answer:
                    status, body = answer.status, answer.read()
                break
            except (ConnectionError, urllib.error.URLError):
                assert time.monotonic() < deadline, "pywb did not start within 60 s"
                time.sleep(0.3)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert status == 200 and body == page.body
    assert article.title.encode() in body
