"""``npi-crawler doctor``'s checks: each is a plain function returning ``Check`` lines.

Settings file, the archive (opens, ``PRAGMA integrity_check``, migrations, file permissions, the
latest run's health), the site (robots.txt and one list page), and every notification channel (a
test message through Apprise). Nothing here writes to the archive: it is opened read-only, and
missing migrations are reported, not applied.
"""

from __future__ import annotations

import os
import re
import sqlite3
import stat
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from npi_crawler.health import run_health
from npi_crawler.storage import MIGRATIONS, Archive, integrity_check

SITE_TIMEOUT = 15.0


def one_line(message: str) -> str:
    """SQLite's check messages span lines and name the schema: fold them into one short line."""
    return " ".join(message.replace("*** in database main ***", "").split())[:300]


@dataclass
class Check:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'}  {self.name:<13} {self.detail}"


# -- the archive ----------------------------------------------------------------------------------


def check_archive(db_path: str) -> list[Check]:
    """The archive file: present, readable and writable by its owner only, a sound SQLite file,
    every migration of this version applied, and the latest run healthy."""
    path = Path(db_path)
    if not path.exists():
        return [Check("archive", False, f"{db_path} does not exist; run 'npi-crawler crawl --db {db_path}'")]
    checks = []
    mode = stat.S_IMODE(path.stat().st_mode)
    folder_writable = os.access(path.parent, os.W_OK)
    if not os.access(path, os.R_OK | os.W_OK):
        checks.append(Check("permissions", False, f"{db_path} is not readable and writable by this user"))
    elif not folder_writable:
        checks.append(
            Check(
                "permissions", False, f"{path.parent} is not writable (SQLite's WAL and the run lock need it)"
            )
        )
    elif mode & 0o077:
        checks.append(
            Check("permissions", False, f"{db_path} is mode {mode:04o}; make it 0600 (chmod 600 {db_path})")
        )
    else:
        checks.append(Check("permissions", True, f"{db_path} mode {mode:04o}, folder writable"))
    try:
        # Read-only: doctor must not change the file it examines (nor apply migrations).
        rows = integrity_check(path)
    except sqlite3.DatabaseError as exc:
        checks.append(Check("integrity", False, f"{db_path} is not a readable SQLite database ({exc})"))
        return checks
    if rows != ["ok"]:
        first = one_line(rows[0]) if rows else "no answer"
        more = f" (+{len(rows) - 1} more)" if len(rows) > 1 else ""
        checks.append(Check("integrity", False, f"{first}{more}; restore a backup (see docs/operations.md)"))
        return checks
    checks.append(Check("integrity", True, "PRAGMA integrity_check: ok"))
    try:
        archive = Archive.open(db_path, create=False, migrate=False)
    except Exception as exc:  # ArchiveError, or a DatabaseError of a damaged file
        checks.append(Check("schema", False, str(exc)))
        return checks
    try:
        applied = archive.applied_migrations()
        known = [name for name, _ in MIGRATIONS]
        missing = [n for n in known if n not in applied]
        unknown = [n for n in applied if n not in known]
        if "articles" not in archive.db.table_names():
            checks.append(Check("schema", False, f"{db_path} is not an npi-crawler archive"))
            return checks
        if unknown:
            checks.append(
                Check(
                    "schema",
                    False,
                    f"made by a newer npi-crawler (steps {', '.join(unknown)} unknown here); upgrade npi-crawler",
                )
            )
        elif missing:
            checks.append(
                Check(
                    "schema",
                    True,
                    f"{len(applied)}/{len(known)} steps; the next run applies {', '.join(missing)}",
                )
            )
        else:
            checks.append(Check("schema", True, f"{len(applied)}/{len(known)} migration steps applied"))
        health = run_health(archive)
        last = health.last_run
        if health.ok and last is not None:
            detail = f"run {last['id']} ({last['mode']}) {last['status']}, started {last['started']}"
            if health.running:
                detail += f"; running now: {health.running}"
            checks.append(Check("last run", True, detail))
        else:
            checks.append(Check("last run", False, "; ".join(health.problems)))
    finally:
        archive.close()
    return checks


# -- the site -------------------------------------------------------------------------------------


def _get(url: str, user_agent: str, timeout: float) -> tuple[int | None, str]:
    request = urllib.request.Request(url, headers={"User-Agent": user_agent})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read(2_000_000)
            return response.status, "ok"
    except urllib.error.HTTPError as exc:
        return exc.code, f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return None, str(reason) or type(exc).__name__


def check_site(
    base_url: str,
    *,
    user_agent: str,
    lang: str = "en",
    section: str = "policy",
    timeout: float = SITE_TIMEOUT,
) -> list[Check]:
    """robots.txt and one list page answer (a single request each, no retries)."""
    checks = []
    robots = urljoin(base_url, "/robots.txt")
    status, detail = _get(robots, user_agent, timeout)
    # 404 is a valid answer: no robots.txt means everything is allowed.
    checks.append(Check("site robots", status in (200, 404), f"{robots}: {detail}"))
    prefix = "en/" if lang == "en" else ""
    page = urljoin(base_url, f"{prefix}research/{section}/index.html")
    status, detail = _get(page, user_agent, timeout)
    checks.append(Check("site list", status == 200, f"{page}: {detail}"))
    return checks


# -- notifications --------------------------------------------------------------------------------


def redact(url: str) -> str:
    """A notification URL fit to print: scheme, user and host; the password (as Apprise's privacy
    mode hides it), the path and the query (tokens often live there) replaced."""
    try:
        import apprise

        server = apprise.Apprise.instantiate(url)
    except Exception:  # noqa: BLE001 - any failure: show the scheme only
        server = None
    if not server:
        # Not a URL Apprise understands: some services keep a token in the host part; show nothing.
        return f"{urlsplit(url).scheme or '?'}://…"
    parts = urlsplit(server.url(privacy=True))
    try:
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        host, port = "", ""
    user = f"{parts.username}:****@" if parts.username else ""
    tail = "/…" if parts.path.strip("/") or parts.query else ""
    return f"{parts.scheme or '?'}://{user}{host}{port}{tail}"


def _scrub(text: str, url: str) -> str:
    """Remove every piece of ``url`` that could be a secret from a message."""
    parts = urlsplit(url)
    secrets = {url, parts.password or "", parts.username or "", parts.query}
    secrets.update(p for p in parts.path.split("/") if len(p) >= 4)
    secrets.update(v for v in re.split(r"[&=]", parts.query) if len(v) >= 4)
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "****")
    return text


def check_notifications(urls: list[str], *, body: str) -> list[Check]:
    """Send a test notification through each URL; never print a secret."""
    if not urls:
        return [
            Check(
                "notify",
                True,
                "no notification URL configured ([notify] urls or NPI_NOTIFY_URLS); nothing sent",
            )
        ]
    import apprise

    checks = []
    for url in urls:
        shown = redact(url)
        notifier = apprise.Apprise()
        with apprise.LogCapture(level=apprise.logging.WARNING) as log:
            if not notifier.add(url):
                checks.append(Check("notify", False, f"{shown}: not a valid Apprise URL"))
                continue
            sent = notifier.notify(title="npi-crawler doctor: test notification", body=body)
        if sent:
            checks.append(Check("notify", True, f"{shown}: test notification delivered"))
        else:
            lines = [line.strip() for line in log.getvalue().splitlines() if line.strip()]
            why = _scrub(lines[-1].rsplit(" - ", 1)[-1], url) if lines else "delivery failed"
            checks.append(Check("notify", False, f"{shown}: {why}"))
    return checks
