"""Serves a replica ``Site`` on 127.0.0.1 over real HTTP, with validators and a request log."""

from __future__ import annotations

import threading
import time
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .model import Site
from .render import render


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        self._respond(send_body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._respond(send_body=False)

    def _respond(self, *, send_body: bool) -> None:
        replica = self.server.replica
        if replica.delay:
            time.sleep(replica.delay)  # a slow site: runs overlap long enough to test the run lock
        with replica.lock:
            page = render(replica.site, self.path)
        status = page.status
        if status == 200 and self._not_modified(page):
            status = 304
        replica.log.append((self.command, self.path, status, dict(self.headers)))
        self.send_response(status)
        self.send_header("Content-Type", page.content_type)
        if page.etag:
            self.send_header("ETag", page.etag)
        if page.last_modified:
            self.send_header("Last-Modified", page.last_modified)
        body = b"" if status == 304 else page.body
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body and body:
            self.wfile.write(body)

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


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    replica: ReplicaServer


class ReplicaServer:
    """A context manager serving ``site`` on an ephemeral loopback port.

    ``url`` is the base URL to crawl; ``log`` records (method, path, status, headers) of every
    request; change ``site`` (under ``lock``) between runs to publish, edit or remove articles.
    ``delay`` makes every answer wait that many seconds (a slow site).
    """

    def __init__(self, site: Site, host: str = "127.0.0.1", port: int = 0, delay: float = 0.0):
        self.site = site
        self.delay = delay
        self.lock = threading.Lock()
        self.log: list[tuple[str, str, int, dict]] = []
        self._httpd = _Server((host, port), _Handler)
        self._httpd.replica = self
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/"

    def paths(self, method: str = "GET") -> list[str]:
        return [path for m, path, _status, _h in self.log if m == method]

    def start(self) -> ReplicaServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> ReplicaServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
