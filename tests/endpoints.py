"""Real local channels for alert tests: a JSON webhook that records posts (and can be switched to
answer 500, a channel that is down, or to answer late) and an SMTP server (aiosmtpd). Both on 127.0.0.1, ephemeral ports."""

from __future__ import annotations

import json
import socket
import threading
import time
from email import message_from_bytes
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802
        sink = self.server.sink
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if sink.hang:  # a channel that takes the request and never answers (until released)
            sink.hit.set()
            sink.release.wait(120)
            self.send_response(504)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        payload = json.loads(body or b"{}")
        with sink.lock:
            status = sink.status
            if sink.max_chars is not None and status < 300:
                size = len(payload.get("title") or "") + len(payload.get("message") or "")
                status = 400 if size > sink.max_chars else status
            if status < 300:
                sink.posts.append({"path": self.path, **payload})
            else:
                sink.refused += 1
        time.sleep(sink.delay)  # a slow service: it has the message, the answer comes later
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    sink: JsonSink


class JsonSink:
    """``url(path)`` is an Apprise ``json://`` URL; ``posts`` what arrived (title, message, path)."""

    def __init__(self, port: int = 0) -> None:
        self.posts: list[dict] = []
        self.refused = 0
        self.status = 200
        self.max_chars: int | None = None  # refuse (400) a title + message longer than this, like Discord
        self.hang = False
        self.delay = 0.0  # seconds before each answer
        self.hit = threading.Event()
        self.release = threading.Event()
        self.lock = threading.Lock()
        self._httpd = _Server(("127.0.0.1", port), _Handler)
        self._httpd.sink = self

    def url(self, path: str = "hook") -> str:
        return f"json://127.0.0.1:{self._httpd.server_address[1]}/{path}"

    def titles(self, path: str | None = None) -> list[str]:
        return [p["title"] for p in self.posts if path is None or p["path"] == "/" + path]

    def __enter__(self) -> JsonSink:
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self._httpd.shutdown()
        self._httpd.server_close()


class _Mailbox:
    def __init__(self) -> None:
        self.messages = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.messages.append(message_from_bytes(envelope.content, policy=default_policy))
        return "250 OK"


class SmtpSink:
    """A real SMTP server on 127.0.0.1 that keeps every message it receives."""

    def __init__(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.mailbox = _Mailbox()
        self._controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port)

    @property
    def messages(self) -> list:
        return self.mailbox.messages

    def __enter__(self) -> SmtpSink:
        self._controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self._controller.stop()
