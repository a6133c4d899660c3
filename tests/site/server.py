"""Serves a replica ``Site`` on 127.0.0.1 over real HTTP, with validators, a request log and
injectable faults.

Faults (``ReplicaServer.add_fault``) make chosen paths misbehave the way real servers do: error
statuses, 429 with ``Retry-After``, hangs past the client's timeout, bodies cut short, legacy
Japanese encodings, broken markup, redirects off the site, oversized answers, gzip bombs, dropped
connections, pages sent a byte at a time (``drip``) and hostile pages (``rewrite``: any change to the page's HTML). Each fault is permanent or hits only the first ``times`` matching requests
(transient); ``random_faults`` spreads faults over paths with a seed.
"""

from __future__ import annotations

import fnmatch
import json
import random
import re
import sys
import threading
import time
import zlib
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from . import control
from .control import CONTROL_PREFIX
from .model import Site
from .render import Page, render

FAULT_KINDS = (
    "status",  # answer ``status`` (500, 503, ...) with a small HTML body
    "429",  # Too Many Requests with ``Retry-After: retry_after`` (``status`` 503 for Unavailable)
    "hang",  # send nothing for ``seconds`` (past the client's timeout), then close
    "truncate",  # Content-Length says the whole page, ``keep`` bytes are sent, then close
    "encoding",  # the page re-encoded in ``encoding``; ``header``/``meta`` say so or not
    "broken_html",  # the page with mangled markup (unclosed tags, stray end tags, junk)
    "redirect",  # 302 to ``location`` (e.g. another loopback host that is not the site)
    "oversize",  # a page padded to ``size`` bytes; ``declare_length`` sends Content-Length
    "gzip_bomb",  # ``Content-Encoding: gzip`` whose body inflates to ``size`` bytes
    "drop",  # close the connection without answering
    "rewrite",  # the page with ``re.sub(find, repl, count=count)`` applied (repl: str or callable)
    "drip",  # the page one byte every ``interval`` seconds (from the status line on with ``headers``)
)


TRANSFORMS = ("encoding", "broken_html", "rewrite")  # faults that still answer 200 with the page


@dataclass
class Fault:
    """What to do instead of (or to) the normal answer for paths matching ``pattern``.

    ``pattern`` is an exact path or a glob (``/research/2*``); ``times`` None means permanent,
    otherwise only the first ``times`` matching requests are hit (the rest are served normally).
    """

    pattern: str
    kind: str
    times: int | None = None
    options: dict[str, Any] = field(default_factory=dict)
    hits: int = 0

    def matches(self, path: str) -> bool:
        return path == self.pattern or fnmatch.fnmatchcase(path, self.pattern)

    def take(self) -> bool:
        """Count a matching request; True when this one is to be hit."""
        if self.times is not None and self.hits >= self.times:
            return False
        self.hits += 1
        return True


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        self._respond(send_body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._respond(send_body=False)

    def do_POST(self) -> None:  # noqa: N802
        """``POST /__replica__/<operation>``: publish, edit or remove an article (control.py)."""
        replica = self.server.replica
        if not self.path.startswith(CONTROL_PREFIX):
            self._send(405, "text/plain", b"method not allowed", True)
            return
        try:
            fields = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            with replica.lock:
                article = control.apply(replica.site, self.path[len(CONTROL_PREFIX) :], fields)
                replica._cache.clear()
            status, answer = 200, control.describe(article, replica.url)
        except (ValueError, AttributeError) as exc:  # ControlError, bad JSON, a body that is not an object
            status, answer = 400, {"error": str(exc)}
        self._send(status, "application/json", json.dumps(answer, ensure_ascii=False).encode("utf-8"), True)

    def _respond(self, *, send_body: bool) -> None:
        replica = self.server.replica
        if replica.delay:
            time.sleep(replica.delay)  # a slow site: runs overlap long enough to test the run lock
        with replica.lock:
            fault = replica._fault_for(self.path)
            page = replica._render(self.path)
        if fault is not None and fault.kind not in TRANSFORMS:
            replica.log.append((self.command, self.path, _logged_status(fault), dict(self.headers)))
            self._misbehave(fault, page, send_body)
            return
        if fault is not None:
            page = _transform(fault, page)
        status = page.status
        if status == 200 and self._not_modified(page):
            status = 304
        replica.log.append((self.command, self.path, status, dict(self.headers)))
        self._send(status, page.content_type, b"" if status == 304 else page.body, send_body, page)

    def _send(self, status: int, content_type: str | None, body: bytes, send_body: bool, page=None, extra=()):
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        if page is not None and page.etag:
            self.send_header("ETag", page.etag)
        if page is not None and page.last_modified:
            self.send_header("Last-Modified", page.last_modified)
        for name, value in extra:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body and body:
            self.wfile.write(body)

    def _misbehave(self, fault: Fault, page: Page, send_body: bool) -> None:
        opts = fault.options
        if fault.kind == "status":
            status = int(opts.get("status", 503))
            self._send(status, "text/html", f"<html><body>{status}</body></html>".encode(), send_body)
        elif fault.kind == "429":  # retry_after: seconds or an HTTP date; None sends no header
            retry_after = opts.get("retry_after", 1)
            extra = [("Retry-After", str(retry_after))] if retry_after is not None else []
            status = int(opts.get("status", 429))  # 503 with Retry-After: the same fault
            self._send(status, "text/html", b"<html><body>slow down</body></html>", send_body, extra=extra)
        elif fault.kind == "hang":
            self.server.replica._stopping.wait(float(opts.get("seconds", 5)))
            self.close_connection = True
        elif fault.kind == "truncate":
            body = page.body
            keep = int(opts.get("keep", len(body) // 3))
            self.send_response(200)
            self.send_header("Content-Type", page.content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[:keep])
            self.wfile.flush()
            self.close_connection = True
        elif fault.kind == "redirect":
            extra = [("Location", opts["location"])]
            self._send(int(opts.get("status", 302)), "text/html", b"", send_body, extra=extra)
        elif fault.kind == "oversize":
            self._oversize(page, int(opts.get("size", 5 * 1024 * 1024)), opts.get("declare_length", True))
        elif fault.kind == "gzip_bomb":
            extra = [("Content-Encoding", "gzip")]
            self._send(200, page.content_type, opts["body"], send_body, extra=extra)
        elif fault.kind == "drop":
            self.close_connection = True
        elif fault.kind == "drip":
            self._drip(page, float(opts.get("interval", 1.0)), bool(opts.get("headers", False)))
        else:  # pragma: no cover - add_fault validates kinds
            raise ValueError(fault.kind)

    def _oversize(self, page: Page, size: int, declare_length: bool) -> None:
        """The page padded to ``size`` bytes inside a comment, streamed in chunks (a 200 MB answer
        is never held in memory)."""
        head, _, tail = page.body.partition(b"</body>")
        pad = max(0, size - len(page.body) - 17)
        self.send_response(200)
        self.send_header("Content-Type", page.content_type)
        if declare_length:
            self.send_header("Content-Length", str(len(head) + 5 + pad + 12 + len(tail)))
        else:
            self.send_header("Connection", "close")
        self.end_headers()
        chunk = b"x" * 65536
        try:
            self.wfile.write(head + b"<!-- ")
            for offset in range(0, pad, len(chunk)):
                self.wfile.write(chunk[: min(len(chunk), pad - offset)])
            self.wfile.write(b" -->\n</body>" + tail)
        except OSError:  # the client gave up on it, as it should
            pass
        self.close_connection = True

    def _drip(self, page: Page, interval: float, headers: bool) -> None:
        """The page one byte at a time: every read of a client's gets a byte within its timeout,
        the whole page takes ``interval`` seconds per byte."""
        head = (
            f"HTTP/1.1 200 OK\r\nContent-Type: {page.content_type}\r\n"
            f"Content-Length: {len(page.body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        if not headers:
            self.wfile.write(head)
        try:
            for byte in (head if headers else b"") + page.body:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                if self.server.replica._stopping.wait(interval):
                    break
        except OSError:  # the client gave up, as it should
            pass
        self.close_connection = True

    def _not_modified(self, page) -> bool:
        inm = self.headers.get("If-None-Match")
        if inm and page.etag:
            return page.etag in [t.strip() for t in inm.split(",")]
        ims = self.headers.get("If-Modified-Since")
        if ims and page.last_modified:
            try:
                return parsedate_to_datetime(page.last_modified) <= parsedate_to_datetime(ims)
            except (TypeError, ValueError):
                return False
        return False

    def log_message(self, format: str, *args) -> None:  # keep test output quiet
        pass


def _logged_status(fault: Fault) -> int:
    """The status a fault answers with; -1 for those that send no status line."""
    if fault.kind in ("hang", "drop"):
        return -1
    fixed = {"429": int(fault.options.get("status", 429)), "truncate": 200, "oversize": 200, "drip": 200}
    return fixed.get(fault.kind) or int(fault.options.get("status", 302 if fault.kind == "redirect" else 503))


def _gzip_bomb(size: int) -> bytes:
    """A gzip stream of ``size`` bytes of spaces (about 1/1000 of it on the wire)."""
    out = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: a gzip header and trailer
    block = b" " * (1024 * 1024)
    parts = [out.compress(b"<html><body>")]
    parts += [out.compress(block[: min(len(block), size - done)]) for done in range(0, size, len(block))]
    return b"".join(parts) + out.flush()


_META_CHARSET = re.compile(rb'<meta charset="UTF-8">', re.IGNORECASE)


def _transform(fault: Fault, page: Page) -> Page:
    """The faults that still answer 200 with the page, changed."""
    opts = fault.options
    if page.status != 200 or not page.content_type.startswith("text/html"):
        return page
    if fault.kind == "encoding":
        encoding = opts.get("encoding", "shift_jis")
        label = {"shift_jis": "Shift_JIS", "euc_jp": "EUC-JP"}.get(encoding, encoding)
        meta = f'<meta charset="{label}">'.encode() if opts.get("meta", True) else b""
        text = _META_CHARSET.sub(meta, page.body).decode("utf-8")
        body = text.encode(encoding, errors="xmlcharrefreplace")
        content_type = f"text/html; charset={label}" if opts.get("header", True) else "text/html"
        return Page(200, body, content_type, page.etag, page.last_modified)
    if fault.kind == "broken_html":
        body = page.body
        body = body.replace(b"<!DOCTYPE html>\n", b"")  # no doctype
        body = body.replace(b"</p>", b"", 2)  # unclosed paragraphs
        body = body.replace(b"</footer>", b"</footer></div></div></span>")  # stray end tags
        body = body.replace(b"</body>\n</html>", b'<div class="junk"><p>\x00\x01')  # cut-off tail
        body = body.replace(b"<head>", b"<head><<>><!-- unterminated", 1).replace(
            b"<title>", b"--><title>", 1
        )
        return Page(200, body, page.content_type, page.etag, page.last_modified)
    if fault.kind == "rewrite":
        text = re.sub(opts["find"], opts["repl"], page.body.decode("utf-8"), count=opts.get("count", 0))
        return Page(200, text.encode("utf-8"), page.content_type, page.etag, page.last_modified)
    return page


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    replica: ReplicaServer

    def handle_error(self, request, client_address) -> None:
        # A client that hangs up (a timeout, a SIGKILLed crawler) is expected here, not news.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class ReplicaServer:
    """A context manager serving ``site`` on an ephemeral loopback port.

    ``url`` is the base URL to crawl; ``log`` records (method, path, status, headers) of every
    request (status -1 when a fault sent no answer); change ``site`` (under ``lock``) between runs
    to publish, edit or remove articles (or, from another process, post to its control endpoint:
    tests/site/control.py). ``add_fault``/``random_faults``/``clear_faults`` make
    paths misbehave. ``delay`` makes every answer wait that many seconds (a slow site).
    ``cache_pages`` renders each path once (for benchmarks of a site that does
    not change while it is served).
    """

    def __init__(
        self,
        site: Site,
        host: str = "127.0.0.1",
        port: int = 0,
        delay: float = 0.0,
        *,
        cache_pages: bool = False,
    ):
        self.site = site
        self.delay = delay
        self.lock = threading.Lock()
        self.log: list[tuple[str, str, int, dict]] = []
        self.faults: list[Fault] = []
        self.cache_pages = cache_pages
        self._cache: dict[str, Page] = {}
        self._stopping = threading.Event()
        self._httpd = _Server((host, port), _Handler)
        self._httpd.replica = self
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/"

    def paths(self, method: str = "GET") -> list[str]:
        return [path for m, path, _status, _h in self.log if m == method]

    # -- faults ---------------------------------------------------------------------------------
    def add_fault(self, pattern: str, kind: str, *, times: int | None = None, **options: Any) -> Fault:
        """Make paths matching ``pattern`` misbehave (see ``FAULT_KINDS``); ``times`` N makes the
        fault transient (the first N matching requests only). Later faults win over earlier ones."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; choose from {', '.join(FAULT_KINDS)}")
        if kind == "gzip_bomb":  # made once, here: compressing 200 MB takes longer than a client waits
            options["body"] = _gzip_bomb(int(options.get("size", 64 * 1024 * 1024)))
        fault = Fault(pattern, kind, times, dict(options))
        with self.lock:
            self.faults.append(fault)
        return fault

    def random_faults(
        self,
        paths: list[str],
        *,
        seed: int,
        rate: float = 0.2,
        kinds: tuple[str, ...] = ("status", "429", "drop", "truncate"),
        times: int | None = 1,
        **options: Any,
    ) -> list[Fault]:
        """A fault of a random kind on a seeded random ``rate`` of ``paths``."""
        rng = random.Random(seed)
        return [
            self.add_fault(path, rng.choice(kinds), times=times, **options)
            for path in sorted(paths)
            if rng.random() < rate
        ]

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def _fault_for(self, path: str) -> Fault | None:
        for fault in reversed(self.faults):
            if fault.matches(path) and fault.take():
                return fault
        return None

    def clear_cache(self) -> None:
        """Forget rendered pages (with ``cache_pages``, after changing ``site``)."""
        with self.lock:
            self._cache.clear()

    def _render(self, path: str) -> Page:
        if not self.cache_pages:
            return render(self.site, path)
        page = self._cache.get(path)
        if page is None:
            page = self._cache[path] = render(self.site, path)
        return page

    # -- serving --------------------------------------------------------------------------------
    def start(self) -> ReplicaServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> ReplicaServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
