"""A small polite HTTP client for the check that runs before a crawl (npi_crawler/check.py).

The check asks a dozen pages and usually learns that nothing changed: it must cost almost nothing,
so it uses the standard library (``http.client``), not Scrapy and Twisted. It is as polite as the
crawl: the same User-Agent, robots.txt rules read by the parser Scrapy uses (Protego), the same
delay between two requests (``DOWNLOAD_DELAY`` or AutoThrottle's start delay, with its jitter; none
on loopback, as ``runner.build_settings`` sets), the same timeout and size cap, one request at a
time over one persistent connection per host. Certificates are checked as the crawl checks them,
that is not at all (Scrapy's default context): both read the same public pages.

An answer the site gives with ``Retry-After`` on a 429 or 503 is ``Answer.retry_after``: the
caller stops asking (npi_crawler/check.py); nothing here waits for it.
"""

from __future__ import annotations

import datetime as dt
import http.client
import random
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

ACCEPT_ENCODING = "gzip, deflate"
RETRY_AFTER_STATUSES = (429, 503)


class FetchFailed(Exception):
    """No usable answer: no connection, a timeout, a body cut short or larger than the cap."""


def retry_after_seconds(value: str | None, now: dt.datetime | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date; None if unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return max(0.0, (when - (now or dt.datetime.now(dt.timezone.utc))).total_seconds())


@dataclass
class Answer:
    """One answer as the check got it: the body decoded (no Content-Encoding left)."""

    url: str
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((value for key, value in self.headers if key.lower() == name), None)

    def retry_after(self, now: dt.datetime | None = None) -> float | None:
        """Seconds the site asks to be left alone (a 429 or 503 with a readable, future
        ``Retry-After``), else None."""
        if self.status not in RETRY_AFTER_STATUSES:
            return None
        return retry_after_seconds(self.header("Retry-After"), now) or None


@dataclass(frozen=True)
class Politeness:
    """What the crawl's settings say about asking the site, as plain values."""

    user_agent: str
    delay: float = 1.0
    jitter: float = 0.5
    timeout: float = 30.0
    maxsize: int = 20 * 1024 * 1024

    @classmethod
    def of(cls, settings: Mapping[str, Any]) -> Politeness:
        """From the crawl's effective settings (``runner.plain_settings``)."""
        delay = float(settings["DOWNLOAD_DELAY"])
        if settings.get("AUTOTHROTTLE_ENABLED"):  # AutoThrottle starts here and never goes below the delay
            delay = max(delay, float(settings.get("AUTOTHROTTLE_START_DELAY", 0)))
        return cls(
            user_agent=str(settings["USER_AGENT"]),
            delay=delay,
            jitter=float(settings.get("DOWNLOAD_DELAY_JITTER", 0)),
            timeout=float(settings["DOWNLOAD_TIMEOUT"]),
            maxsize=int(settings["DOWNLOAD_MAXSIZE"]) or 2**53,
        )


class PoliteClient:
    """GET requests one at a time, ``politeness.delay`` apart, over one connection per host."""

    def __init__(
        self,
        politeness: Politeness,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.politeness = politeness
        self.sleep = sleep
        self.clock = clock
        self.requests = 0
        self._last: float | None = None
        self._connections: dict[tuple[str, str, int], http.client.HTTPConnection] = {}

    def __enter__(self) -> PoliteClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        for conn in self._connections.values():
            conn.close()
        self._connections.clear()

    def wait(self) -> None:
        """Sleep what is left of the delay since the last request."""
        if self._last is None or self.politeness.delay <= 0:
            return
        jitter = self.politeness.jitter
        delay = self.politeness.delay * random.uniform(1 - jitter, 1 + jitter)
        left = self._last + delay - self.clock()
        if left > 0:
            self.sleep(left)

    def get(self, url: str, headers: Mapping[str, str] | None = None) -> Answer:
        """One GET after the delay. Raises FetchFailed when no usable answer came."""
        self.wait()
        parts = urlsplit(url)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        sent = {"User-Agent": self.politeness.user_agent, "Accept-Encoding": ACCEPT_ENCODING, **(headers or {})}
        key = (parts.scheme, parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))
        self.requests += 1
        try:
            for attempt in (1, 2):
                conn, reused = self._connection(key)
                try:
                    conn.request("GET", path, headers=sent)
                    response = conn.getresponse()
                    break
                except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                    conn.close()
                    self._connections.pop(key, None)
                    if not reused or attempt == 2:  # a kept connection the server closed: once more
                        raise
            answer = self._read(url, response)
            if response.will_close:
                self._connections.pop(key, None)
                conn.close()
            return answer
        except (OSError, http.client.HTTPException) as exc:
            self._connections.pop(key, None)
            raise FetchFailed(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__) from None
        finally:
            self._last = self.clock()

    def _connection(self, key: tuple[str, str, int]) -> tuple[http.client.HTTPConnection, bool]:
        conn = self._connections.get(key)
        if conn is not None:
            return conn, True
        scheme, host, port = key
        timeout = self.politeness.timeout
        if scheme == "https":
            import ssl  # only for https: the replica on loopback needs none

            context = ssl._create_unverified_context()  # noqa: S323 - as the crawl: see the module docstring
            conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
        else:
            conn = http.client.HTTPConnection(host, port, timeout=timeout)
        self._connections[key] = conn
        return conn, False

    def _read(self, url: str, response: http.client.HTTPResponse) -> Answer:
        cap = self.politeness.maxsize
        length = response.getheader("Content-Length")
        if length and length.isdigit() and int(length) > cap:
            response.close()
            raise FetchFailed(f"the answer is {int(length)} bytes, more than DOWNLOAD_MAXSIZE ({cap})")
        raw = response.read(cap + 1)
        if len(raw) > cap:
            response.close()
            raise FetchFailed(f"the answer is more than DOWNLOAD_MAXSIZE ({cap} bytes)")
        headers = list(response.getheaders())
        encoding = (response.getheader("Content-Encoding") or "").strip().lower()
        if encoding in ("gzip", "x-gzip", "deflate"):
            raw = _decoded(raw, encoding, cap)
            headers = [(k, v) for k, v in headers if k.lower() not in ("content-encoding", "content-length")]
        return Answer(url=url, status=response.status, headers=headers, body=raw)


def _decoded(raw: bytes, encoding: str, cap: int) -> bytes:
    """A gzip or deflate body inflated, at most ``cap`` bytes of it (a gzip bomb is a failure)."""
    wbits = 31 if "gzip" in encoding else 15
    try:
        inflater = zlib.decompressobj(wbits)
        body = inflater.decompress(raw, cap + 1)
    except zlib.error:
        try:  # "deflate" without its zlib header, as some servers send it
            inflater = zlib.decompressobj(-15)
            body = inflater.decompress(raw, cap + 1)
        except zlib.error as exc:
            raise FetchFailed(f"the {encoding} body cannot be decoded ({exc})") from None
    if len(body) > cap or inflater.unconsumed_tail:
        raise FetchFailed(f"the decoded answer is more than DOWNLOAD_MAXSIZE ({cap} bytes)")
    return body


class Robots:
    """robots.txt rules, read by Protego as Scrapy's default parser reads them. No robots.txt
    (an answer other than 200) allows everything, as in the crawl."""

    def __init__(self, text: str | None, user_agent: str):
        self.user_agent = user_agent
        self._parser: Any = None
        if text:
            from protego import Protego  # the parser Scrapy's ROBOTSTXT_PARSER uses

            self._parser = Protego.parse(text)

    def allowed(self, url: str) -> bool:
        return self._parser is None or bool(self._parser.can_fetch(url, self.user_agent))
